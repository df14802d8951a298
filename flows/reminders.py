"""`approval-reminders`: reminds people about suspended runs, which hold no process to do it themselves."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.input.actions import read_flow_run_input

from tasks.approvals import wait_settings
from tasks.contracts import artifact_key
from tasks.gate_notices import Notify, send_reminder
from tasks.registry import registration

PAGE = 200  # paused runs read per request


def _title(flow_run_id, keyset: dict | None) -> str:
    description = read_flow_run_input(keyset["description"], flow_run_id=flow_run_id) if keyset else None
    first = (description or "").strip().splitlines()[:1]
    return first[0].lstrip("# ").strip() if first else "an answer in the Prefect UI"


def _notify_from(parameters: dict) -> Notify | None:
    """Who to remind: the run's customer form, or for process-upload runs (which carry only the
    customer's key) the customer of its registration."""
    customer = parameters.get("customer") or {}
    if not customer and (reg := registration(parameters.get("customer_key") or "")) is not None:
        customer = reg.customer.model_dump(mode="json")
    csm = customer.get("csm") or {}
    if not (csm.get("email") or customer.get("slack_channel")):
        return None
    return Notify(email=csm.get("email"), channel=customer.get("slack_channel"))


def _paused_runs(client, page_size: int) -> list:
    """Every paused run, page by page (one request returns at most a page)."""
    query = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    runs: list = []
    while True:
        page = client.read_flow_runs(
            flow_run_filter=query, sort=FlowRunSort.ID_DESC, limit=page_size, offset=len(runs)
        )
        runs += page
        if len(page) < page_size:
            return runs


@flow(name="approval-reminders")  # not per customer: Prefect's generated run names are fine
def approval_reminders(now: datetime | None = None, page_size: int = PAGE) -> int:
    """Send a reminder for every suspended deployment run whose wait passed another reminder interval.

    `now` (default: the clock) is the moment waits are judged at, so a test never races the interval."""
    logger = get_run_logger()
    now = now or datetime.now(UTC)
    sent = 0
    configured = wait_settings()  # the `hris_wait_settings` Variable, read once per tick
    with get_client(sync_client=True) as client:
        paused = _paused_runs(client, page_size)
        for run in paused:
            if run.deployment_id is None or run.state is None:
                continue  # an in-process pause reminds on its own
            details = run.state.state_details
            given = run.parameters.get("wait")  # a run started before `wait` left the form
            wait = wait_settings(given) if given else configured
            waited_hours = (now - run.state.timestamp).total_seconds() / 3600
            due = int(waited_hours // wait.remind_after_hours)
            key = artifact_key("reminder", details.pause_key or "")
            already = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])
                )
            )
            if due > len(already):
                title = _title(run.id, details.run_input_keyset)
                send_reminder(
                    run.id, title, details.pause_key or "", waited_hours, _notify_from(run.parameters)
                )
                sent += 1
    logger.info("Checked %d waiting run(s), sent %d reminder(s)", len(paused), sent)
    return sent
