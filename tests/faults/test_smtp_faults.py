"""SMTP faults at DATA against the real send path (tasks/emails.py send_email): a temporary refusal,
a hang, or a dropped connection is retried and the email arrives once; a permanent refusal fails
at once with one clear line; a reply lost after the server kept the message is sent again under the
same Message-ID, so the recipient's mail client shows it once."""

from __future__ import annotations

import uuid

import pytest

from blocks import SmtpServer
from tasks.emails import EmailDraft, send_email
from tasks.once import once_key

FAST_RETRIES = send_email.with_options(retry_delay_seconds=0)


def draft() -> EmailDraft:
    return EmailDraft(
        template="fault-test",
        to=["dana.admin@acme.example"],
        cc=["hris-team@10kc.example"],
        subject="Your HRIS integration",
        body="Hello Dana,\n\nThe next steps.\n",
    )


@pytest.fixture
def smtp(prefect_api, smtp_server):
    """A client block with a 1 s timeout, so a hung server is given up on quickly."""
    return SmtpServer(
        host="127.0.0.1",
        port=smtp_server.port,
        security="none",
        from_address="cs@10kc.example",
        timeout_seconds=1,
    )


@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "hang", "drop"])
def test_a_failed_send_is_retried_and_the_email_arrives_once(smtp, smtp_server, fault):
    sink = smtp_server.handler
    sink.inject(fault, hang_seconds=3)
    sent = FAST_RETRIES(smtp, draft(), once_key(f"faults-{uuid.uuid4().hex[:8]}", "email"))

    assert sink.faults_served == [fault]
    assert sink.data_commands == 2  # the faulted attempt and one retry
    [message] = sink.messages()
    assert message["Message-ID"] == sent.message_id


def test_a_reply_lost_after_the_server_kept_the_email_is_resent_under_the_same_message_id(smtp, smtp_server):
    sink = smtp_server.handler
    sink.inject("lost_answer")
    sent = FAST_RETRIES(smtp, draft(), once_key(f"faults-{uuid.uuid4().hex[:8]}", "email"))

    messages = sink.messages()
    assert len(messages) == 2  # SMTP cannot tell; the server kept both deliveries
    assert {m["Message-ID"] for m in messages} == {sent.message_id}  # one email to the recipient


def test_a_permanent_refusal_fails_once_with_one_clear_line(smtp, smtp_server):
    sink = smtp_server.handler
    sink.inject("rejected")
    key = once_key(f"faults-{uuid.uuid4().hex[:8]}", "email")
    with pytest.raises(Exception) as failure:
        FAST_RETRIES(smtp, draft(), key)

    assert sink.data_commands == 1  # not retried: the server said no for good
    assert sink.messages() == []
    message = str(failure.value)
    assert "\n" not in message
    assert "554 5.7.1 Message rejected" in message and "Your HRIS integration" in message
