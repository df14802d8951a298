"""A customer's uploads in flight: one `process-upload` run per claimed upload, applied oldest first.

Prefect is the only record: the live runs of `process-upload` (not yet final) say which uploads
are being handled; their `upload` parameter (the claimed name, which starts with the claim's UTC
time) orders them. No second copy of the truth to fall out of step.
"""

from __future__ import annotations

import logging

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.flow_runs import resume_flow_run
from prefect.input.actions import read_flow_run_input

from tasks.contracts import PROCESS_UPLOAD, QUEUED, gate_of

NOT_FINAL = [
    StateType.SCHEDULED,
    StateType.PENDING,
    StateType.RUNNING,
    StateType.PAUSED,
    StateType.CANCELLING,
]

logger = logging.getLogger(__name__)


def upload_runs(customer_key: str | None = None, live_only: bool = True) -> list[FlowRun]:
    """process-upload runs (of one customer, or all), oldest claim first."""
    state = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=NOT_FINAL)))
    runs: list[FlowRun] = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[PROCESS_UPLOAD])),
                flow_run_filter=state if live_only else None,
                offset=len(runs),
                limit=200,
            )
            runs += page
            if len(page) < 200:
                break
    if customer_key is not None:
        runs = [r for r in runs if r.parameters.get("customer_key") == customer_key]
    return sorted(runs, key=lambda r: (str(r.parameters.get("upload", "")), str(r.created)))


def is_queued(run: FlowRun) -> bool:
    """Waiting behind an older upload of the same customer (not at a person's gate)."""
    details = run.state.state_details if run.state else None
    return bool(run.state and run.state.is_paused() and gate_of(details.pause_key or "") == QUEUED)


def older_uploads(customer_key: str, upload: str, own_run_id: str) -> list[str]:
    """Uploads of this customer claimed before `upload` and still being handled by another run."""
    return [
        r.parameters["upload"]
        for r in upload_runs(customer_key)
        if str(r.id) != own_run_id and str(r.parameters.get("upload", "")) < upload
    ]


def resume_next_upload(customer_key: str, finished_run_id: str | None = None) -> str | None:
    """Let the oldest queued upload of a customer go on, if no older one is still being handled
    (`finished_run_id`: the run that has just decided its upload and is ending)."""
    live = [r for r in upload_runs(customer_key) if str(r.id) != finished_run_id]
    if not live or not is_queued(live[0]):
        return None
    run = live[0]
    keyset = run.state.state_details.run_input_keyset
    if keyset and read_flow_run_input(keyset["schema"], flow_run_id=run.id) is None:
        return None  # still writing its form; the next watcher tick resumes it
    try:
        resume_flow_run(run.id, run_input={"go": True})
    except Exception as exc:  # raced with another resumer: it goes on either way
        logger.warning("Could not resume queued upload run %s: %s", run.id, exc)
        return None
    return str(run.parameters["upload"])
