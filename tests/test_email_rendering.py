"""The customer email's HTML is what the CSM approved in the preview, and a retried send is one message."""

from __future__ import annotations

from markdown_it import MarkdownIt

from blocks import SmtpServer
from tasks.emails import EmailDraft, deliver

BODY = """Hello Dana,

Please read [the guide](https://help.example.test/articles/x?a=1&b=2) *today*, and _carefully_.

## Next steps

1. Fill out the **data mapping table**.
2. Use the setup link.

- Column B: fields
- Column C: values

<script>alert(1)</script> and <b>raw</b> HTML are shown as text. Bo & Co < 3.

Best regards,
Casey
"""


def _smtp(controller) -> SmtpServer:
    return SmtpServer(host="127.0.0.1", port=controller.port, security="none", from_address="cs@10kc.example")


def _draft() -> EmailDraft:
    return EmailDraft(template="t", to=["dana@acme.example"], subject="Next steps", body=BODY)


def _html(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content().replace("\r\n", "\n")


def test_the_html_part_renders_markdown_safely(smtp_server):
    deliver(_smtp(smtp_server), _draft(), "once--acme.example--email")
    html = _html(smtp_server.handler.messages()[-1])
    assert '<a href="https://help.example.test/articles/x?a=1&amp;b=2">the guide</a>' in html
    assert "&amp;amp;" not in html
    assert "<em>today</em>" in html and "<em>carefully</em>" in html
    assert "<ol>\n<li>Fill out the <strong>data mapping table</strong>.</li>" in html
    assert "<ul>\n<li>Column B: fields</li>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;raw&lt;/b&gt;" in html
    assert "Best regards,<br />\nCasey" in html  # a line break in the text is one in the email


def test_the_sent_html_is_what_the_preview_shows(smtp_server):
    draft = _draft()
    deliver(_smtp(smtp_server), draft, "once--acme.example--email")
    preview_body = draft.for_review().split("\n---\n\n", 1)[1]
    preview_html = MarkdownIt("commonmark", {"html": False}).render(preview_body)  # as any CommonMark UI
    assert preview_html in _html(smtp_server.handler.messages()[-1])


def test_a_retried_send_has_the_same_message_id_so_clients_show_it_once(smtp_server):
    smtp, draft = _smtp(smtp_server), _draft()
    first = deliver(smtp, draft, "once--acme.example--setup-guides-email")
    retried = deliver(smtp, draft, "once--acme.example--setup-guides-email")
    other = deliver(smtp, draft, "once--acme-example.com--setup-guides-email")
    received = [m["Message-ID"] for m in smtp_server.handler.messages()]
    assert received[0] == received[1] == first.message_id == retried.message_id
    assert received[2] != received[0] and other.message_id == received[2]
    assert received[0].startswith("<") and received[0].endswith("@hris-runbook>")
