"""Runbook steps shared by several flows, built from tasks and the approval gate."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.variables import Variable

from blocks import SmtpServer, TenKCHub, optional_block
from flows.approvals import Notify, WaitSettings, artifact_key, request_approval, run_link
from tasks.customer import Customer, key_in_alphabet
from tasks.emails import EmailDraft, SentEmail, send_email
from tasks.mapping import MappingTable
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
