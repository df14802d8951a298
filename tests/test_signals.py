"""Flow-to-flow answers (`send_signal` / `wait_for_signal`): no form for a person to fill."""

from __future__ import annotations

import uuid

from prefect import flow
from pydantic import BaseModel

from tasks.approvals import send_signal, wait_for_signal
from tests.conftest import wait_until
from tests.gates import FlowInThread, read_run


class Upload(BaseModel):
    upload: str
    invites: int


@flow
def waits_for_an_upload() -> str:
    got = wait_for_signal(
        Upload, key="production-upload", title="Waiting for the upload", description="sftp-watch"
    )
    return f"{got.upload}: {got.invites} invites"


def paused(flow_run_id):
    state = read_run(flow_run_id).state
    return state.is_paused() and state


def test_a_run_waits_without_a_form_and_an_early_resume_only_makes_it_wait_again(prefect_api):
    from prefect.flow_runs import resume_flow_run

    run = FlowInThread(waits_for_an_upload, f"signal-{uuid.uuid4().hex[:8]}")
    state = wait_until(lambda: paused(run.flow_run_id), what="the run to wait")
    assert state.state_details.run_input_keyset is None  # the UI shows a Resume button, not a form
    resume_flow_run(run.flow_run_id)  # a person clicks Resume too early
    wait_until(
        lambda: (s := paused(run.flow_run_id)) and s.state_details.pause_key == "production-upload-1",
        what="the run to wait again",
    )
    send_signal(run.flow_run_id, "production-upload", Upload(upload="staff.csv", invites=3))
    send_signal(
        run.flow_run_id, "production-upload", Upload(upload="other.csv", invites=9)
    )  # a retried sender
    assert run.result().result() == "staff.csv: 3 invites"
