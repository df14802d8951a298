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

from prefect.settings import PREFECT_UI_URL

from tasks import board_reads
from tasks.board_reads import FAILED_WINDOW, FINAL, NEWEST_FINISHED, PAGE, UPLOAD_HISTORY
from tasks.contracts import (
    API_INTEGRATION,
    MAPPING_REVIEW_PREFIX,
    MASS_DELETION,
    PROCESS_UPLOAD,
    SFTP_INTEGRATION,
    WAITING_ON,
    gate_of,
    progress_artifact,
    upload_artifact,
)
from tasks.customer import check_domain
from tasks.mapping_cadence import ApiCustomer, ReviewState, api_customers, review_states
from tasks.registry import (
    SEEN_PREFIX,
    UPLOAD_PERIODS,
    Seen,
    missed_periods,
    registrations,
    variable_for,
)
from tasks.review_periods import next_review
from tasks.upload_history import Upload, newest_per_claim

# The board's reads (tasks/board_reads.py) and their bounds are imported from here too.
__all__ = [
    "FAILED_WAITS_ON",
    "FAILED_WINDOW",
    "FINAL",
    "NEEDS_A_PERSON",
    "NEWEST_FINISHED",
    "PAGE",
    "PATHS",
    "STATES",
    "UPLOADS_SHOWN",
    "UPLOAD_HISTORY",
    "Row",
    "Upload",
    "build_board",
]

PATHS = {API_INTEGRATION: "API", SFTP_INTEGRATION: "SFTP", PROCESS_UPLOAD: "SFTP"}
FAILED_WAITS_ON = "CSM / on-call"  # a failed run: the CSM decides, the engineer on call fixes the cause
NEEDS_A_PERSON = ("CSM", "engineering", FAILED_WAITS_ON)
UPLOADS_SHOWN = 8  # the last uploads charted per customer
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
    next_mapping_review: datetime | None = None  # None: no review cadence kept for the customer

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
            "next mapping review": _when(self.next_mapping_review),
            "flags": ", ".join(self.flags),
        }


def build_board(now: datetime | None = None) -> list[Row]:
    """Every customer with a runbook run or an SFTP registration, what needs a person first."""
    now = now or datetime.now(UTC)
    sources = (
        board_reads.latest_artifacts,
        board_reads.runs,
        registrations,
        board_reads.seen,
        board_reads.remind_after,
        board_reads.upload_history,
        api_customers,
        review_states,
    )
    with ThreadPoolExecutor(len(sources)) as pool:
        reads = [pool.submit(read) for read in sources]
        (
            (progress, latest_run_ids, latest_uploads),
            (flows, runs),
            found,
            seen,
            remind_after,
            history,
            apis,
            reviews,
        ) = (r.result() for r in reads)
    runs = board_reads.with_latest(runs, latest_run_ids, flows)
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
    api = {record.customer.key: record for record in apis}
    for key, record in api.items():
        people.setdefault(key, record.customer.model_dump(mode="json"))
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
        _mapping_review(row, regs.get(row.customer_key), api.get(row.customer_key), reviews, now)
        artifact = upload_artifact(row.customer_key)
        uploads = history.get(artifact, []) + latest_uploads.get(artifact, [])
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


def _mapping_review(
    row: Row, reg, api: ApiCustomer | None, reviews: dict[str, ReviewState], now: datetime
) -> None:
    """The next mapping review (mapping-review), flagged once overdue: due and not sent or decided."""
    if api is not None and row.path == "not chosen":
        row.path = "API"
    if api is not None and not row.mapping_link:
        row.mapping_link, row.mapping_updated = api.mapping_link, api.mapping_updated_at
    kept = reg if reg is not None and reg.mapping_cadence else api
    if kept is None or not kept.mapping_cadence:
        return
    state = reviews.get(variable_for(MAPPING_REVIEW_PREFIX, row.customer_key))
    row.next_mapping_review, overdue = next_review(
        kept.mapping_cadence, state.until if state else None, kept.mapping_updated_at, now
    )
    if overdue:
        row.flags.append("mapping review overdue")


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
