"""`mapping-review`: the data mapping table stays alive after go-live.

Runbook, final email: the customer "will provide us updated unique values for all the fields on a
monthly or quarterly basis". Daily, every customer whose review period has ended gets one run of
this deployment, which drafts that request (for SFTP customers, with the values their recent uploads
carried that the table does not map) and sends it after the CSM approves. Once per customer and
period; not at all when the customer sent a new table (`update-mapping`) in the period.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment
from prefect.states import Failed, State

from blocks import SmtpServer, load_block
from tasks.approvals import Rejected, ends_on_rejection, wait_settings
from tasks.contracts import MAPPING_REVIEW, MAPPING_REVIEW_EMAIL, deployment_name, review_email_step
from tasks.email_drafts import draft_mapping_review_email
from tasks.gate_notices import run_link
from tasks.mapping_cadence import (
    CadenceCustomer,
    cadence_customer,
    cadence_customers,
    note_review,
    review_state,
)
from tasks.naming import review_run_name
from tasks.once import once_key, once_task
from tasks.review_periods import Period, last_ended, parse_period, sent_new_table
from tasks.steps import help_center_catalogue, send_reviewed_email
from tasks.upload_history import customer_uploads, unmapped_since

NOT_ASKED = "not asked: the customer sent a new table in the period"


@once_task("start-mapping-review")
def start_review(customer_key: str, period: str, once_key: str) -> str:
    """One review run per customer and period, however often the daily sweep runs."""
    parameters = {"customer_key": customer_key, "period": period}
    run = run_deployment(deployment_name(MAPPING_REVIEW), parameters=parameters, timeout=0, as_subflow=False)
    get_run_logger().info("Started the %s review of %s: %s", period, customer_key, run_link(run.id))
    return str(run.id)


def is_done(customer_key: str, period: Period) -> bool:
    state = review_state(customer_key)
    return state is not None and state.until >= period.end


def sweep(now: datetime) -> dict:
    """Start the review of every customer whose last ended period has not been reviewed yet."""
    started = not_asked = 0
    for found in cadence_customers():
        key, period = found.customer.key, last_ended(found.cadence, now)
        if is_done(key, period):
            continue
        if sent_new_table(period, found.mapping_updated_at):
            note_review(key, period, NOT_ASKED)
            not_asked += 1
            continue
        start_review(key, period.label, once_key(key, f"start-{review_email_step(period.label)}"))
        started += 1
    get_run_logger().info("Mapping reviews: %d started, %d not asked (new table)", started, not_asked)
    return {"started": started, "not_asked": not_asked}


def unmapped_values(found: CadenceCustomer, period: Period) -> list[dict]:
    """SFTP: what the uploads since the period began carried that the table does not map."""
    if found.path != "SFTP":
        return []
    seen = unmapped_since(customer_uploads(found.customer.key), period.start)
    return [
        {"field": s.field, "value": s.value, "people": s.people, "first_seen": f"{s.first_seen:%Y-%m-%d}"}
        for s in seen
    ]


def review(found: CadenceCustomer, period: Period) -> dict:
    """Draft the request for updated values, the CSM approves at the gate, send once per period."""
    key = found.customer.key
    if sent_new_table(period, found.mapping_updated_at):
        return {"outcome": note_review(key, period, NOT_ASKED).outcome}
    smtp = load_block(SmtpServer)
    catalogue = help_center_catalogue()
    unmapped = unmapped_values(found, period)
    draft = draft_mapping_review_email(
        found.customer,
        catalogue,
        catalogue.help_center_url,
        smtp.default_cc,
        found.mapping_link,
        found.cadence,
        period.label,
        unmapped,
    )
    try:
        sent = send_reviewed_email(
            found.customer,
            MAPPING_REVIEW_EMAIL,
            draft,
            smtp,
            wait_settings(),
            once_step=review_email_step(period.label),
        )
    except Rejected as rejected:
        note_review(key, period, f"rejected by {rejected.approver}: {rejected.reason}")
        raise
    note_review(key, period, "sent")
    return {"outcome": "sent", "message_id": sent.message_id, "unmapped_values": len(unmapped)}


@flow(name=MAPPING_REVIEW, flow_run_name=review_run_name)
@ends_on_rejection
def mapping_review(customer_key: str = "", period: str = "") -> dict | State:
    """Daily without parameters: start each due customer's review. With them: that review.

    Args:
        customer_key: The customer to review (their primary email domain); empty for the daily sweep.
        period: The period reviewed, a month (2026-11) or a quarter (2026-Q4); with `customer_key`.
    """
    if not customer_key:
        return sweep(datetime.now(UTC))
    found = cadence_customer(customer_key)
    if found is None:
        return Failed(message=f"customer {customer_key}: no mapping review cadence is kept for them")
    try:
        reviewed = parse_period(period)
    except ValueError as exc:  # a hand-started run's parameter: one line, no traceback
        return Failed(message=str(exc))
    return review(found, reviewed)
