"""Runbook steps shared by several flows, built from tasks and the approval gate."""

from __future__ import annotations

import itertools
import re
from typing import ClassVar, Literal

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.input import RunInput
from prefect.variables import Variable
from pydantic import Field, field_validator, model_validator

from blocks import GoogleSheetsCredentials, SmtpServer, TenKCHub, load_block, optional_block
from tasks.approval_notices import email_details
from tasks.approvals import Approval, WaitSettings, artifact_key, ask, decide, record, request_approval
from tasks.contracts import (
    MAPPING_TABLE,
    SEGMENTS_CHECKLIST,
    SEGMENTS_PLAN,
    deployment_name,
    numbered,
    unclear_email,
)
from tasks.customer import Customer, check_email, key_in_alphabet
from tasks.emails import EMAIL_ARRIVED, SEND_AGAIN, EmailDraft, EmailMaybeSent, SentEmail, send_email
from tasks.gate_notices import Notify, current_run_id, masked, run_link
from tasks.hub import HubClient
from tasks.mapping import MappingTable, parse_mapping_link, read_and_check_mapping
from tasks.once import already_done, once_key, once_task
from tasks.platforms import (
    Catalogue,
    catalogue_links,
    is_placeholder,
    is_placeholder_host,
    load_catalogue,
    with_overrides,
)
from tasks.records import SegmentsOutcome
from tasks.segments import apply_plan, checklist, plan_segments, plan_segments_task

HELP_CENTER_VARIABLE = "help_center"


def help_center_catalogue() -> Catalogue:
    """The platform catalogue with the `help_center` Variable's overrides (base URL, guide paths)
    and the older `help_center_url` Variable applied; platforms.yaml is only the default."""
    catalogue = load_catalogue()
    legacy = Variable.get("help_center_url", default=None)
    if legacy:
        catalogue = with_overrides(catalogue, {"base_url": legacy})
    return with_overrides(catalogue, Variable.get(HELP_CENTER_VARIABLE, default=None))


def help_center_warning(catalogue: Catalogue) -> str | None:
    """One line for `make up` and the logs while any Help Center link is still a placeholder."""
    if not catalogue.uses_placeholders:
        return None
    if is_placeholder_host(catalogue.help_center_url):
        where = catalogue.help_center_url
    else:
        kinds = [kind for kind, url in catalogue_links(catalogue).items() if is_placeholder(url)]
        where = f"{len(kinds)} placeholder paths: {', '.join(kinds[:3])}{', …' if len(kinds) > 3 else ''}"
    return (
        f"Help Center links are placeholders ({where}): set the Prefect Variable `help_center` to "
        '{"base_url": "https://…", "guides": {"Workday": "/articles/…"}, "api_guide": "/articles/…", …} '
        "before emailing customers."
    )


def csm_notice(customer: Customer) -> Notify:
    """Waiting runs tell the CSM by Slack DM, or in the customer's account channel."""
    return Notify(email=customer.csm.email, channel=customer.slack_channel)


def _addresses(value: str, field: str, required: bool) -> str:
    """Check a comma-separated address list; returns it normalised (", " between addresses)."""
    addresses = [a.strip() for a in re.split(r"[,;\n]", value) if a.strip()]
    if required and not addresses:
        raise ValueError(f"give at least one address in {field}")
    for address in addresses:
        try:
            check_email(address)
        except ValueError:
            raise ValueError(f"{address!r} in {field} is not an email address") from None
    return ", ".join(addresses)


class EmailReview(Approval):
    """Approve or reject the email; correct the subject, the recipients or the body before it goes out."""

    subject: str = Field(title="Subject", description="The subject line the customer sees (one line)")
    to: str = Field(title="To", description="Recipients, separated by commas")
    cc: str = Field(
        default="", title="Cc", description="Copied addresses, separated by commas (may be empty)"
    )
    body: str = Field(
        title="Body",
        description="The email in simple markup: **bold**, [label](https://link), '- ' lists, '## ' headings",
    )

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        value = value.strip()
        if not value or "\n" in value or len(value) > 200:
            raise ValueError("the subject must be one line of 1 to 200 characters")
        return value

    @field_validator("to")
    @classmethod
    def _to(cls, value: str) -> str:
        return _addresses(value, "To", required=True)

    @field_validator("cc")
    @classmethod
    def _cc(cls, value: str) -> str:
        return _addresses(value, "Cc", required=False)

    # What the body shows instead of a private value (a link): the email puts the value back there.
    keep: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _body_when_sending(self) -> EmailReview:
        if self.decision == "approve" and not self.body.strip():
            raise ValueError("body: the email to send is empty")
        missing = [text for text in self.keep if text not in self.body]
        if self.decision == "approve" and missing:
            raise ValueError(f"body: keep {missing[0]} in the text; the email puts the real link there")
        return self


def _review_form(private: dict[str, str]) -> type[EmailReview]:
    """EmailReview, checking that the stand-ins of `private` values are still in the approved body."""
    if not private:
        return EmailReview
    return type("EmailReview", (EmailReview,), {"keep": tuple(private.values()), "__module__": __name__})


def _reviewed(draft: EmailDraft, review: EmailReview) -> tuple[EmailDraft, list[str]]:
    """The draft as the reviewer left it, and the names of what they changed."""
    to, cc = review.to.split(", "), [c for c in review.cc.split(", ") if c]
    body = review.body.strip() + "\n"
    changes = {
        "subject": review.subject != draft.subject,
        "To": to != draft.to,
        "Cc": cc != draft.cc,
        "body": body.strip() != draft.body.strip(),
    }
    changed = [name for name, differs in changes.items() if differs]
    return draft.model_copy(update={"subject": review.subject, "to": to, "cc": cc, "body": body}), changed


def send_reviewed_email(
    customer: Customer,
    step: str,
    draft: EmailDraft,
    smtp: SmtpServer,
    wait: WaitSettings | None = None,
    private: dict[str, str] | None = None,
    once_step: str | None = None,
) -> SentEmail:
    """A CSM approves (and may correct subject, To, Cc and body), then it is sent; never twice for a step.

    `private` maps values in the body (a setup link) to what the form, artifacts and Slack show
    instead, since Prefect keeps those in plain text; only the email carries the values.
    `once_step` (default: `step`, the gate) names the email in its once-key, for an email sent
    again each period (mapping-review-email-2026-11)."""
    key = once_key(customer.key, once_step or step)
    previous = already_done(key)
    if previous is not None:
        get_run_logger().info(
            "%s: already sent at %s, not sending again", step, f"{previous.sent_at:%Y-%m-%d %H:%M} UTC"
        )
        return previous
    private = private or {}
    shown = draft.model_copy(update={"body": masked(draft.body, private)})
    title = f"Send “{draft.subject}” to {customer.company_name}"
    for warning in shown.warnings():
        get_run_logger().warning("%s: %s", step, warning)
    review = ask(
        _review_form(private),
        key=step,
        title=title,
        description=shown.for_review(),
        wait=wait,
        initial={
            "subject": draft.subject,
            "to": ", ".join(draft.to),
            "cc": ", ".join(draft.cc),
            "body": shown.body,
        },
        notify=csm_notice(customer),
        details=email_details(shown),
    )
    reviewed, changed = _reviewed(shown, review)
    decide(step, title, review, f"Corrected before sending: {', '.join(changed)}." if changed else "")
    body = reviewed.body
    for value, stand_in in private.items():
        body = body.replace(stand_in, value)
    final = reviewed.model_copy(update={"body": body})
    try:
        return send_email(smtp, final, key)
    except EmailMaybeSent as unclear:
        arrived = ask_if_it_arrived(customer, step, shown, str(unclear), wait)
        return send_email(smtp, final, key, unclear_answer=arrived.outcome)


class EmailArrived(RunInput):
    """Whether an email whose sending was cut off reached the customer (the CSM has a Cc copy)."""

    outcome: Literal[EMAIL_ARRIVED, SEND_AGAIN] = Field(  # type: ignore[valid-type]
        title="Did it arrive?",
        description="Look for it in your own inbox (you are in Cc) before answering",
    )
    answered_by: str = Field(min_length=1, title="Your name", description="Recorded with the answer")


def ask_if_it_arrived(
    customer: Customer, step: str, shown: EmailDraft, problem: str, wait: WaitSettings | None
) -> EmailArrived:
    """Ask the CSM, who is in Cc, rather than risk a second email or a lost one."""
    title = f"Did “{shown.subject}” reach {customer.company_name}?"
    answer = ask(
        EmailArrived,
        key=unclear_email(step),
        title=title,
        description=(
            f"**{problem}.** Sending it again could give the customer two copies; not sending could "
            f"lose it. You are in Cc: look for it in your inbox, then answer.\n\n{shown.for_review()}"
        ),
        wait=wait,
        notify=csm_notice(customer),
    )
    record(unclear_email(step), title, answer.answered_by, answer.outcome)
    return answer


class MappingTableReady(RunInput):
    """The customer says the data mapping table is complete (or fixed)."""

    sheet_link: str = Field(
        title="Data mapping table link",
        description="The Google Sheets link of the completed table (https://docs.google.com/spreadsheets/d/…)",
    )
    answered_by: str = Field(min_length=1, title="Your name", description="Recorded with the answer")


def check_mapping_table(
    customer: Customer, wait: WaitSettings | None = None, link: str | None = None, given_by: str = ""
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
                key=numbered(MAPPING_TABLE, attempt),
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
        gate = numbered(MAPPING_TABLE, attempt)
        if check.problem is None and not check.report.errors:
            record(gate, "Data mapping table", who, "accepted", check.report.markdown())
            return parse_mapping_link(sheet_link).link, check.table  # registered as every upload reads it
        problem = check.problem or check.report.markdown()
        record(gate, "Data mapping table", who, "needs fixes", problem)
        feedback = (
            "**The table could not be used yet.** Forward this to the customer, then answer again when "
            f"it is fixed:\n\n{problem}\n\n---\n\n"
        )
    raise AssertionError("unreachable")


@once_task("apply-segments")
def apply_segments_once(client: HubClient, table: MappingTable, once_key: str) -> SegmentsOutcome:
    """Apply once per run: a resumed run that re-executes reports what the first apply did."""
    result = apply_plan(client, plan_segments(table, client.list_segments()))
    get_run_logger().info(
        "Segments applied: %d created, %d option(s) added",
        result["segments_created"],
        result["options_added"],
    )
    return SegmentsOutcome(mode="api", **result)


def update_hub_segments(
    customer: Customer,
    table: MappingTable,
    wait: WaitSettings | None = None,
    shown: tuple[str, str] = ("", ""),
) -> SegmentsOutcome:
    """Runbook "Update hub segments": through the hub API after the CSM approves the plan, or as
    the CSM's checklist when no hub API is configured. Only what is missing is added. `shown`: more
    for the gate to show (markdown for the form, Slack text for the notice: update-mapping's what-if)."""
    more, details = (f"\n\n---\n\n{shown[0]}" if shown[0] else ""), shown[1]
    hub = optional_block(TenKCHub)
    client = hub.get_client(customer.hub_url) if hub else None
    applied_key = once_key(current_run_id(), "segments-applied")
    applied = already_done(applied_key) if client is not None else None
    if applied is not None:
        return applied  # a resumed run: the first apply's result, not a re-plan's
    plan = plan_segments_task(table, client)
    key = artifact_key("segments", key_in_alphabet(customer.key, "-"))
    if plan.is_empty:
        create_markdown_artifact(key=key, markdown=plan.markdown(), description="Hub segments")
        return SegmentsOutcome(mode="api" if client else "checklist")
    if client is None:
        steps = checklist(plan, customer.hub_url)
        create_markdown_artifact(key=key, markdown=steps, description="Hub segments: checklist for the CSM")
        request_approval(
            key=SEGMENTS_CHECKLIST,
            title=f"Update {customer.company_name}'s hub segments, then approve here",
            what=steps + "\nApprove once every segment and option above is in the hub." + more,
            wait=wait,
            notify=csm_notice(customer),
            details=details,
        )
        return SegmentsOutcome(mode="checklist", segments_checked=len(plan.changes))
    create_markdown_artifact(key=key, markdown=plan.markdown(), description="Hub segments: plan")
    request_approval(
        key=SEGMENTS_PLAN,
        title=f"Apply this segment plan to {customer.company_name}'s hub?",
        what=plan.markdown() + more,
        wait=wait,
        notify=csm_notice(customer),
        details=details,
    )
    outcome = apply_segments_once(client, table, applied_key)
    create_markdown_artifact(key=key, markdown=f"Applied: {outcome}.\n", description="Hub segments: applied")
    return outcome


@once_task("start-flow")
def _start_deployment(name: str, parameters: dict, once_key: str) -> str:
    run = run_deployment(name, parameters=parameters, timeout=0, as_subflow=False)
    get_run_logger().info("Started %s: %s", name, run_link(run.id))
    return str(run.id)


def start_next_flow(flow_name: str, customer: Customer, wait: WaitSettings | None = None) -> str | None:
    """Start the customer's next flow once (`<flow>/<flow>` deployment); None if it is not deployed.

    Timing comes from the `hris_wait_settings` Variable, so only the customer is passed on."""
    name = deployment_name(flow_name)
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            get_run_logger().warning("Deployment %s not found: start %s from the Prefect UI", name, flow_name)
            return None
    parameters = {"customer": customer.model_dump(mode="json")}
    return _start_deployment(name, parameters, once_key(customer.key, f"start-{flow_name}"))
