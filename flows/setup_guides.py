"""Runbook: "Share the right setup guides", then ask which way the customer wants to connect."""

from typing import Literal

from prefect import flow
from prefect.input import RunInput
from pydantic import Field

from blocks import SmtpServer, load_block
from flows.approvals import WaitSettings, ask, ends_on_rejection, record
from flows.steps import csm_notice, help_center_url, send_reviewed_email, start_next_flow
from tasks.customer import Customer
from tasks.emails import draft_setup_guides_email
from tasks.platforms import load_catalogue


class CustomerChoice(RunInput):
    """Which implementation the customer chose after reading the setup guides."""

    option: Literal["api", "sftp", "not yet"] = Field(
        description="api (WorkOS), sftp (file uploads), or not yet (the customer has not decided)"
    )
    answered_by: str = Field(min_length=1, description="Your name: recorded with the answer")
    notes: str = Field(default="", description="Anything the customer said worth keeping")


@flow(name="setup-guides")
@ends_on_rejection
def setup_guides(customer: Customer, wait: WaitSettings | None = None) -> dict[str, str]:
    """Send Template 1 (listed platform, with its guide) or Template 2, record the choice, and start
    the matching flow (api-integration or sftp-integration) for the same customer."""
    wait = wait or WaitSettings()
    smtp = load_block(SmtpServer)
    draft = draft_setup_guides_email(customer, load_catalogue(), help_center_url(), smtp.default_cc)
    sent = send_reviewed_email(customer, "setup-guides-email", draft, smtp, wait)

    choice = ask(
        CustomerChoice,
        key="customer-choice",
        title=f"Which option did {customer.company_name} choose?",
        description=(
            f"The setup guides email went to {customer.contact_email} ({sent.sent_at:%Y-%m-%d %H:%M} UTC). "
            "When the customer replies, record the option they prefer."
        ),
        wait=wait,
        notify=csm_notice(customer),
    )
    record("customer-choice", "Customer's choice", choice.answered_by, choice.option, choice.notes)
    started = None
    if choice.option in ("api", "sftp"):
        started = start_next_flow(f"{choice.option}-integration", customer, wait)
    return {"email": sent.message_id, "choice": choice.option, "started": started or ""}
