"""Runbook steps shared by several flows, built from tasks and the approval gate."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.variables import Variable

from blocks import SmtpServer, TenKCHub, optional_block
from flows.approvals import Notify, WaitSettings, artifact_key, request_approval
from tasks.customer import Customer
from tasks.emails import EmailDraft, SentEmail, send_email
from tasks.mapping import MappingTable
from tasks.once import already_done, once_key
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
    key = artifact_key("segments", customer.key)
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
