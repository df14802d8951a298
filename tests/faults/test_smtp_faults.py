"""SMTP faults at DATA against the real send path (tasks/emails.py send_email): a temporary refusal
is retried and the email arrives once; a permanent refusal fails at once with one clear line; a send
cut off after the message was handed over (a hang, a dropped connection, a reply lost after the
server kept it) is neither sent again nor taken as sent: it asks, and the answer is followed."""

from __future__ import annotations

import uuid

import pytest

from blocks import SmtpServer
from tasks.emails import EMAIL_ARRIVED, SEND_AGAIN, EmailDraft, EmailMaybeSent, send_email
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
    """A client block with a 10 s timeout: a hung server is given up on, a busy machine's slow
    answer is not taken for one (1 s was: a retry too many, or a sent email called unclear)."""
    return SmtpServer(
        host="127.0.0.1",
        port=smtp_server.port,
        security="none",
        from_address="cs@10kc.example",
        timeout_seconds=10,
    )


@pytest.mark.parametrize("fault", ["rate_limit", "server_error"])
def test_a_refused_send_is_retried_and_the_email_arrives_once(smtp, smtp_server, fault):
    sink = smtp_server.handler
    sink.inject(fault)
    sent = FAST_RETRIES(smtp, draft(), once_key(f"faults-{uuid.uuid4().hex[:8]}", "email"))

    assert sink.faults_served == [fault]
    assert sink.data_commands == 2  # the refused attempt and one retry
    [message] = sink.messages()
    assert message["Message-ID"] == sent.message_id


@pytest.mark.parametrize(
    ("fault", "kept", "answer"),
    [("lost_answer", 1, EMAIL_ARRIVED), ("hang", 0, SEND_AGAIN), ("drop", 0, SEND_AGAIN)],
)
def test_a_send_cut_off_after_handing_the_message_over_asks_instead_of_sending_again(
    smtp, smtp_server, fault, kept, answer
):
    sink = smtp_server.handler
    sink.inject(fault, hang_seconds=60)  # past the client's 10 s
    key = once_key(f"faults-{uuid.uuid4().hex[:8]}", "email")
    with pytest.raises(EmailMaybeSent) as unclear:
        FAST_RETRIES(smtp, draft(), key)

    assert sink.data_commands == 1  # the retry did not send it blindly
    assert len(sink.messages()) == kept
    assert "\n" not in str(unclear.value)
    assert "“Your HRIS integration” may already have gone out" in str(unclear.value)
    with pytest.raises(EmailMaybeSent):  # a Retry of the run asks again too
        FAST_RETRIES(smtp, draft(), key)

    sent = FAST_RETRIES(smtp, draft(), key, unclear_answer=answer)  # the CSM looked in their Cc copy
    again = FAST_RETRIES(smtp, draft(), key)  # and the step is done for good
    [message] = sink.messages()
    assert message["Message-ID"] == sent.message_id == again.message_id
    assert sink.data_commands == 1 + (answer == SEND_AGAIN)


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
