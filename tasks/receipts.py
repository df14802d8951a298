"""The customer's receipt after each production upload: what was read, applied and rejected, by email.

Without it the customer never hears that a row was rejected, and it stays wrong week after week.
The CSM reviews the text in the apply gate (`apply-files`): on by default, may be edited or switched
off. The text holds counts, line numbers and reasons only, since Prefect keeps a form's answer in
plain text; the rejected rows themselves (their own data, sent to their own contact) go only in the
attachment. Sent once per upload, after the files are applied: never for a duplicate or a rejection.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger
from pydantic import Field, create_model, model_validator

from blocks import SmtpServer, optional_block
from tasks.approvals import Approval, WaitSettings
from tasks.column_match import findings
from tasks.contracts import UPLOAD_RECEIPT
from tasks.email_drafts import EmailDraft, render_email, to_customer
from tasks.emails import EmailMaybeSent, SentEmail, send_email
from tasks.files import REJECTED
from tasks.once import once_key
from tasks.registry import Registration
from tasks.steps import ask_if_it_arrived
from tasks.templating import SlackText, capped, render
from tasks.upload_history import summary_rows

SHOWN_REJECTED = 50  # the text names this many rejected rows by line; the attachment has them all
SHOWN_UNMAPPED = 30  # values the mapping table lacks, named one per line (as mapping-review names them)


class ApplyWithReceipt(Approval):
    """Approve or reject the files; on approve, the customer's receipt goes out unless switched off."""

    send_receipt: bool = Field(
        default=True,
        title="Send the receipt",
        description="Email the customer's contact what this upload changed and which rows were rejected",
    )
    receipt: str = Field(
        default="",
        title="Receipt text",
        description="The email's text, in simple markup; the rejected rows go attached, never in the text",
    )

    @model_validator(mode="after")
    def _text_when_sending(self) -> ApplyWithReceipt:
        if self.decision == "approve" and self.send_receipt and not self.receipt.strip():
            raise ValueError("receipt: the receipt to send is empty (switch off “Send the receipt” instead)")
        return self


@dataclass(frozen=True)
class Receipt:
    """The receipt as the apply gate shows it: the draft, the form carrying its text, the gate's lines."""

    draft: EmailDraft
    form: type[ApplyWithReceipt]
    markdown: str  # for the form, after what it already shows
    slack: SlackText  # one line for the Slack notice


def rejected_lines(out_dir: Path) -> list[tuple[str, str]]:
    """(line, reason) of each rejected row, from the file engine's `rejected rows.csv`; no email."""
    path = out_dir / REJECTED
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["Line"], row["Reason"]) for row in csv.DictReader(handle)]


def _column_lines(summary: dict) -> list[str]:
    """A missing mapped column, in the customer's words, with the column that looks like it."""
    return [
        f'The column "{f["column"]}" looks like "{f["field"]}" from your data mapping table, so '
        f"{f['field']} was not updated on 10KC."
        if f["column"]
        else f'The column "{f["field"]}" is not in the file, so {f["field"]} was not updated on 10KC.'
        for f in findings(summary)
    ]


def draft_receipt(reg: Registration, upload: str, summary: dict, out_dir: Path, cc: list[str]) -> EmailDraft:
    """The receipt for `upload` (its original name), rejected rows attached when there are any."""
    rejected = rejected_lines(out_dir)
    shown = capped(
        [f"line {line}: {reason}" for line, reason in rejected],
        SHOWN_REJECTED,
        "and {n} more, all in the attached file",
    )
    unmapped = capped(
        [
            f'{u["field"]}: "{u["value"]}" ({u["rows"]} row{"s" if u["rows"] != 1 else ""})'
            for u in summary["unmapped_values"]
        ],
        SHOWN_UNMAPPED,
        "and {n} more values",
    )
    customer = reg.customer
    draft = render_email(
        "upload_receipt",
        first_name=customer.contact_first_name,
        csm_name=customer.csm.name,
        upload=upload,
        rows=summary_rows(summary),
        rejected=shown,
        columns=_column_lines(summary),
        unmapped=unmapped,
        **{k: summary[k] for k in ("invites", "updates", "deactivations", "reactivations", "deletions")},
        rejected_rows=summary["rejected_rows"],
        held=", ".join(
            f"{h['members']} until {h['until']}"
            for h in (summary.get("deletion_grace") or {}).get("held_until", [])
        ),
        **to_customer(customer, cc),
    )
    attached = [str(out_dir / REJECTED)] if rejected else []
    return draft.model_copy(update={"attachments": attached})


def receipt_for(reg: Registration, upload: str, summary: dict, out_dir: Path) -> Receipt | None:
    """What the apply gate shows and asks about the receipt; None without an SMTP Server block."""
    smtp = optional_block(SmtpServer)
    if smtp is None:
        return None
    draft = draft_receipt(reg, upload, summary, out_dir, smtp.default_cc)
    form = create_model(
        "ApplyWithReceipt",
        __base__=ApplyWithReceipt,
        receipt=(str, Field(default=draft.body, **_field_text("receipt"))),
    )
    attached = f" Attached: {REJECTED} ({summary['rejected_rows']} rows)." if draft.attachments else ""
    markdown = (
        f"**Receipt to the customer** (on approve, unless you switch off “Send the receipt”; edit "
        f"its text in the form below).{attached}\n\n{draft.for_review()}"
    )
    slack = SlackText(render("slack/receipt_notice.md.j2", company=reg.customer.company_name).strip())
    return Receipt(draft=draft, form=form, markdown=markdown, slack=slack)


def _field_text(name: str) -> dict[str, str]:
    field = ApplyWithReceipt.model_fields[name]
    return {"title": field.title or name, "description": field.description or ""}


def receipt_key(reg: Registration, upload: str, sha256: str) -> str:
    """One receipt per upload: its claimed name and the first bytes of its content hash."""
    return once_key(reg.customer.key, f"{UPLOAD_RECEIPT}-{upload}-{sha256[:16]}")


def send_receipt(
    reg: Registration,
    key: str,
    receipt: Receipt | None,
    answer: Approval,
    wait: WaitSettings | None,
) -> SentEmail | None:
    """Send the reviewed receipt once (a send cut off mid-DATA asks the CSM); None when not sent."""
    logger = get_run_logger()
    if receipt is None or not isinstance(answer, ApplyWithReceipt):
        logger.info("No receipt: no SMTP Server block is configured")
        return None
    if not answer.send_receipt:
        logger.info("Receipt switched off by %s: not sent", answer.approver)
        return None
    smtp = optional_block(SmtpServer)
    if smtp is None:
        logger.warning("Receipt not sent: the SMTP Server block is gone")
        return None
    final = receipt.draft.model_copy(update={"body": answer.receipt.strip() + "\n"})
    try:
        return send_email(smtp, final, key)
    except EmailMaybeSent as unclear:
        arrived = ask_if_it_arrived(reg.customer, UPLOAD_RECEIPT, final, str(unclear), wait)
        return send_email(smtp, final, key, unclear_answer=arrived.outcome)
