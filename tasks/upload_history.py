"""A customer's upload history, as the status board charts it and the destructive gates show it.

It is kept where the board already reads it: the `upload-<key>` tables process-upload publishes
(tasks/contracts.py `upload_artifact`). Each upload writes one at step 8 (decision "pending") and one
when it is decided ("applied" or "rejected", and who decided); the newest table of a claim is what it
is. Tables written before decisions were kept (version 1: no "table version" column) still read:
the board charts them and the gates list them as "not recorded", but they never count as applied.

The gates (apply-files, mass-deletion) read one customer's newest tables in one bounded request,
list the last eight decided uploads and say on a **Check:** line when this upload is unusual for the
customer. The mass-deletion guard trips on the flat rule (tasks/files.py) or on this history.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tasks.templating import SlackText, render

TABLE_VERSION = 2  # version 1: the step-8 table before decisions were kept
PENDING, APPLIED, REJECTED = "pending", "applied", "rejected"
SHOWN = 8  # decided uploads listed in a gate (and over which the median is taken)
CARRIED = 7  # earlier uploads a table carries: with its own, the 8 the board charts
READ_LIMIT = 100  # one customer's newest upload tables read for a gate (each upload writes 2-3)
MIN_DELETIONS = 10  # the history rule never trips at 10 deletions or fewer
TIMES_MEDIAN = 5
ROWS_DROP = 0.10
UNMAPPED_KEPT = 50  # unmapped values kept per upload table (most rows first), for mapping-review


@dataclass(frozen=True)
class Upload:
    """One upload's counts (and, from version 2, its decision), from an `upload-<key>` table."""

    at: datetime
    name: str
    rows: int | None  # None: made before rows were counted
    invites: int
    updates: int
    deletions: int
    missing_columns: int = 0
    unmapped_values: int = 0
    claimed: str = ""
    deactivations: int = 0
    decision: str | None = None  # None: a version-1 table, written before decisions were kept
    decided_by: str = ""
    columns: tuple[str, ...] | None = None  # the upload's header; None: not recorded
    unmapped: tuple[tuple[str, str, int], ...] = ()  # (field, value, rows); () also: not recorded

    @property
    def decided(self) -> bool:
        return self.decision != PENDING


def upload_table(
    name: str,
    claimed: str,
    channel: str,
    summary: dict[str, Any],
    decision: str = PENDING,
    decided_by: str = "",
    earlier: list[Upload] | None = None,
) -> list[dict[str, Any]]:
    """The `upload-<key>` table of one upload (version 2): counts, header columns, decision; then a
    row per `earlier` upload (newest first, with its date), so that the customer's latest table alone
    charts its last uploads on the board (a reader of the first row sees the table as before)."""
    counts = ("invites", "updates", "deletions", "deactivations", "reactivations", "rejected_rows")
    return [
        {
            "upload": name,
            "claimed as": claimed,
            "channel": channel,
            "rows": summary_rows(summary) if summary_rows(summary) is not None else "",
            **{k: summary[k] for k in counts},
            "missing columns": len(summary.get("missing_columns", [])),
            "unmapped values": len(summary.get("unmapped_values", [])),
            "columns": summary.get("columns"),  # None: files made before the header was kept
            "unmapped": kept_unmapped(summary.get("unmapped_values", [])),
            "decision": decision,
            "decided by": decided_by,
            "table version": TABLE_VERSION,
        }
    ] + [_earlier_row(upload) for upload in earlier or []]


def _earlier_row(upload: Upload) -> dict[str, Any]:
    return {
        "upload": upload.name,
        "claimed as": upload.claimed,
        "rows": "" if upload.rows is None else upload.rows,
        "invites": upload.invites,
        "updates": upload.updates,
        "deletions": upload.deletions,
        "deactivations": upload.deactivations,
        "decision": upload.decision or "",
        "at": upload.at.isoformat(),
    }


def read_uploads(artifact: dict[str, Any]) -> list[Upload]:
    """Every upload an `upload-<key>` table names: its own (`read_upload`), then the earlier ones it
    carries (tables written before they were carried name only their own); [] when it is not one."""
    first = read_upload(artifact)
    if first is None:
        return []
    data = artifact.get("data")
    table: Any = json.loads(data) if isinstance(data, str) else data
    found = [first]
    for row in table[1:]:
        try:
            found.append(
                Upload(
                    at=datetime.fromisoformat(row["at"]),
                    name=str(row.get("upload", "")),
                    rows=int(row["rows"]) if str(row.get("rows", "")).strip() else None,
                    invites=int(row.get("invites", 0)),
                    updates=int(row.get("updates", 0)),
                    deletions=int(row.get("deletions", 0)),
                    claimed=str(row.get("claimed as", "")),
                    deactivations=int(row.get("deactivations", 0)),
                    decision=str(row["decision"]) if row.get("decision") else None,
                )
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # a row this version cannot read: the chart shows one upload fewer
    return found


def summary_rows(summary: dict[str, Any]) -> int | None:
    """The HRIS rows a summary.json counted: `hris_rows`; summaries written before it was the one name
    also had `rows` (the same count), so either is read; None when neither is there."""
    rows = summary.get("hris_rows", summary.get("rows"))
    return rows if isinstance(rows, int) else None


def read_upload(artifact: dict[str, Any]) -> Upload | None:
    """An upload table's counts; None when it is not one (written by hand, or by a newer version)."""
    data = artifact.get("data")
    try:
        table: Any = json.loads(data) if isinstance(data, str) else data
        first = table[0]
        version = int(first.get("table version", 1))
        if version > TABLE_VERSION:
            return None
        columns = first.get("columns")
        return Upload(
            at=datetime.fromisoformat(artifact.get("updated") or artifact["created"]),  # latest: updated
            name=str(first.get("upload", "")),
            rows=int(first["rows"]) if str(first.get("rows", "")).strip() else None,
            invites=int(first.get("invites", 0)),
            updates=int(first.get("updates", 0)),
            deletions=int(first.get("deletions", 0)),
            missing_columns=int(first.get("missing columns", 0)),
            unmapped_values=int(first.get("unmapped values", 0)),
            claimed=str(first.get("claimed as", "")),
            deactivations=int(first.get("deactivations", 0)),
            decision=str(first.get("decision") or PENDING) if version >= 2 else None,
            decided_by=str(first.get("decided by") or ""),
            columns=tuple(str(c) for c in columns) if isinstance(columns, list) else None,
            unmapped=_unmapped(first.get("unmapped")),
        )
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None


def kept_unmapped(unmapped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The values of mapping fields the table did not map (not member data), most rows first, capped."""
    ranked = sorted(unmapped, key=lambda u: (-int(u["rows"]), u["field"], u["value"]))[:UNMAPPED_KEPT]
    return [{"field": u["field"], "value": u["value"], "rows": int(u["rows"])} for u in ranked]


def _unmapped(value: Any) -> tuple[tuple[str, str, int], ...]:
    """A table's kept unmapped values; () when it has none (tables before 2026-12 did not keep them)."""
    if not isinstance(value, list):
        return ()
    try:
        return tuple(
            (str(u["field"]), str(u["value"]), int(u["rows"]))
            for u in value
            if isinstance(u, dict) and {"field", "value", "rows"} <= u.keys()
        )
    except (TypeError, ValueError):  # edited by hand: the upload's counts still count
        return ()


def newest_per_claim(uploads: list[Upload]) -> list[Upload]:
    """Each claim once, as its newest table says (`uploads` newest first; a table without a claim
    stands for itself)."""
    seen: set[str] = set()
    kept = []
    for upload in uploads:
        if upload.claimed and upload.claimed in seen:
            continue
        seen.add(upload.claimed)
        kept.append(upload)
    return kept


def customer_uploads(customer_key: str) -> list[Upload]:
    """One customer's uploads, newest first, each once: one request for its newest READ_LIMIT tables."""
    from prefect.client.orchestration import get_client

    from tasks.contracts import upload_artifact

    body = {
        "artifacts": {"key": {"any_": [upload_artifact(customer_key)]}, "type": {"any_": ["table"]}},
        "sort": "CREATED_DESC",
        "limit": READ_LIMIT,
    }
    with get_client(sync_client=True) as client:
        page = client.request("POST", "/artifacts/filter", json=body).json()
    found = [upload for artifact in page if (upload := read_upload(artifact)) is not None]
    return newest_per_claim(sorted(found, key=lambda u: u.at, reverse=True))


def decided_before(uploads: list[Upload], claimed: str) -> list[Upload]:
    """The last SHOWN decided uploads other than this claim, newest first."""
    return [u for u in uploads if u.decided and u.claimed != claimed][:SHOWN]


@dataclass(frozen=True)
class HistoryRule:
    """The mass-deletion guard's second rule: deletions above max(10, 5 × the customer's median)."""

    deletions: int
    applied: int  # applied uploads the median is over
    median: float
    limit: float

    @property
    def tripped(self) -> bool:
        return self.deletions > self.limit


def history_rule(deletions: int, history: list[Upload]) -> HistoryRule | None:
    """The rule for this upload's deletions; None when the customer has no applied upload yet."""
    applied = [u.deletions for u in history if u.decision == APPLIED]
    if not applied:
        return None
    median = statistics.median(applied)
    return HistoryRule(deletions, len(applied), median, max(MIN_DELETIONS, TIMES_MEDIAN * median))


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Unusual:
    """What is unusual about this upload for this customer: markdown for the form, Slack text."""

    markdown: str
    slack: SlackText


def _check(markdown: str, **slack: Any) -> Unusual:
    return Unusual(markdown, SlackText(render("slack/history_check.md.j2", **slack).strip()))


def unusual(summary: dict[str, Any], history: list[Upload]) -> list[Unusual]:
    """Deletions at least 5× the median of the applied uploads and more than 10; rows down by 10% or
    more from the last applied upload; a column the last applied upload had and this one lacks."""
    applied = [u for u in history if u.decision == APPLIED]
    if not applied:
        return []
    found = []
    deletions, median, last = (
        int(summary["deletions"]),
        statistics.median(u.deletions for u in applied),
        applied[0],
    )
    if deletions > MIN_DELETIONS and deletions >= TIMES_MEDIAN * median:
        found.append(
            _check(
                f"{deletions} deletions where this customer's last {len(applied)} applied upload(s) "
                f"deleted a median of {_number(median)}",
                kind="deletions",
                deletions=deletions,
                applied=len(applied),
                median=_number(median),
            )
        )
    rows = summary_rows(summary)
    if isinstance(rows, int) and last.rows and rows <= (1 - ROWS_DROP) * last.rows:
        drop = round(100 * (last.rows - rows) / last.rows)
        found.append(
            _check(
                f"{rows} rows, {drop}% fewer than the {last.rows} of `{last.name}`, the last applied upload",
                kind="rows",
                rows=rows,
                drop=drop,
                last=last.rows,
                upload=last.name,
            )
        )
    columns = summary.get("columns")
    if isinstance(columns, list) and last.columns is not None:
        now = {_column_key(c) for c in columns}
        for gone in (c for c in last.columns if _column_key(c) not in now):
            found.append(
                _check(
                    f"the column `{gone}` was in `{last.name}`, the last applied upload, "
                    "and is not in this one",
                    kind="column",
                    column=gone,
                    upload=last.name,
                )
            )
    return found


def _column_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _decision(upload: Upload) -> str:
    return "not recorded" if upload.decision is None else upload.decision


def _date(upload: Upload) -> str:
    return upload.at.astimezone(UTC).strftime("%Y-%m-%d")


def _rows(upload: Upload) -> str:
    return "?" if upload.rows is None else str(upload.rows)


def history_markdown(history: list[Upload], checks: list[Unusual]) -> str:
    """The form's part: the Check lines, then the last decided uploads as a table."""
    lines = [f"**Check:** {check.markdown}\n" for check in checks]
    if not history:
        return "".join(lines) + "\nNo earlier decided upload of this customer: nothing to compare with.\n"
    lines.append(f"\n**The customer's last {len(history)} decided upload(s)**, newest first:\n\n")
    lines.append("| date | upload | rows | invites | updates | deactivations | deletions | decision | by |\n")
    lines.append("|---|---|---|---|---|---|---|---|---|\n")
    for u in history:
        name = u.name.replace("|", "\\|").replace("`", "'")
        lines.append(
            f"| {_date(u)} | `{name}` | {_rows(u)} | {u.invites} | {u.updates} | {u.deactivations} | "
            f"{u.deletions} | {_decision(u)} | {u.decided_by.replace('|', '/') or '—'} |\n"
        )
    return "".join(lines)


def history_details(history: list[Upload], checks: list[Unusual]) -> SlackText:
    """The Slack notice's part: the Check lines and one line per decided upload (escaped)."""
    lines = [f":warning: *Check:* {check.slack}" for check in checks]
    if history:
        lines.append(f"*Last {len(history)} decided upload(s), newest first:*")
    for u in history:
        line = render(
            "slack/history_upload.md.j2",
            date=_date(u),
            rows=_rows(u),
            invites=u.invites,
            updates=u.updates,
            deactivations=u.deactivations,
            deletions=u.deletions,
            decision=_decision(u),
            by=u.decided_by,
        )
        lines.append(line.strip())
    return SlackText("\n".join(lines))


@dataclass(frozen=True)
class SeenUnmapped:
    """A value the mapping table does not map, as recent uploads carried it."""

    field: str
    value: str
    people: int  # rows holding it in the newest upload that carried it
    first_seen: datetime


def unmapped_since(uploads: list[Upload], since: datetime) -> list[SeenUnmapped]:
    """Each unmapped value of the uploads made since `since` (newest first, as `customer_uploads`
    gives them): how many people the newest one counted, when the first one carried it."""
    found: dict[tuple[str, str], SeenUnmapped] = {}
    for upload in (u for u in uploads if u.at >= since):
        for field, value, rows in upload.unmapped:
            newer = found.get((field, value))
            people = newer.people if newer else rows
            found[(field, value)] = SeenUnmapped(field, value, people, upload.at)
    return sorted(found.values(), key=lambda s: (s.field.casefold(), -s.people, s.value))
