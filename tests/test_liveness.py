"""A long process-upload is not a dead one: sftp-watch judges a Running run by its heartbeats."""

from __future__ import annotations

from datetime import timedelta

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.states import Running

from flows.sftp_watch import _stale
from tasks.liveness import last_heartbeat
from tests.conftest import wait_until


@flow(name="liveness-probe")
def probe() -> None:
    """Never run: its runs are made Running by hand."""


def running_run():
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(probe)
        client.set_flow_run_state(run.id, Running(), force=True)
        return client.read_flow_run(run.id)


def test_a_run_running_for_hours_that_still_beats_is_alive_and_a_silent_one_is_dead(prefect_api):
    """Issue 20: sftp-watch marked a process-upload Crashed after 60 minutes Running, so a slow hub
    apply was started a second time. Two hours in, a run whose process beat a minute ago is alive."""
    slow, silent = running_run(), running_run()
    later = slow.state.timestamp + timedelta(hours=2)
    emit_event(
        event="prefect.flow-run.heartbeat",
        resource={"prefect.resource.id": f"prefect.flow-run.{slow.id}"},
        occurred=later - timedelta(minutes=1),
    )
    wait_until(
        lambda: last_heartbeat(slow, since=slow.state.timestamp, until=later),
        timeout=60,
        what="the heartbeat to be stored",
    )

    assert not _stale(slow, later, timedelta(minutes=60))
    assert _stale(silent, silent.state.timestamp + timedelta(hours=2), timedelta(minutes=60))
    assert not _stale(silent, silent.state.timestamp + timedelta(minutes=30), timedelta(minutes=60))
