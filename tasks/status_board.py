"""One board of every customer: where their runbook stands, who it waits on and since when.

Built only from Prefect's API (flow runs and their states, the progress artifacts the flows publish,
the SFTP registrations in Variables), so it can never disagree with the runs themselves. The web
app's internal listener shows it at /board (webapp/board.py); the `status-board` deployment keeps it
as an artifact.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_UI_URL
from pydantic import ValidationError

from tasks.contracts import (
    API_INTEGRATION,
    MASS_DELETION,
    PROCESS_UPLOAD,
    PROGRESS_ARTIFACT,
    RUNBOOK_FLOWS,
    SFTP_INTEGRATION,
    UPLOAD_ARTIFACT,
    WAITING_ON,
    artifact_key,
    gate_of,
    progress_artifact,
    upload_artifact,
)
from tasks.customer import check_domain
from tasks.registry import (
    SEEN_PREFIX,
    UPLOAD_PERIODS,
    Seen,
    missed_periods,
    registrations,
    valid_seen,
    variable_for,
)
from tasks.upload_history import Upload, newest_per_claim, read_upload
from tasks.wait import WAIT_SETTINGS_VARIABLE, WaitSettings

PATHS = {API_INTEGRATION: "API", SFTP_INTEGRATION: "SFTP", PROCESS_UPLOAD: "SFTP"}
FAILED_WAITS_ON = "CSM / on-call"  # a failed run: the CSM decides, the engineer on call fixes the cause
NEEDS_A_PERSON = ("CSM", "engineering", FAILED_WAITS_ON)
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
PAGE = 200
NEWEST_FINISHED = PAGE  # finished runs read besides each customer's latest (by its artifacts)
FAILED_WINDOW = timedelta(days=30)  # a failed run older than this, and in no artifact, drops off
UPLOADS_SHOWN = 8  # the last uploads charted per customer
UPLOAD_HISTORY = 5 * PAGE  # upload tables read, newest first, for every customer together
STATES = ("needs a person", "waiting on customer", "fine")


@dataclass
class Row:
    company: str
    customer_key: str
    csm: str
    path: str = "not chosen"
    step: str = ""
    waiting_on: str = "nobody"
    since: datetime | None = None
    run_url: str = ""
    last_upload: datetime | None = None
    next_upload: datetime | None = None
    flags: list[str] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)  # oldest first, the last UPLOADS_SHOWN
    mapping_link: str = ""
    mapping_updated: datetime | None = None

    @property
    def needs_a_person(self) -> bool:
        return self.waiting_on in NEEDS_A_PERSON or bool(self.flags)

    @property
    def state(self) -> str:
        """One of STATES: what the counts per CSM add up."""
        return STATES[0] if self.needs_a_person else STATES[1] if self.waiting_on == "customer" else STATES[2]

    @property
    def overdue(self) -> bool:
        return "upload overdue" in self.flags

    def sort_key(self) -> tuple:
        rank = 0 if self.needs_a_person else 1 if self.waiting_on == "customer" else 2
        since = self.since.timestamp() if self.since else float("inf")
        return (rank, since, self.company.lower())

    def as_table_row(self) -> dict[str, str]:
        """The artifact's columns: text only, times in UTC."""
        return {
            "customer": self.company,
            "CSM": self.csm,
            "path": self.path,
            "step": self.step,
            "waiting on": self.waiting_on,
            "since": _when(self.since),
            "run": self.run_url,
            "last upload": _when(self.last_upload),
            "next upload expected": _when(self.next_upload),
            "flags": ", ".join(self.flags),
        }


def build_board(now: datetime | None = None) -> list[Row]:
    """Every customer with a runbook run or an SFTP registration, what needs a person first."""
    now = now or datetime.now(UTC)
    sources = (_latest_artifacts, _runs, registrations, _seen, _remind_after, _upload_history)
    with ThreadPoolExecutor(len(sources)) as pool:
        reads = [pool.submit(read) for read in sources]
        (progress, latest_run_ids, latest_uploads), (flows, runs), found, seen, remind_after, history = (
            r.result() for r in reads
        )
    runs = _with_latest(runs, latest_run_ids, flows)
    regs = {reg.customer.key: reg for reg in found}
    by_customer: dict[str, list[dict]] = {}
    people: dict[str, dict] = {}
    for run in runs:  # newest first
        key = _customer_key(run)
        if key:
            by_customer.setdefault(key, []).append(run)
            customer = run["parameters"].get("customer")
            if customer and key not in people:
                people[key] = customer
    for key, reg in regs.items():
        people.setdefault(key, reg.customer.model_dump(mode="json"))
    rows = [
        _row(
            key,
            customer,
            by_customer.get(key, []),
            progress,
            regs.get(key),
            seen.get(variable_for(SEEN_PREFIX, key)),
            remind_after,
            now,
        )
        for key, customer in people.items()
    ]
    for row in rows:
        artifact = upload_artifact(row.customer_key)
        uploads = history.get(artifact) or latest_uploads.get(artifact, [])
        # each upload once (step 8 and its decision publish a table each), as its newest table says
        uploads = newest_per_claim(sorted(uploads, key=lambda upload: upload.at, reverse=True))
        row.uploads = sorted(uploads, key=lambda upload: upload.at)[-UPLOADS_SHOWN:]
    return sorted(rows, key=Row.sort_key)


def _row(
    key: str,
    customer: dict,
    runs: list[dict],
    progress: dict[str, str],
    reg,
    seen: Seen | None,
    remind_after: timedelta,
    now: datetime,
) -> Row:
    row = Row(customer.get("company_name") or key, key, (customer.get("csm") or {}).get("email", ""))
    if any(run["flow"] in PATHS for run in runs) or reg is not None:
        row.path = next((PATHS[run["flow"]] for run in runs if run["flow"] in PATHS), "SFTP")
    current = next((run for run in runs if not _is_final(run)), runs[0] if runs else None)
    if current is not None:
        state = current["state"] or {}
        kind = state.get("type", "")
        gate = (state.get("state_details") or {}).get("pause_key") or ""
        row.run_url = _run_url(current["id"])
        row.since = _parse(state.get("timestamp"))
        row.step = _step(progress.get(progress_artifact(current["flow"], key)), current["flow"], gate)
        if kind == "PAUSED":
            row.waiting_on = WAITING_ON.get(gate_of(gate), "CSM")
            given = (current["parameters"].get("wait") or {}).get("remind_after_hours")  # older runs
            if row.since and now - row.since > (timedelta(hours=given) if given else remind_after):
                row.flags.append("waiting past reminder")
        elif kind in ("FAILED", "CRASHED"):
            row.waiting_on = FAILED_WAITS_ON
            row.flags.append(_failure(state.get("message")))
    if any(_is_paused_at(run, MASS_DELETION) for run in runs):
        row.flags.append("mass-deletion hold")
    if reg is not None:
        row.mapping_link, row.mapping_updated = reg.mapping_link, reg.mapping_updated_at
        row.last_upload = seen.last_upload_at if seen else None
        period = UPLOAD_PERIODS.get(reg.upload_frequency or "")
        since = row.last_upload or reg.registered_at
        if period and since and reg.mode == "production" and reg.watching:
            row.next_upload = since + period
            if missed_periods(since, reg.upload_frequency, now):  # as sftp-watch's overdue alert counts
                row.flags.append("upload overdue")
                if row.waiting_on == "nobody":
                    row.waiting_on, row.since = "customer", row.next_upload
    return row


def _runs() -> tuple[dict[str, str], list[dict]]:
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


def _with_latest(runs: list[dict], run_ids: set[str], flows: dict[str, str]) -> list[dict]:
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


def _latest_artifacts() -> tuple[dict[str, str], set[str], dict[str, list[Upload]]]:
    """The latest progress table of every customer and flow (by artifact key), the runs that wrote
    them or the latest upload summary (each customer's latest integration and upload run), and that
    latest upload (charted when it is older than the UPLOAD_HISTORY read)."""
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
                    elif (upload := _upload(artifact)) is not None:
                        uploads[artifact["key"]] = [upload]
                    if artifact.get("flow_run_id"):
                        run_ids.add(str(artifact["flow_run_id"]))
                if len(page) < PAGE:
                    break
                offset += PAGE
    return progress, run_ids, uploads


def _upload_history() -> dict[str, list[Upload]]:
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


def _remind_after() -> timedelta:
    """When the gates remind (the `hris_wait_settings` Variable, defaults if unset or invalid)."""
    with get_client(sync_client=True) as client:
        variable = client.read_variable_by_name(WAIT_SETTINGS_VARIABLE)
    try:
        settings = WaitSettings.model_validate(variable.value if variable and variable.value else {})
    except ValidationError:
        settings = WaitSettings()  # the gates log this and use the defaults too
    return timedelta(hours=settings.remind_after_hours)


def _seen() -> dict[str, Seen]:
    """What sftp-watch last saw of each customer (last upload), by Variable name (`variable_for`)."""
    found, offset = {}, 0
    with get_client(sync_client=True) as client:
        while True:
            page = client.request(
                "POST",
                "/variables/filter",
                json={"variables": {"name": {"like_": SEEN_PREFIX}}, "offset": offset, "limit": PAGE},
            ).json()
            for variable in page:
                if variable["name"].startswith(SEEN_PREFIX):
                    if (state := valid_seen(variable["name"], variable["value"])) is not None:
                        found[variable["name"]] = state
            if len(page) < PAGE:
                return found
            offset += PAGE


def _customer_key(run: dict) -> str | None:
    """The run's `Customer.key` (its primary domain, as the Customer model cleans it); None if it has none."""
    parameters = run.get("parameters") or {}
    if parameters.get("customer_key"):
        return parameters["customer_key"]
    domains = (parameters.get("customer") or {}).get("email_domains") or []
    try:
        return check_domain(domains[0]) if domains else None
    except ValueError:  # a run whose customer never validated: no row of its own
        return None


def _step(markdown: str | None, flow: str, gate: str) -> str:
    """The step a progress table marks waiting or in progress, else the next one, else 'done'."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in (markdown or "").splitlines()
        if re.match(r"^\|\s*\d+\s*\|", line)
    ]
    for wanted in ("waiting", "in progress", "next"):
        for number, name, status, *note in rows:
            if wanted in status:
                detail = f" ({note[0]})" if wanted == "waiting" and note and note[0] else ""
                return f"{flow} {number}. {name}{detail}"
    if rows:
        return f"{flow}: all steps done"
    return f"{flow}: {gate}" if gate else flow


def _failure(message: str | None, limit: int = 200) -> str:
    """'run failed: <the state message's first line>', short enough for a table cell."""
    line = next((part.strip() for part in (message or "").splitlines() if part.strip()), "")
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return f"run failed: {line}" if line else "run failed"


def _is_final(run: dict) -> bool:
    return (run.get("state") or {}).get("type") in FINAL


def _is_paused_at(run: dict, gate: str) -> bool:
    state = run.get("state") or {}
    return (
        state.get("type") == "PAUSED"
        and ((state.get("state_details") or {}).get("pause_key") or "")
        and gate_of(state["state_details"]["pause_key"]) == gate
    )


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _run_url(flow_run_id: str) -> str:
    return f"{(PREFECT_UI_URL.value() or 'http://127.0.0.1:4200').rstrip('/')}/runs/flow-run/{flow_run_id}"
