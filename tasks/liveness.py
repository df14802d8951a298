"""Whether a Running flow run is still alive: judged by Prefect's heartbeats, not time in Running.

The flow engine emits `prefect.flow-run.heartbeat` from the run's own process (every
PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds, 180 by default) until the run ends; a killed worker stops
them. A slow hub apply keeps beating, so it is never taken for dead and started a second time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventOrder,
    EventResourceFilter,
)

HEARTBEAT = "prefect.flow-run.heartbeat"


def last_heartbeat(run: FlowRun, since: datetime, until: datetime) -> datetime | None:
    """When the run's process last said it is alive (between `since` and `until`), or None."""
    query = EventFilter(
        occurred=EventOccurredFilter(since=since, until=until),
        event=EventNameFilter(name=[HEARTBEAT]),
        resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"]),
        order=EventOrder.DESC,
    )
    with get_client(sync_client=True) as client:
        page = client.read_events(filter=query, limit=1)
    return page.events[0].occurred if page.events else None


def is_dead(run: FlowRun, now: datetime, quiet_for: timedelta) -> bool:
    """A Running run whose last sign of life (its latest heartbeat, else entering Running) is older
    than `quiet_for`: its process is gone."""
    state = run.state
    if not (state and state.is_running() and state.timestamp):
        return False
    if now - state.timestamp <= quiet_for:
        return False
    beat = last_heartbeat(run, since=state.timestamp, until=now)
    return beat is None or now - beat > quiet_for
