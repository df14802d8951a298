"""A customer's uploads in flight: one `process-upload` run per claimed upload, applied oldest first.

The claims in the customer's `processing/` folder are the queue: a claimed name starts with the
claim's UTC time (uploads claimed in one tick in arrival order), so names sort oldest first, and a
claim leaves processing/ only when it is decided (archived) or refused. A newer upload waits while
an older claim is there, whatever happened to that claim's run (a failed or crashed run holds its
place until it is handled). Prefect's live runs say which run to let go on.
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
from prefect.input import RunInput
from prefect.input.actions import read_flow_run_input
from pydantic import Field

from blocks import SftpServer, load_block
from tasks.approvals import WaitSettings, ask
from tasks.contracts import PROCESS_UPLOAD, PROCESSING, QUEUED, gate_of, inbox_folder, numbered
from tasks.registry import Registration
from tasks.sftp import inbox_path, original_name

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


def claims_in_processing(reg: Registration) -> list[str]:
    """The customer's claimed uploads not yet archived or refused, oldest first."""
    server = load_block(SftpServer, reg.sftp_block)
    with server.get_client() as sftp:
        return listed_claims(sftp, inbox_path(server.inbox_root, reg.customer.key))


def listed_claims(sftp, inbox: str) -> list[str]:
    """processing/ of one inbox, oldest claim first."""
    try:
        return sorted(sftp.listdir(inbox_folder(inbox, PROCESSING)))
    except FileNotFoundError:
        return []


def older_claims(in_processing: list[str], upload: str) -> list[str]:
    """Claims older than `upload` still in processing/: `upload` waits until each is decided or refused."""
    return sorted(name for name in in_processing if name < upload)


def resume_next_upload(
    customer_key: str, in_processing: list[str], finished_run_id: str | None = None
) -> str | None:
    """Let the run of the oldest claim in processing/ go on if it is queued (`finished_run_id`: the
    run that has just decided its upload and is ending). Nothing goes on while the oldest claim has no
    run waiting: the watcher starts that claim again, or a person handles it."""
    if not in_processing:
        return None
    oldest = min(in_processing)
    run = next(
        (
            r
            for r in upload_runs(customer_key)
            if str(r.id) != finished_run_id and r.parameters.get("upload") == oldest and is_queued(r)
        ),
        None,
    )
    if run is None:
        return None
    keyset = run.state.state_details.run_input_keyset
    if keyset and read_flow_run_input(keyset["schema"], flow_run_id=run.id) is None:
        return None  # still writing its form; the next watcher tick resumes it
    try:
        resume_flow_run(run.id, run_input={"go": True})
    except Exception as exc:  # raced with another resumer: it goes on either way
        logger.warning("Could not resume queued upload run %s: %s", run.id, exc)
        return None
    return str(run.parameters["upload"])


class GoAhead(RunInput):
    """Sent by the run of the older upload when it is done (or by the watcher); not for people."""

    go: bool = Field(default=True, title="Go ahead", description="Filled in automatically")


def wait_for_older_uploads(reg: Registration, upload: str, wait: WaitSettings) -> None:
    """Never compare or apply a newer upload before an older one of the same customer is decided."""
    for turn in range(1, 10_000):
        older = older_claims(claims_in_processing(reg), upload)
        if not older:
            return
        ask(
            GoAhead,
            key=numbered(QUEUED, turn),
            title=f"{reg.customer.company_name}: `{original_name(upload)}` waits for an older upload",
            description=(
                f"{len(older)} older upload(s) of this customer are still in processing/ "
                f"(oldest: `{older[0]}`). This run goes on by itself once they are decided or refused."
            ),
            wait=wait,
        )
