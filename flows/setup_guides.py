"""Runbook: "Share the right setup guides", then ask which way the customer wants to connect."""

from typing import Literal

from prefect import flow
from prefect.input import RunInput
from pydantic import Field

from blocks import SmtpServer, load_block
from tasks.approvals import ask, ends_on_rejection, record
from tasks.contracts import CUSTOMER_CHOICE, SETUP_GUIDES, SETUP_GUIDES_EMAIL
from tasks.customer import Customer
from tasks.emails import draft_setup_guides_email
from tasks.naming import run_name
from tasks.steps import csm_notice, help_center_catalogue, send_reviewed_email, start_next_flow


class CustomerChoice(RunInput):
    """Which implementation the customer chose after reading the setup guides."""

    option: Literal["api", "sftp", "not yet"] = Field(
        title="Option chosen",
        description="api (WorkOS), sftp (file uploads), or not yet (the customer has not decided)",
    )
    answered_by: str = Field(min_length=1, title="Your name", description="Recorded with the answer")
    notes: str = Field(default="", title="Notes", description="Anything the customer said worth keeping")


@flow(name=SETUP_GUIDES, flow_run_name=run_name(SETUP_GUIDES))
@ends_on_rejection
def setup_guides(customer: Customer) -> dict[str, str]:
    """Send Template 1 (listed platform, with its guide) or Template 2, record the choice, and start
    the matching flow (api-integration or sftp-integration) for the same customer."""
    smtp = load_block(SmtpServer)
    catalogue = help_center_catalogue()
    draft = draft_setup_guides_email(customer, catalogue, catalogue.help_center_url, smtp.default_cc)
    sent = send_reviewed_email(customer, SETUP_GUIDES_EMAIL, draft, smtp)

    choice = ask(
        CustomerChoice,
        key=CUSTOMER_CHOICE,
        title=f"Which option did {customer.company_name} choose?",
        description=(
            f"The setup guides email went to {customer.contact_email} ({sent.sent_at:%Y-%m-%d %H:%M} UTC). "
            "When the customer replies, record the option they prefer."
        ),
        notify=csm_notice(customer),
    )
    record(CUSTOMER_CHOICE, "Customer's choice", choice.answered_by, choice.option, choice.notes)
    started = None
    if choice.option in ("api", "sftp"):
        started = start_next_flow(f"{choice.option}-integration", customer)
    return {"email": sent.message_id, "choice": choice.option, "started": started or ""}
