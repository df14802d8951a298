"""Runbook steps shared by several flows, built from tasks and the approval gate."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.variables import Variable

from blocks import SmtpServer
from flows.approvals import Notify, WaitSettings, request_approval
from tasks.customer import Customer
from tasks.emails import EmailDraft, SentEmail, send_email
from tasks.once import already_done, once_key
from tasks.platforms import load_catalogue


def help_center_url() -> str:
    """The Help Center base URL: the `help_center_url` Variable, else the catalogue's default."""
    return Variable.get("help_center_url", default=load_catalogue().help_center_url)


def csm_notice(customer: Customer) -> Notify:
    """Waiting runs tell the CSM by Slack DM, or in the customer's account channel."""
    return Notify(email=customer.csm.email, channel=customer.slack_channel)


def send_reviewed_email(
    customer: Customer, step: str, draft: EmailDraft, smtp: SmtpServer, wait: WaitSettings
) -> SentEmail:
    """A CSM approves (and may correct) the email, then it is sent; never twice for a step."""
    key = once_key(customer.key, step)
    previous = already_done(key)
    if previous is not None:
        get_run_logger().info("%s: already sent at %s, not sending again", step, previous.sent_at)
        return previous
    approval = request_approval(
        key=step,
        title=f"Send “{draft.subject}” to {customer.company_name}",
        what=draft.for_review(),
        wait=wait,
        editable_body=draft.body,
        notify=csm_notice(customer),
    )
    edited = approval.edited_body.strip()
    if edited and edited != draft.body.strip():
        draft = draft.model_copy(update={"body": edited + "\n"})
    return send_email(smtp, draft, key)
