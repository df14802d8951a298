"""`sftp-watch` (every 15 minutes, one run at a time): polls every registered customer's inbox.

Each complete new upload is claimed (an atomic rename into processing/ under a name that starts
with the claim's UTC time, so overlapping runs cannot both take it and weekly uploads of the same
name stay apart), announced to engineering in Slack (SFTP step 7) and handed to `process-upload`
as a deployment run. Each tick also picks up what a crash left behind (a claim with no live run),
lets a queued upload go on when nothing older holds it, and alerts once per missed upload period.
One connection per SFTP server; servers are polled concurrently with a bound, and a broken server,
inbox or Slack is reported without stopping the rest.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import paramiko
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import MissingContextError
from prefect.states import Crashed

from blocks import BlockNotConfigured, SftpServer, SlackWorkspace, load_block, optional_block
from tasks.alerts import alert_once
from tasks.contracts import PROCESS_UPLOAD, PROCESSING, deployment_name, inbox_folder
from tasks.gate_notices import run_link
from tasks.liveness import is_dead
from tasks.naming import upload_run_label
from tasks.once import once_key
from tasks.registry import (
    UPLOAD_PERIODS,
    InvalidVariable,
    Registration,
    Seen,
    missed_periods,
    note_seen,
    read_registrations,
    seen,
)
from tasks.sftp import (
    ClaimUnclear,
    arrival_order,
    claim,
    claim_name,
    inbox_path,
    look,
    marked_done,
    original_name,
    refusal_reason,
    refuse,
    remove_marker,
    settled,
)
from tasks.slack import Slack
from tasks.templating import render
from tasks.upload_queue import is_queued, resume_next_upload, upload_runs

MAX_DISPATCHES = 3


def _poll_server(block_name: str, customers: list[Registration], settle_seconds: float) -> list[dict]:
    """Look at every inbox on one server, wait once, look again, then claim or refuse what is complete
    (settled, or marked `<name>.done`), oldest first; also list what waits in each processing/ folder."""
    try:
        server = load_block(SftpServer, block_name)
    except BlockNotConfigured as exc:
        return [{"customer": r.customer.key, "error": str(exc)} for r in customers]
    results: list[dict] = []
    try:
        with server.get_client() as sftp:
            first: dict[str, dict] = {}
            complete: dict[str, list] = {}
            for reg in customers:
                inbox = inbox_path(server.inbox_root, reg.customer.key)
                markers: dict[str, int] = {}
                try:
                    first[reg.customer.key] = look(sftp, inbox, markers)
                    in_processing = _listdir(sftp, inbox_folder(inbox, PROCESSING))
                except OSError as exc:
                    results.append(
                        {"customer": reg.customer.key, "error": f"inbox {inbox}: {exc.__class__.__name__}"}
                    )
                    continue
                complete[reg.customer.key] = marked_done(first[reg.customer.key], markers)
                for name in in_processing:
                    results.append({"customer": reg.customer.key, PROCESSING: name, "reg": reg})
            waiting = {
                key: {n: s for n, s in seen.items() if s not in complete[key]} for key, seen in first.items()
            }
            if any(waiting.values()):
                time.sleep(settle_seconds)
            by_key = {r.customer.key: r for r in customers}
            for key in first:
                inbox = inbox_path(server.inbox_root, key)
                try:
                    done = complete[key]
                    if waiting[key]:
                        done = arrival_order(done + settled(waiting[key], look(sftp, inbox)))
                except OSError as exc:
                    results.append({"customer": key, "error": f"inbox {inbox}: {exc.__class__.__name__}"})
                    continue
                for upload in done:  # oldest first: their claimed names keep this order
                    results.append(_claim_or_refuse(sftp, server, inbox, upload, by_key[key]))
    except Exception as exc:  # one broken server must not stop the others
        results.append(
            {
                "customer": ", ".join(r.customer.key for r in customers),
                "error": f"{block_name}: {exc.__class__.__name__}: {exc}",
            }
        )
    return [r for r in results if r]


def _claim_or_refuse(sftp, server: SftpServer, inbox: str, upload, reg: Registration) -> dict:
    """One complete upload: claimed, or refused with its reason. A problem with this one file refuses
    it (one alert) and the tick goes on with the others."""
    key = reg.customer.key
    reason = refusal_reason(upload.name, upload.size, server.max_upload_mb * 2**20)
    try:
        if not reason:
            claimed = claim_name(upload.name)
            try:
                won = claim(sftp, inbox, upload.name, claimed_as=claimed)
            except ClaimUnclear as exc:  # this upload waits for the next tick; the rest go on
                return {"customer": key, "error": str(exc)}
            if not won:
                return {}
            remove_marker(sftp, inbox, upload.name)
            return {"customer": key, "upload": claimed, "size": upload.size, "reg": reg}
    except (*_CONNECTION_LOST, ClaimUnclear):
        raise  # the server, not this file: the whole server is reported
    except Exception as exc:
        reason = f"it could not be claimed ({exc.__class__.__name__}: {exc})"
    try:
        refuse(sftp, inbox, upload.name)
    except FileNotFoundError:
        return {}  # gone meanwhile (another watcher took it)
    except Exception as exc:
        if isinstance(exc, _CONNECTION_LOST):
            raise
        return {"customer": key, "error": f"{upload.name}: {reason}; not moved to refused/: {exc}"}
    return {"customer": key, "upload": upload.name, "refused": reason, "reg": reg}


_CONNECTION_LOST = (TimeoutError, EOFError, ConnectionError, paramiko.SSHException)


def _listdir(sftp, path: str) -> list[str]:
    try:
        return sorted(sftp.listdir(path))
    except FileNotFoundError:
        return []


def _logger():
    """The run's logger inside a flow run; the module's logger when called on its own (tests, CLI)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def _alert(slack: Slack | None, channel: str, text: str) -> bool:
    """Best effort: a Slack problem is logged and counted, never stops the tick."""
    logger = _logger()
    if slack is None:
        logger.warning("No Slack configured; alert not sent: %s", text)
        return False
    try:
        slack.post(channel, text)
        return True
    except Exception as exc:
        logger.warning("Slack alert to %s failed: %s: %s", channel, exc.__class__.__name__, exc)
        return False


def _dispatch(reg: Registration, upload: str, attempt: int) -> str:
    """Start process-upload for one claimed upload; the idempotency key makes a repeated call of the
    same attempt return the same run."""
    run = run_deployment(
        deployment_name(PROCESS_UPLOAD),
        parameters={"customer_key": reg.customer.key, "upload": upload},
        flow_run_name=upload_run_label(reg.customer.company_name, upload),  # named while it waits, too
        timeout=0,
        as_subflow=False,
        idempotency_key=f"{PROCESS_UPLOAD}-{reg.customer.key}-{upload}-{attempt}",
    )
    return str(run.id)


def _stale(run: FlowRun, now: datetime, stale_after: timedelta) -> bool:
    """A Running run without a Prefect heartbeat for `stale_after`: its worker died with it (a slow
    run keeps beating, however long it takes)."""
    return is_dead(run, now, stale_after)


def _mark_crashed(run: FlowRun) -> None:
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            run.id,
            Crashed(message="No sign of life: its worker stopped. sftp-watch starts it again."),
            force=True,
        )


def overdue_alerts(customers: list[Registration], slack: Slack | None, channel: str, now: datetime) -> int:
    """Alert #monitoring-hris-files and the CSM once for each upload period a customer has missed."""
    sent = 0
    for reg in customers:
        if reg.upload_frequency not in UPLOAD_PERIODS or reg.mode != "production" or not reg.watching:
            continue
        try:
            state = seen(reg.customer.key)
        except InvalidVariable as exc:  # this customer's lateness is not watched until it is fixed
            _variable_alert(slack, channel, str(exc))
            continue
        since = state.last_upload_at or reg.registered_at
        if since is None:
            continue
        missed = missed_periods(since, reg.upload_frequency, now)
        if missed <= state.overdue_alerts:
            continue
        text = render(
            "slack/upload_overdue.md.j2",
            company=reg.customer.company_name,
            days=(now - since).days,
            frequency=reg.upload_frequency,
            last=f"{since:%Y-%m-%d}" if state.last_upload_at else f"expected since {since:%Y-%m-%d}",
            csm=reg.customer.csm.name,
        )
        _alert(slack, channel, text)
        if slack is not None:
            try:
                slack.direct_message(reg.customer.csm.email, text)
            except Exception as exc:
                _logger().warning("Could not DM the CSM: %s: %s", exc.__class__.__name__, exc)
        note_seen(reg.customer.key, state.model_copy(update={"overdue_alerts": missed}))
        sent += 1
    return sent


def _variable_alert(slack: Slack | None, channel: str, problem: str) -> None:
    """One alert per invalid registry Variable (and value): the others are watched as usual."""
    _logger().error("Skipped: %s", problem)
    try:
        key = once_key("registry", f"invalid-{hashlib.sha256(problem.encode()).hexdigest()[:16]}")
        alert_once(slack, channel, f":warning: sftp-watch skips a Variable: {problem}", key)
    except Exception as exc:
        _logger().warning("Invalid-Variable alert failed: %s: %s", exc.__class__.__name__, exc)


@flow(name="sftp-watch")
def sftp_watch(
    settle_seconds: float = 60,
    max_parallel_servers: int = 8,
    start_processing: bool = True,
    stale_after_minutes: float = 60,
) -> dict:
    """One tick: claim complete uploads, alert engineering, start process-upload for each; pick up
    stranded claims and queued uploads; alert missed uploads. `settle_seconds`: the time between the
    two looks that must find a file unchanged (a file with a `<name>.done` marker does not wait)."""
    logger = get_run_logger()
    now = datetime.now(UTC)
    found, invalid = read_registrations()
    customers = [reg for reg in found if reg.watching]
    by_server: dict[str, list[Registration]] = defaultdict(list)
    for reg in customers:
        by_server[reg.sftp_block].append(reg)
    # Live runs are read before the inboxes: a run that ends meanwhile has archived its file.
    live = {(r.parameters.get("customer_key"), r.parameters.get("upload")): r for r in upload_runs()}
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel_servers, len(by_server) or 1))) as pool:
        batches = pool.map(lambda item: _poll_server(item[0], item[1], settle_seconds), by_server.items())
        results = [result for batch in batches for result in batch]

    workspace = optional_block(SlackWorkspace)
    slack = Slack(workspace) if workspace else None
    alerts = workspace.monitoring_channel if workspace else "#monitoring-hris-files"
    for problem in invalid:
        _variable_alert(slack, alerts, problem)
    in_processing: dict[str, list[str]] = defaultdict(list)
    for result in results:
        if PROCESSING in result:
            in_processing[result["customer"]].append(result[PROCESSING])
    rows = []
    for result in results:
        reg: Registration | None = result.pop("reg", None)
        try:
            if "error" in result:
                logger.error("Could not poll %s: %s", result["customer"], result["error"])
                _alert(
                    slack,
                    alerts,
                    render("slack/poll_error.md.j2", customers=result["customer"], error=result["error"]),
                )
            elif "refused" in result:
                text = render(
                    "slack/upload_refused.md.j2",
                    company=reg.customer.company_name,
                    upload=result["upload"],
                    reason=result["refused"],
                )
                _alert(slack, alerts, text)
            elif PROCESSING in result:
                if not start_processing:
                    continue  # a dry tick only looks
                upload = result.pop(PROCESSING)
                result.update(_pick_up(reg, upload, live, now, stale_after_minutes, slack, alerts))
            else:
                note_seen(reg.customer.key, Seen(last_upload_at=now, overdue_alerts=0))
                run_id = _dispatch(reg, result["upload"], 1) if start_processing else ""
                text = render(
                    "slack/upload_received.md.j2",
                    company=reg.customer.company_name,
                    mode=reg.mode,
                    upload=original_name(result["upload"]),
                    size=result["size"],
                    run_url=run_link(run_id) if run_id else "",
                )
                _alert(slack, alerts, text)
                result["process_upload_run"] = run_id
        except Exception as exc:  # each upload on its own: one failure must not strand the others
            logger.error("%s: %s: %s", result.get("customer"), exc.__class__.__name__, exc)
            result["error"] = f"{exc.__class__.__name__}: {exc}"
        rows.append({k: str(v) for k, v in result.items()})

    queued_customers = {key for (key, _), run in live.items() if is_queued(run)}
    resumed = [key for key in sorted(queued_customers) if resume_next_upload(key, in_processing[key])]
    overdue = overdue_alerts(customers, slack, alerts, now)
    create_table_artifact(
        key="sftp-watch", table=rows or [{"result": "no new uploads"}], description="Last watch tick"
    )
    summary = {
        "customers": len(customers),
        "servers": len(by_server),
        "claimed": sum(1 for r in rows if "size" in r and "error" not in r),
        "refused": sum(1 for r in rows if "refused" in r),
        "picked_up": sum(1 for r in rows if r.get("action") == "dispatched again"),
        "stranded": sum(1 for r in rows if r.get("action") == "alerted"),
        "queued_resumed": len(resumed),
        "overdue_alerts": overdue,
        "errors": sum(1 for r in rows if "error" in r),
        "invalid_variables": len(invalid),
    }
    logger.info(
        "SFTP watch: %s", ", ".join(f"{value} {name.replace('_', ' ')}" for name, value in summary.items())
    )
    return summary


def _pick_up(
    reg: Registration,
    upload: str,
    live: dict[tuple, FlowRun],
    now: datetime,
    stale_after_minutes: float,
    slack: Slack | None,
    channel: str,
) -> dict:
    """A claim in processing/ with no live run (a crash, a failed dispatch): start it again, or after
    MAX_DISPATCHES tries alert a person once."""
    key = reg.customer.key
    run = live.get((key, upload))
    if run is not None and not _stale(run, now, timedelta(minutes=stale_after_minutes)):
        return {"upload": upload, "action": "in progress"}
    if run is not None:
        _mark_crashed(run)
    tries = [r for r in upload_runs(key, live_only=False) if r.parameters.get("upload") == upload]
    if len(tries) >= MAX_DISPATCHES:
        text = render(
            "slack/upload_stranded.md.j2",
            company=reg.customer.company_name,
            upload=original_name(upload),
            tries=len(tries),
            run_url=run_link(tries[-1].id),
        )
        try:
            alert_once(slack, channel, text, once_key(key, f"stranded-{upload}"))
        except Exception as exc:
            _logger().warning("Stranded-upload alert failed: %s: %s", exc.__class__.__name__, exc)
        return {"upload": upload, "action": "alerted"}
    run_id = _dispatch(reg, upload, len(tries) + 1)
    _logger().warning("Picked up %s of %s again (try %d): %s", upload, key, len(tries) + 1, run_id)
    return {"upload": upload, "action": "dispatched again", "process_upload_run": run_id}
