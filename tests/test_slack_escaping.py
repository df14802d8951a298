"""Values we did not write (file names, customer fields, errors) cannot notify or reformat in Slack."""

from __future__ import annotations

import re

import jinja2.meta
import pytest

from flows.sftp_watch import sftp_watch
from tasks.templating import environment, render
from templates import TEMPLATES_DIR
from tests.test_sftp import UPLOAD, registered

HOSTILE = "<!channel> <@U123> & `code`\nsecond line\x07\x1b[31m"
NUMBERS = {"waited_hours": 3.5, "size": 1_310_720}
SLACK_TEMPLATES = sorted(p.name for p in (TEMPLATES_DIR / "slack").glob("*.j2"))


def notifies(text: str) -> bool:
    """Slack's control sequences: <!channel>, <!here>, <!everyone>, <@user>, <!subteam^…>."""
    return re.search(r"<[!@#]", text) is not None


@pytest.mark.parametrize("name", SLACK_TEMPLATES)
def test_every_slack_template_escapes_every_value(name):
    source = (TEMPLATES_DIR / "slack" / name).read_text()
    variables = jinja2.meta.find_undeclared_variables(environment.parse(source))
    text = render(f"slack/{name}", **{v: NUMBERS.get(v, HOSTILE) for v in variables})
    assert not notifies(text)
    assert "&lt;!channel&gt;" in text and "&amp;" in text
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", text)
    assert "\nsecond line" not in text and "`code`" not in text  # a value cannot break a line or a code span


def test_a_rendered_slack_message_goes_into_another_as_it_is():
    inner = render("slack/poll_error.md.j2", customers="Acme <!here>", error="a & b")
    outer = render("slack/waiting.md.j2", title=inner, run_url="https://prefect.example/runs/1?a=1&b=2")
    assert inner in outer and "&amp;amp;" not in outer and "&amp;lt;" not in outer
    assert "https://prefect.example/runs/1?a=1&amp;b=2" in outer  # Slack reads &amp; in a link as &


def test_an_upload_named_to_notify_everyone_posts_as_plain_text(
    sftp_block, sftp_server, tmp_path, clean_registrations, slack_block, slack
):
    customer, inbox = registered(tmp_path, sftp_server, company_name="Acme <!here> Corp")
    (inbox / "<!channel>.csv").write_text(UPLOAD)
    assert sftp_watch(settle_seconds=0.5, start_processing=False)["claimed"] == 1
    [alert] = slack.messages("monitoring-hris-files")
    assert not notifies(alert["text"])
    assert "`&lt;!channel&gt;.csv`" in alert["text"] and "*Acme &lt;!here&gt; Corp*" in alert["text"]
