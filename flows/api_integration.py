"""Runbook "API-based implementation (WorkOS)", steps 1–6, with a person approving at each gate."""

import time
from typing import ClassVar, Literal

from prefect import flow, get_run_logger
from prefect.input import RunInput
from pydantic import Field, field_validator

from blocks import SlackWorkspace, SmtpServer, WorkOSCredentials, load_block
from tasks.approvals import ask, ends_on_rejection, record, request_approval
from tasks.contracts import (
    API_FINAL_SUMMARY,
    API_IMPLEMENTATION_EMAIL,
    API_INTEGRATION,
    INTEGRATION_ON,
    INTEGRATION_ON_FORM,
    SUMMARY_CADENCE,
    WORKOS_ORGANIZATION,
    WORKOS_SETUP_LINK,
)
from tasks.customer import Customer, check_url
from tasks.emails import draft_api_final_summary, draft_api_implementation_email
from tasks.gate_notices import Notify, run_link
from tasks.mapping_cadence import keep_api_cadence
from tasks.naming import run_name
from tasks.once import once_key, once_task
from tasks.progress import Progress
from tasks.records import SetupLinkIssued
from tasks.setup_links import SETUP_LINK_SHOWN, setup_link
from tasks.steps import (
    check_mapping_table,
    csm_notice,
    help_center_catalogue,
    send_reviewed_email,
    update_hub_segments,
)
from tasks.support import api_support_request, post_support_request
from tasks.workos import WorkOSOrganization, ensure_organization_task, external_id_for, find_organization

STEPS = [
    "WorkOS organization and Directory Sync setup link",
    "Implementation steps email",
    "Data mapping table and hub segments",
    "Support request in #product-support",
    "Engineering turns the integration on",
    "Final summary email",
]


class DashboardSetupLink(RunInput):
    """No setup-links endpoint is configured: paste a setup link created in the WorkOS dashboard."""

    setup_link: str = Field(
        title="Setup link",
        description="Organization > Setup link > Create Link > Directory Sync, then paste it here",
    )
    answered_by: str = Field(min_length=1, title="Your name", description="Recorded with the answer")

    @field_validator("setup_link")
    @classmethod
    def _is_url(cls, value: str) -> str:
        return check_url(value)


class IntegrationOn(RunInput):
    """Engineering confirms the integration is turned on (runbook step 5)."""

    slack_form: ClassVar[str] = INTEGRATION_ON_FORM  # the "It is turned on" button answers it

    confirmed_by: str = Field(
        min_length=1, title="Your name", description="Engineering: recorded with the answer"
    )
    notes: str = Field(default="", title="Notes", description="Anything the CSM should know")


class SummaryCadence(RunInput):
    """What was agreed with the customer for mapping-table updates (final email)."""

    cadence: Literal["monthly", "quarterly"] = Field(
        title="Update cadence", description="How often the customer sends updated values"
    )
    answered_by: str = Field(min_length=1, title="Your name", description="Recorded with the answer")


@once_task("make-setup-link")
def long_lived_setup_link(workos: WorkOSCredentials, organization_id: str, once_key: str) -> SetupLinkIssued:
    """A signed link to our setup-links endpoint, issued once per customer so every email shows the
    same; the record keeps its expiry, not the link (records are plain text)."""
    return SetupLinkIssued(
        base_url=workos.setup_links_url,
        organization_id=organization_id,
        expires_at=int(time.time() + workos.setup_link_days * 86400),
    )


def issued_link(workos: WorkOSCredentials, issued: SetupLinkIssued | str) -> str:
    """The link a make-setup-link record stands for; records before 2026-12 held the link itself."""
    if isinstance(issued, str):
        return issued
    secret = workos.setup_links_secret.get_secret_value()
    return setup_link(issued.base_url, secret, issued.organization_id, issued.expires_at)


def workos_step(customer: Customer, workos: WorkOSCredentials) -> tuple[WorkOSOrganization, str]:
    """Step 1: approve, find-or-create the organization, then the setup link for the email."""
    link_mode = (
        f"a {workos.setup_link_days}-day link to our setup-links endpoint ({workos.setup_links_url}), which "
        "opens a fresh Directory Sync portal link on each click"
        if workos.setup_links_url
        else "no setup-links endpoint is configured: next you paste a link created in the WorkOS dashboard"
    )
    existing = find_organization(workos.get_client(), customer)
    if existing is not None:
        get_run_logger().info("WorkOS organization %s already exists; not asking again", existing.id)
    else:
        request_approval(
            key=WORKOS_ORGANIZATION,
            title=f"Create (or find) {customer.company_name}'s WorkOS organization",
            what=(
                f"- **Environment:** {workos.environment}\n- **Name:** {customer.company_name}\n"
                f"- **Email domains:** {', '.join(customer.email_domains)} (authentication allowed from "
                f"them: state `{workos.domain_state}`)\n- **External id:** `{external_id_for(customer)}`\n"
                f"- **Setup link:** {link_mode}\n\nAn existing organization with this external id or these "
                "domains is reused; a second one is never created."
            ),
            notify=csm_notice(customer),
        )
    organization = ensure_organization_task(workos, customer)
    if workos.setup_links_url:
        issued = long_lived_setup_link(workos, organization.id, once_key(customer.key, "setup-link"))
        return organization, issued_link(workos, issued)
    pasted = ask(
        DashboardSetupLink,
        key=WORKOS_SETUP_LINK,
        title=f"Paste {customer.company_name}'s Directory Sync setup link",
        description=(
            f"Open the organization in the WorkOS dashboard ({organization.page_url}), go to the setup link "
            "section, click **Create Link**, choose **Directory Sync** under Features, then paste the link."
        ),
        notify=csm_notice(customer),
    )
    return organization, pasted.setup_link


@flow(name=API_INTEGRATION, flow_run_name=run_name(API_INTEGRATION))
@ends_on_rejection
def api_integration(customer: Customer) -> dict:
    """From the WorkOS organization to the final summary email, each side effect once per customer."""
    progress = Progress(API_INTEGRATION, customer.company_name, customer.key, STEPS)
    smtp = load_block(SmtpServer)
    slack = load_block(SlackWorkspace)
    workos = load_block(WorkOSCredentials)
    catalogue = help_center_catalogue()
    help_url = catalogue.help_center_url

    progress.mark(1, "waiting", "CSM approves the organization")
    organization, setup_link = workos_step(customer, workos)
    progress.mark(1, "done", organization.page_url)

    progress.mark(2, "waiting", "CSM reviews the email")
    draft = draft_api_implementation_email(
        customer, catalogue, help_url, smtp.default_cc, setup_link, catalogue.default_question_fields
    )
    send_reviewed_email(
        customer, API_IMPLEMENTATION_EMAIL, draft, smtp, private={setup_link: SETUP_LINK_SHOWN}
    )
    progress.mark(2, "done")

    progress.mark(3, "waiting", "customer fills in the data mapping table")
    sheet_link, table = check_mapping_table(customer)
    segments = update_hub_segments(customer, table)
    progress.mark(3, "done", f"{len(table.fields)} field(s); segments: {segments}")

    progress.mark(4, "working")
    request = post_support_request(
        slack,
        api_support_request(customer, organization.page_url, sheet_link, run_link()),
        once_key(customer.key, "api-support-request"),
    )
    progress.mark(4, "done", request.permalink or "")

    progress.mark(5, "waiting", "engineering (usually 1–2 business days)")
    on = ask(
        IntegrationOn,
        key=INTEGRATION_ON,
        title=f"Engineering: is {customer.company_name}'s HRIS integration turned on?",
        description=f"Support request: {request.permalink}. Resume when the integration is on.",
        notify=Notify(channel=slack.product_support_channel),
    )
    record(INTEGRATION_ON, "Integration turned on", on.confirmed_by, "on", on.notes)
    progress.mark(5, "done", f"confirmed by {on.confirmed_by}")

    progress.mark(6, "waiting", "CSM confirms the cadence and reviews the email")
    cadence = ask(
        SummaryCadence,
        key=SUMMARY_CADENCE,
        title=f"Mapping-table update cadence agreed with {customer.company_name}",
        description=(
            "The final summary email states how often the customer sends updated values; the "
            "mapping-review deployment asks for them on this cadence."
        ),
        notify=csm_notice(customer),
    )
    keep_api_cadence(customer, sheet_link, cadence.cadence)  # mapping-review asks on this cadence
    summary = draft_api_final_summary(
        customer, catalogue, help_url, smtp.default_cc, sheet_link, cadence.cadence
    )
    sent = send_reviewed_email(customer, API_FINAL_SUMMARY, summary, smtp)
    progress.mark(6, "done")
    return {
        "organization": organization.id,
        "support_request": request.permalink,
        "final_email": sent.message_id,
        "segments": str(segments),
    }
