"""What the status board (tasks/status_board.py) reads from Prefect's API, each read paged and bounded:
the runs that can be a customer's current one, the latest progress and upload artifacts, the newest
upload tables, what sftp-watch last saw, and when the gates remind.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import get_client
from pydantic import ValidationError

from tasks.contracts import PROGRESS_ARTIFACT, RUNBOOK_FLOWS, UPLOAD_ARTIFACT, artifact_key
from tasks.registry import SEEN_PREFIX, Seen, valid_seen, variables_like
from tasks.upload_history import Upload, read_upload, read_uploads
from tasks.wait import WAIT_SETTINGS_VARIABLE, WaitSettings

FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
PAGE = 200
NEWEST_FINISHED = PAGE  # finished runs read besides each customer's latest (by its artifacts)
FAILED_WINDOW = timedelta(days=30)  # a failed run older than this, and in no artifact, drops off
UPLOAD_HISTORY = 5 * PAGE  # upload tables read, newest first, for every customer together


def runs() -> tuple[dict[str, str], list[dict]]:
    """The runbook's flows (name by id) and the runs that can be a customer's current one, newest
    first: every unfinished run, the newest finished ones, the failures of the last FAILED_WINDOW.

    Never the whole history: each customer's latest api-/sftp-integration and process-upload run
    comes from its artifacts (`_with_latest`), so a customer idle for a while keeps its row.
    """
    since = (datetime.now(UTC) - FAILED_WINDOW).isoformat()
    with get_client(sync_client=True) as client:
        flows = client.request(
            "POST", "/flows/filter", json={"flows": {"name": {"any_": list(RUNBOOK_FLOWS)}}}
        ).json()
        names = {f["id"]: f["name"] for f in flows}
        if not names:
            return names, []
        runbook = {"flows": {"id": {"any_": list(names)}}}
        unfinished = {"state": {"type": {"not_any_": list(FINAL)}}}
        finished = {"state": {"type": {"any_": list(FINAL)}}}
        failed = {"state": {"type": {"any_": ["FAILED", "CRASHED"]}}, "end_time": {"after_": since}}
        runs = (
            _flow_runs(client, runbook | {"flow_runs": unfinished})
            + _flow_runs(client, runbook | {"flow_runs": finished}, limit=NEWEST_FINISHED)
            + _flow_runs(client, runbook | {"flow_runs": failed})
        )
    return names, _newest_first(runs, names)


def with_latest(runs: list[dict], run_ids: set[str], flows: dict[str, str]) -> list[dict]:
    """`runs` plus the runs the latest artifacts point at that they lack (customers idle for a while)."""
    missing = sorted(run_ids - {run["id"] for run in runs})
    found = []
    if missing:
        with get_client(sync_client=True) as client:
            for start in range(0, len(missing), PAGE):
                ids = {"flow_runs": {"id": {"any_": missing[start : start + PAGE]}}}
                found += _flow_runs(client, {"flows": {"id": {"any_": list(flows)}}} | ids)
    return _newest_first(runs + found, flows)


def _flow_runs(client, which: dict, limit: int | None = None) -> list[dict]:
    """The flow runs a filter matches, newest first, PAGE per call, at most `limit`."""
    found: list[dict] = []
    while limit is None or len(found) < limit:
        size = PAGE if limit is None else min(PAGE, limit - len(found))
        body = which | {"sort": "EXPECTED_START_TIME_DESC", "limit": size, "offset": len(found)}
        page = client.request("POST", "/flow_runs/filter", json=body).json()
        found += page
        if len(page) < size:
            break
    return found


def _newest_first(runs: list[dict], flows: dict[str, str]) -> list[dict]:
    """Each run once, named by its flow, newest first (as one read of every run would list them)."""
    unique = {run["id"]: run | {"flow": flows[run["flow_id"]]} for run in runs}
    return sorted(unique.values(), key=lambda run: run.get("expected_start_time") or "", reverse=True)


def latest_artifacts() -> tuple[dict[str, str], set[str], dict[str, list[Upload]]]:
    """The latest progress table of every customer and flow (by artifact key), the runs that wrote
    them or the latest upload summary (each customer's latest integration and upload run), and the
    uploads that latest table names: its own and the customer's earlier ones it carries."""
    progress, run_ids, uploads = {}, set(), {}
    with get_client(sync_client=True) as client:
        for kind in (PROGRESS_ARTIFACT, UPLOAD_ARTIFACT):
            prefix = artifact_key(kind) + "-"
            offset = 0
            while True:
                page = client.request(
                    "POST",
                    "/artifacts/latest/filter",
                    json={"artifacts": {"key": {"like_": prefix}}, "limit": PAGE, "offset": offset},
                ).json()
                for artifact in page:
                    if not artifact["key"].startswith(prefix):
                        continue
                    if kind == PROGRESS_ARTIFACT:
                        progress[artifact["key"]] = artifact.get("data") or ""
                    elif found := read_uploads(artifact):
                        uploads[artifact["key"]] = found  # with the earlier uploads it carries
                    if artifact.get("flow_run_id"):
                        run_ids.add(str(artifact["flow_run_id"]))
                if len(page) < PAGE:
                    break
                offset += PAGE
    return progress, run_ids, uploads


def upload_history() -> dict[str, list[Upload]]:
    """The newest UPLOAD_HISTORY upload tables of all customers, by artifact key: one paged read,
    however many customers (a customer uploading rarely may show only its latest, from
    `_latest_artifacts`)."""
    prefix = artifact_key(UPLOAD_ARTIFACT) + "-"
    found: dict[str, list[Upload]] = {}
    with get_client(sync_client=True) as client:
        for offset in range(0, UPLOAD_HISTORY, PAGE):
            size = min(PAGE, UPLOAD_HISTORY - offset)
            body = {
                "artifacts": {"key": {"like_": prefix}, "type": {"any_": ["table"]}},  # not progress tables
                "sort": "CREATED_DESC",
                "limit": size,
                "offset": offset,
            }
            page = client.request("POST", "/artifacts/filter", json=body).json()
            for artifact in page:
                if artifact["key"] and artifact["key"].startswith(prefix):
                    if (upload := _upload(artifact)) is not None:
                        found.setdefault(artifact["key"], []).append(upload)
            if len(page) < size:
                break
    return found


def _upload(artifact: dict) -> Upload | None:
    """An upload table's counts; None when it is not one (written by hand, or by another version)."""
    return read_upload(artifact)


def remind_after() -> timedelta:
    """When the gates remind (the `hris_wait_settings` Variable, defaults if unset or invalid)."""
    with get_client(sync_client=True) as client:
        variable = client.read_variable_by_name(WAIT_SETTINGS_VARIABLE)
    try:
        settings = WaitSettings.model_validate(variable.value if variable and variable.value else {})
    except ValidationError:
        settings = WaitSettings()  # the gates log this and use the defaults too
    return timedelta(hours=settings.remind_after_hours)


def seen() -> dict[str, Seen]:
    """What sftp-watch last saw of each customer (last upload), by Variable name (`variable_for`)."""
    found = {}
    for name, value in variables_like(SEEN_PREFIX).items():
        if (state := valid_seen(name, value)) is not None:
            found[name] = state
    return found
