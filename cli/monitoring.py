"""Watching the watcher: Prefect automations that alert `#monitoring-hris-files` when our own flows cannot.

Every other alert comes from the worker's flows; these three come from the Prefect server itself (its
triggers and actions services), through a notification block, so they reach Slack while the worker,
or sftp-watch, is down:

- sftp-watch has not completed within the window (default 45 minutes, HRIS_WATCH_WINDOW_SECONDS);
- the work pool has no healthy worker (Prefect's `prefect.work-pool.not-ready` event);
- a flow run Crashed (its process died, or its infrastructure failed).

`hris-runbook up` creates or updates them after deploying; the block is a "Slack Webhook" named
`hris-monitoring` (the channel's incoming webhook) or, the sandbox's, a "Custom Webhook" of that name.
"""

from __future__ import annotations

import os
from datetime import timedelta
from uuid import UUID

from cli.bootstrap import WORK_POOL  # the pool `make up` creates and its workers poll
from tasks.contracts import (
    AUTOMATION_CRASHED,
    AUTOMATION_NO_WORKER,
    AUTOMATION_WATCH_SILENT,
    MONITORING_BLOCK,
    MONITORING_BLOCK_TYPES,
    SFTP_WATCH,
    WATCH_WINDOW_SECONDS,
    deployment_name,
)


def watch_window_seconds() -> int:
    """How long sftp-watch may go without a Completed run (HRIS_WATCH_WINDOW_SECONDS, at least 10 s)."""
    raw = os.environ.get("HRIS_WATCH_WINDOW_SECONDS", "").strip() or str(WATCH_WINDOW_SECONDS)
    try:
        seconds = int(raw)
    except ValueError:
        seconds = 0
    if seconds < 10:
        raise SystemExit(f"HRIS_WATCH_WINDOW_SECONDS: expected a whole number of seconds >= 10, got {raw!r}")
    return seconds


def monitoring_block():
    """The saved notification block named `hris-monitoring` (Slack Webhook first), or None."""
    import prefect.blocks.notifications  # noqa: F401 — registers the notification block classes
    from prefect.blocks.core import Block

    for slug in MONITORING_BLOCK_TYPES:
        try:
            return Block.load(f"{slug}/{MONITORING_BLOCK}")
        except ValueError:  # no such document (or type)
            continue
    return None


def monitoring_block_label() -> str:
    return f"Slack Webhook block {MONITORING_BLOCK!r}"


def _block_document_id(client) -> UUID | None:
    from prefect.exceptions import ObjectNotFound

    for slug in MONITORING_BLOCK_TYPES:
        try:
            return client.read_block_document_by_name(MONITORING_BLOCK, slug).id
        except ObjectNotFound:
            continue
    return None


def automations(block_id: UUID, sftp_watch_id: UUID, pool_id: UUID, window_seconds: int, ui_url: str):
    """The three automations, as Prefect's client models (nothing saved)."""
    from prefect.automations import AutomationCore as Automation
    from prefect.automations import EventTrigger, Posture, SendNotification

    def notify(subject: str, body: str) -> SendNotification:
        return SendNotification(block_document_id=block_id, subject=subject, body=body)

    minutes = f"{window_seconds // 60} minutes" if window_seconds >= 120 else f"{window_seconds} seconds"
    return [
        Automation(
            name=AUTOMATION_WATCH_SILENT,
            description=f"No Completed {SFTP_WATCH} run for {minutes}: uploads are not being watched.",
            trigger=EventTrigger(
                posture=Posture.Proactive,
                expect={"prefect.flow-run.Completed"},
                match_related={"prefect.resource.id": f"prefect.deployment.{sftp_watch_id}"},
                threshold=1,
                within=timedelta(seconds=window_seconds),
            ),
            actions=[
                notify(
                    f":rotating_light: {SFTP_WATCH} has not completed for {minutes}",
                    f"No SFTP upload is picked up until it runs again. Check the worker "
                    f"(`prefect worker start --pool {WORK_POOL}`) and the last {SFTP_WATCH} runs: "
                    f"{ui_url}/deployments/deployment/{sftp_watch_id}",
                )
            ],
        ),
        Automation(
            name=AUTOMATION_NO_WORKER,
            description=f"Work pool {WORK_POOL} has no healthy worker: no flow run starts.",
            trigger=EventTrigger(
                posture=Posture.Reactive,
                expect={"prefect.work-pool.not-ready"},
                match={"prefect.resource.id": f"prefect.work-pool.{pool_id}"},
                threshold=1,
                within=timedelta(0),
            ),
            actions=[
                notify(
                    f":rotating_light: work pool {WORK_POOL} has no healthy worker",
                    f"No flow run starts ({SFTP_WATCH}, uploads, reminders) until a worker is back: "
                    f"`prefect worker start --pool {WORK_POOL}`. {ui_url}/work-pools/work-pool/{WORK_POOL}",
                )
            ],
        ),
        Automation(
            name=AUTOMATION_CRASHED,
            description="A flow run crashed (its process died or its infrastructure failed).",
            trigger=EventTrigger(
                posture=Posture.Reactive,
                expect={"prefect.flow-run.Crashed"},
                match={"prefect.resource.id": "prefect.flow-run.*"},
                for_each={"prefect.resource.id"},
                threshold=1,
                within=timedelta(0),
            ),
            actions=[
                notify(
                    ":boom: flow run {{ flow_run.name }} crashed",
                    "{{ flow.name }} run {{ flow_run.name }} crashed: {{ flow_run|ui_url }}",
                )
            ],
        ),
    ]


def ensure_automations(window_seconds: int | None = None) -> str:
    """Create or update the three automations on the server; one line saying what was done.

    Without the `hris-monitoring` block nothing is created (the line says so)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_UI_URL

    window = watch_window_seconds() if window_seconds is None else window_seconds
    ui_url = (PREFECT_UI_URL.value() or "").rstrip("/")
    with get_client(sync_client=True) as client:
        block_id = _block_document_id(client)
        if block_id is None:
            return (
                f"no {monitoring_block_label()}: nobody is told when the worker or {SFTP_WATCH} stops "
                "(see docs/operations.md, Monitoring)"
            )
        sftp_watch = client.read_deployment_by_name(deployment_name(SFTP_WATCH))
        pool = client.read_work_pool(WORK_POOL)
        for automation in automations(block_id, sftp_watch.id, pool.id, window, ui_url):
            existing = client.read_automations_by_name(automation.name)
            if existing:  # updated in place: the same id, its window and history kept
                client.update_automation(existing[0].id, automation)
                for extra in existing[1:]:
                    client.delete_automation(extra.id)
            else:
                client.create_automation(automation)
    return f"monitoring: 3 automations post to #monitoring-hris-files ({SFTP_WATCH} window {window} s)"
