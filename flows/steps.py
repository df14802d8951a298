"""Runbook steps shared by several flows, built from tasks and the approval gate."""

from __future__ import annotations

import itertools

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.input import RunInput
from prefect.variables import Variable
from pydantic import Field

from blocks import GoogleSheetsCredentials, SmtpServer, TenKCHub, load_block, optional_block
from flows.approvals import (
    Notify,
    WaitSettings,
    artifact_key,
    ask,
    current_run_id,
    record,
    request_approval,
    run_link,
)
from tasks.customer import Customer, key_in_alphabet
from tasks.emails import EmailDraft, SentEmail, send_email
from tasks.mapping import MappingTable, read_and_check_mapping
from tasks.once import already_done, once_key, once_policy
from tasks.platforms import load_catalogue
from tasks.segments import apply_segments_task, checklist, plan_segments_task


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


class MappingTableReady(RunInput):
    """The customer says the data mapping table is complete (or fixed)."""

    sheet_link: str = Field(description="Link to the completed data mapping table in Google Sheets")
    answered_by: str = Field(min_length=1, description="Your name")


def check_mapping_table(
    customer: Customer, wait: WaitSettings, link: str | None = None, given_by: str = ""
) -> tuple[str, MappingTable]:
    """Read and check the data mapping table, sending the report back until it is clean.

    `link`, when another form already gave it, is checked first; otherwise, and after each table with
    problems, the CSM is asked at gate `mapping-table-<attempt>`. Returns the accepted link and table.
    """
    credentials = load_block(GoogleSheetsCredentials)
    feedback = ""
    for attempt in itertools.count(1):
        if attempt == 1 and link:
            sheet_link, who = link, given_by or customer.csm.name
        else:
            ready = ask(
                MappingTableReady,
                key=f"mapping-table-{attempt}",
                title=f"Is {customer.company_name}'s data mapping table complete?",
                description=(
                    feedback
                    + "When the customer has filled in columns B, C and G, paste the sheet's link. Share "
                    f"the sheet with `{credentials.client_email}` (Viewer) first."
                ),
                wait=wait,
                notify=csm_notice(customer),
            )
            sheet_link, who = ready.sheet_link, ready.answered_by
        check = read_and_check_mapping(
            credentials, sheet_link, once_key(current_run_id(), f"mapping-{attempt}")
        )
        if check.problem is None and not check.report.errors:
            record(f"mapping-table-{attempt}", "Data mapping table", who, "accepted", check.report.markdown())
            return sheet_link, check.table
        problem = check.problem or check.report.markdown()
        record(f"mapping-table-{attempt}", "Data mapping table", who, "needs fixes", problem)
        feedback = (
            "**The table could not be used yet.** Forward this to the customer, then answer again when "
            f"it is fixed:\n\n{problem}\n\n---\n\n"
        )
    raise AssertionError("unreachable")


def update_hub_segments(customer: Customer, table: MappingTable, wait: WaitSettings) -> dict:
    """Runbook "Update hub segments": through the hub API after the CSM approves the plan, or as
    the CSM's checklist when no hub API is configured. Only what is missing is added."""
    hub = optional_block(TenKCHub)
    client = hub.get_client(customer.hub_url) if hub else None
    plan = plan_segments_task(table, client)
    key = artifact_key("segments", key_in_alphabet(customer.key, "-"))
    if plan.is_empty:
        create_markdown_artifact(key=key, markdown=plan.markdown(), description="Hub segments")
        return {"mode": "api" if client else "checklist", "segments_created": 0, "options_added": 0}
    if client is None:
        steps = checklist(plan, customer.hub_url)
        create_markdown_artifact(key=key, markdown=steps, description="Hub segments: checklist for the CSM")
        request_approval(
            key="segments-checklist",
            title=f"Update {customer.company_name}'s hub segments, then approve here",
            what=steps + "\nApprove once every segment and option above is in the hub.",
            wait=wait,
            notify=csm_notice(customer),
        )
        return {"mode": "checklist", "segments": len(plan.changes)}
    create_markdown_artifact(key=key, markdown=plan.markdown(), description="Hub segments: plan")
    request_approval(
        key="segments-plan",
        title=f"Apply this segment plan to {customer.company_name}'s hub?",
        what=plan.markdown(),
        wait=wait,
        notify=csm_notice(customer),
    )
    result = apply_segments_task(client, table)
    create_markdown_artifact(
        key=key,
        markdown=(
            f"Applied: {result['segments_created']} segment(s) created, "
            f"{result['options_added']} option(s) added.\n"
        ),
        description="Hub segments: applied",
    )
    return {"mode": "api", **result}


@task(name="start-flow", cache_policy=once_policy(), persist_result=True)
def _start_deployment(name: str, parameters: dict, once_key: str) -> str:
    run = run_deployment(name, parameters=parameters, timeout=0, as_subflow=False)
    get_run_logger().info("Started %s: %s", name, run_link(run.id))
    return str(run.id)


def start_next_flow(flow_name: str, customer: Customer, wait: WaitSettings) -> str | None:
    """Start the customer's next flow once (`<flow>/<flow>` deployment); None if it is not deployed."""
    name = f"{flow_name}/{flow_name}"
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            get_run_logger().warning("Deployment %s not found: start %s from the Prefect UI", name, flow_name)
            return None
    parameters = {"customer": customer.model_dump(mode="json"), "wait": wait.model_dump(mode="json")}
    return _start_deployment(name, parameters, once_key(customer.key, f"start-{flow_name}"))
