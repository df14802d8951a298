"""An alert in Slack that goes out once per cause, however many runs see it (the watcher's
stranded and overdue uploads, a skipped Variable; process-upload's missing columns and refusals)."""

from __future__ import annotations

from tasks.once import once_task
from tasks.slack import Slack


@once_task("alert-once")
def alert_once(slack: Slack | None, channel: str, text: str, once_key: str) -> bool:
    """An alert that must go out once however many ticks see its cause; retried next tick if Slack fails."""
    if slack is None:
        raise RuntimeError("no Slack configured")
    slack.post(channel, text, once_key=once_key)
    return True
