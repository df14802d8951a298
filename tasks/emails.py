"""The runbook's customer emails sent, each once: the message built from a reviewed draft
(tasks/email_drafts.py), delivered over SMTP, and a send cut off midway asked about, never repeated.
"""

from __future__ import annotations

import hashlib
import smtplib
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from prefect import get_run_logger

from blocks.smtp import SmtpServer
from tasks.email_drafts import (
    EmailDraft,
    EmailTemplateError,
    draft_api_final_summary,
    draft_api_implementation_email,
    draft_setup_guides_email,
    draft_sftp_implementation_email,
    draft_sftp_review_email,
    hard_line_breaks,
    markup_to_html,
    markup_to_text,
    render_email,
)
from tasks.once import attempt_began, forget_attempt, note_attempt, once_task
from tasks.records import SentEmail

# The drafts (tasks/email_drafts.py) are imported from here too.
__all__ = [
    "EMAIL_ARRIVED",
    "MB",
    "SEND_AGAIN",
    "EmailDraft",
    "EmailMaybeSent",
    "EmailRefused",
    "EmailTemplateError",
    "SentEmail",
    "attachments_size",
    "build_message",
    "deliver",
    "draft_api_final_summary",
    "draft_api_implementation_email",
    "draft_setup_guides_email",
    "draft_sftp_implementation_email",
    "draft_sftp_review_email",
    "hard_line_breaks",
    "markup_to_html",
    "markup_to_text",
    "message_id",
    "mb",
    "mime_size",
    "render_email",
    "send_email",
    "too_large_to_attach",
]


class EmailRefused(RuntimeError):
    """The mail server refused an email for good (a 5xx reply): retrying would not help."""


class EmailMaybeSent(RuntimeError):
    """An earlier send was cut off after the message was handed over: only a person can tell
    whether it arrived (the CSM is in Cc), so it is neither sent again nor taken as sent unasked."""


# What the CSM answers when an email may have gone out (`send_email(unclear_answer=…)`).
EMAIL_ARRIVED = "It arrived"
SEND_AGAIN = "It did not arrive: send it again"


MB = 1024 * 1024


def mb(size: int | float) -> str:
    """A size in MB, as people read it: `15 MB`, `16.2 MB`."""
    return f"{size / MB:.1f}".removesuffix(".0") + " MB"


def mime_size(raw: int) -> int:
    """The bytes `raw` bytes take in a message once base64-encoded (76 characters and CRLF a line)."""
    encoded = 4 * -(-raw // 3)
    return encoded + 2 * -(-encoded // 76)


def attachments_size(files: list[Path]) -> tuple[int, int]:
    """The files' own total size, and what they take in the message once encoded (base64 MIME)."""
    sizes = [Path(f).stat().st_size for f in files]
    return sum(sizes), sum(mime_size(size) for size in sizes)


def too_large_to_attach(files: list[Path], limit_mb: float) -> str | None:
    """Why the files go as a download link rather than attached (None: attach them). The encoded size
    is what counts against a mail server's limit; `limit_mb` is in the files' own size."""
    raw, encoded = attachments_size(files)
    # each file is encoded on its own: up to 6 bytes more (padding, its last line break) than one file
    if encoded <= mime_size(int(limit_mb * MB)) + 6 * len(files):
        return None
    return (
        f"the {len(files)} files are {mb(raw)} ({mb(encoded)} once encoded for email), over the "
        f"{mb(limit_mb * MB)} limit for attachments (SMTP Server block, “Attachments limit (MB)”)"
    )


def message_id(once_key: str) -> str:
    """The same for every send of one customer's step, so a retried send is one message to clients.
    SMTP cannot be asked what it kept: a worker killed after the server kept the email sends it again."""
    return f"<{hashlib.sha256(once_key.encode()).hexdigest()[:40]}@hris-runbook>"


def build_message(draft: EmailDraft, from_address: str, once_key: str) -> EmailMessage:
    """A multipart/alternative message whose Message-ID is derived from the step's key."""
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = ", ".join(draft.to)
    if draft.cc:
        message["Cc"] = ", ".join(draft.cc)
    if draft.reply_to:
        message["Reply-To"] = draft.reply_to
    message["Subject"] = draft.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(once_key)
    message["X-HRIS-Runbook-Step"] = once_key
    message.set_content(draft.text())
    message.add_alternative(draft.html(), subtype="html")
    for attachment in draft.attachments:
        path = Path(attachment)
        message.add_attachment(path.read_bytes(), maintype="text", subtype="csv", filename=path.name)
    return message


def deliver(
    smtp: SmtpServer, draft: EmailDraft, once_key: str, before_data: Callable[[], None] | None = None
) -> SentEmail:
    """Send one message through the SMTP server and describe what went out.

    `before_data` runs just before the message itself is sent (SMTP DATA): from there on, a lost
    answer may mean the server kept it."""
    message = build_message(draft, smtp.from_address, once_key)
    with smtp.get_client() as client:  # a refused login stays an SMTPAuthenticationError
        if before_data is not None:
            data = client.data

            def noted_data(msg: bytes | str) -> tuple[int, bytes]:
                before_data()
                return data(msg)

            client.data = noted_data  # type: ignore[method-assign]
        try:
            client.send_message(message, to_addrs=[*draft.to, *draft.cc])
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code < 500:
                raise  # temporary: `_is_transient` retries it
            reply = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
            if exc.smtp_code == 552:  # too large: at MAIL FROM (declared SIZE) or at the end of DATA
                limit = client.esmtp_features.get("size", "")
                over = f"the mail server's limit of {mb(int(limit))}" if limit.isdigit() else "its size limit"
                size = mb(len(message.as_bytes()))
                raise EmailRefused(
                    f"the mail server refused the email {draft.subject!r}: it is {size}, "
                    f"over {over} (552); not retried: lower the SMTP Server block's “Attachments limit (MB)” "
                    "so the files go as a download link, then run the step again"
                ) from None
            raise EmailRefused(
                f"the mail server refused {draft.subject!r} ({exc.smtp_code} {' '.join(reply.split())}); "
                "not retried: check the SMTP Server block and the addresses, then run the step again"
            ) from None
    return _described(draft, once_key, datetime.now(UTC))


def _described(draft: EmailDraft, once_key: str, sent_at: datetime) -> SentEmail:
    return SentEmail(
        message_id=message_id(once_key), to=draft.to, cc=draft.cc, subject=draft.subject, sent_at=sent_at
    )


def _is_transient(task, task_run, state) -> bool:
    """Retry connection trouble and 4xx replies; a 5xx (e.g. unknown recipient) is final."""
    try:
        state.result()
    except (
        smtplib.SMTPServerDisconnected,
        smtplib.SMTPConnectError,
        ConnectionError,
        TimeoutError,
    ):
        return True
    except smtplib.SMTPResponseException as exc:
        return 400 <= exc.smtp_code < 500
    except Exception:
        return False
    return False


@once_task(
    "send-email",
    retries=3,
    retry_delay_seconds=[5, 30, 120],
    retry_condition_fn=_is_transient,
)
def send_email(smtp: SmtpServer, draft: EmailDraft, once_key: str, unclear_answer: str = "") -> SentEmail:
    """Send a reviewed email once per `once_key`; later calls return the first send's record.

    An attempt cut off after the message went out (a lost answer, a killed worker) is not sent
    again blindly: `EmailMaybeSent` asks a person, whose `unclear_answer` is then followed."""
    began = attempt_began(f"{once_key}--smtp-data")
    if unclear_answer == EMAIL_ARRIVED and began is not None:
        get_run_logger().info("“%s”: arrived, as the CSM confirmed; not sent again", draft.subject)
        return _described(draft, once_key, datetime.fromtimestamp(began, UTC))
    if began is not None and unclear_answer != SEND_AGAIN:
        raise EmailMaybeSent(
            f"“{draft.subject}” may already have gone out: an earlier attempt "
            f"({datetime.fromtimestamp(began, UTC):%Y-%m-%d %H:%M} UTC) was cut off after the message "
            "was handed to the mail server, and SMTP cannot be asked what it kept"
        )
    try:
        sent = deliver(smtp, draft, once_key, before_data=lambda: note_attempt(f"{once_key}--smtp-data"))
    except (smtplib.SMTPResponseException, EmailRefused):
        forget_attempt(f"{once_key}--smtp-data")  # the server answered "no": it kept nothing
        raise
    get_run_logger().info(
        "Sent “%s” to %d recipient(s) (%d cc) as %s",
        draft.subject,
        len(draft.to),
        len(draft.cc),
        sent.message_id,
    )
    return sent
