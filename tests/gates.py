"""Answering approval gates through the Prefect API, as a CSM does from the UI form."""

from __future__ import annotations

import threading
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.flow_runs import resume_flow_run
from prefect.input.actions import read_flow_run_input

from tests.conftest import wait_until


def read_run(flow_run_id: UUID):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def find_run_by_name(name: str) -> UUID:
    def lookup():
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
        return runs[0].id if runs else None

    return wait_until(lookup, what=f"flow run {name}")


def waiting_gate(flow_run_id: UUID, timeout: float = 240) -> str:
    """Wait until the run waits at a gate whose form is saved; return the gate's key."""

    def paused_with_form():
        run = read_run(flow_run_id)
        if run.state and run.state.is_final():
            raise AssertionError(
                f"run ended as {run.state.type.value} instead of waiting: {run.state.message}"
            )
        if not (run.state and run.state.is_paused()):
            return None
        keyset = run.state.state_details.run_input_keyset
        if not keyset or read_flow_run_input(keyset["schema"], flow_run_id=flow_run_id) is None:
            return None  # resume_flow_run would race the schema write
        return run.state.state_details.pause_key

    return wait_until(paused_with_form, timeout=timeout, what=f"run {flow_run_id} to wait at a gate")


def wait_for_gate(flow_run_id: UUID, gate: str, timeout: float = 120) -> None:
    """Wait until the run waits at this particular gate (it may wait at another one first)."""
    wait_until(
        lambda: waiting_gate(flow_run_id, timeout=timeout) == gate, timeout=timeout, what=f"gate {gate}"
    )


def answer(flow_run_id: UUID, expected_gate: str, **run_input) -> None:
    """Resume the run at `expected_gate` with the given form values."""
    gate = waiting_gate(flow_run_id)
    assert gate == expected_gate, f"run waits at {gate!r}, not {expected_gate!r}"
    resume_flow_run(flow_run_id, run_input=run_input)


def form_description(flow_run_id: UUID) -> str:
    """The markdown shown on the form of the gate the run waits at (waiting for it if need be)."""
    waiting_gate(flow_run_id)
    run = read_run(flow_run_id)
    keyset = run.state.state_details.run_input_keyset
    return read_flow_run_input(keyset["description"], flow_run_id=flow_run_id)


class FlowInThread:
    """Run a flow call in a thread (it pauses in-process) and collect its final state."""

    def __init__(self, flow, name: str, **parameters):
        self.name = name
        self.state = None
        self._thread = threading.Thread(
            target=self._run, args=(flow.with_options(flow_run_name=name), parameters), daemon=True
        )
        self._thread.start()
        self.flow_run_id = find_run_by_name(name)

    def _run(self, flow, parameters):
        self.state = flow(**parameters, return_state=True)

    def result(self, timeout: float = 180):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"{self.name} did not finish within {timeout}s"
        return self.state


PYTHON_REPRS = ("{'", "[<", "datetime.")


def artifacts_and_logs(flow_run_id: UUID) -> tuple[list[dict], list[str]]:
    """Every artifact (newest first) and log line of a run, as people see them in the UI."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.request(
            "POST",
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}}, "sort": "CREATED_DESC"},
        ).json()
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return artifacts, [log.message for log in logs]


def assert_words_only(texts: list[str]) -> None:
    """No Python repr (a dict, a list of objects, a datetime) reaches a person."""
    for text in filter(None, texts):  # a link artifact has no data
        assert not any(r in text for r in PYTHON_REPRS), f"a Python repr reached a person: {text[:300]}"
