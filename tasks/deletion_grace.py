"""Deletion grace (issue 23 §6, opt-in per customer): a member missing from an upload is deactivated and
held, and deleted only if still missing `deletion_grace_days` later; one who comes back is reactivated
with their profile as it is in the hub.

A stage after the file engine, so the engine keeps the runbook's rules: it moves the engine's deletions
of members still in grace into the profile updates (status inactive, `Deletion Grace Until` the day
their grace ends) and reactivates members back from grace. Who is held, since when, is a plain record
in result storage, one per upload, keyed by email SHA-256 (never an email), and read from the last
applied upload: a rejected upload changes no one's grace. Grace 0 and nobody held: nothing changes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tasks.files import DELETIONS, FORMULA_START, GRACE_COLUMN, HUB_API_DIR, SUMMARY, UPDATES
from tasks.once import already_done, once_key, store_record
from tasks.records import DeletionGrace
from tasks.registry import Registration, last_applied
from tasks.sftp import claimed_on
from tasks.tabular import read_csv

STATUS = "Employee Status"
DEACTIVATED = ("deactivated", "inactive")  # a member export's status of a deactivated member


def member_key(email: str) -> str:
    """How the grace record names a member: the SHA-256 of the email as the hub matches it."""
    return hashlib.sha256(email.strip().casefold().encode()).hexdigest()


@dataclass
class Grace:
    """One upload's grace decisions: `held` is the state after it, the rest what its files say.
    Emails are as the hub's export has them (trimmed), as the engine's files carry them."""

    held: dict[str, str]  # member key -> first day missing (ISO), after this upload
    hold: dict[str, str] = field(default_factory=dict)  # email -> last day of grace (ISO)
    back: set[str] = field(default_factory=set)  # emails of members back from grace
    expired: int = 0  # held members still missing when their grace ended: deleted now


def decide(
    held_before: dict[str, str], missing: list[str], deactivated: list[str], day: date, days: int
) -> Grace:
    """The runbook's deletion, delayed: a member `missing` from this upload is held from the first day
    they were missing until `days` later, then deleted; a held member no longer missing is back.
    `deactivated`: the hub's deactivated members (held ones are; one gone from the hub is forgotten)."""
    grace = Grace(held={})
    missing_keys = set()
    for email in missing:
        key = member_key(email)
        missing_keys.add(key)
        since = date.fromisoformat(held_before.get(key, day.isoformat()))
        until = since + timedelta(days=days)
        if days and day < until:
            grace.held[key] = since.isoformat()
            grace.hold[email] = until.isoformat()
        elif key in held_before:
            grace.expired += 1
    if held_before:
        for email in deactivated:
            key = member_key(email)
            if key in held_before and key not in missing_keys:
                grace.back.add(email)
    return grace


def read_strings(path: Path, label: str) -> pa.Table:
    """A CSV with every column as text under its own header name, blanks as empty strings: read as the
    engine reads (any encoding and delimiter, line breaks inside values; a bad file is one line)."""
    read = read_csv(label, path)
    return read.table.rename_columns(read.header)


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    """A column found by its name in any case (a hand-made export may say `email`), trimmed; blank if
    absent."""
    for candidate in table.column_names:
        if candidate.strip().casefold() == name.casefold():
            return pc.utf8_trim_whitespace(table.column(candidate))
    return pa.chunked_array([pa.array([""] * table.num_rows, pa.string())])


def _deactivated(export: pa.Table) -> list[str]:
    """The emails of the export's deactivated members (the only ones grace can have held)."""
    status = pc.utf8_lower(_column(export, "Status"))
    return [
        str(e) for e in _column(export, "Email").filter(pc.is_in(status, pa.array(DEACTIVATED))).to_pylist()
    ]


def _profiles(export: pa.Table, wanted: set[str]) -> dict[str, dict[str, str]]:
    """The hub's own values of the `wanted` members (by email), each by column name in any case."""
    emails = _column(export, "Email")
    chosen = pc.is_in(emails, pa.array(sorted(wanted), pa.string()))
    taken = export.filter(chosen).to_pylist()
    return {
        str(email): {name.strip().casefold(): str(v) for name, v in row.items()}
        for email, row in zip(emails.filter(chosen).to_pylist(), taken, strict=True)
    }


@dataclass
class Rewritten:
    updates: pa.Table
    deletions: pa.Table
    deactivations: int
    reactivations: int


def rewrite(
    grace: Grace, updates: pa.Table, deletions: pa.Table, export: pa.Table, status_column: bool
) -> Rewritten:
    """The engine's two files with grace applied: held members out of the deletions and into the
    updates (inactive, until when), members back from grace reactivated (with a status column, as
    their row says), each added row with the member's profile as the hub has it."""
    profiles = _profiles(export, set(grace.hold) | grace.back)
    deactivated = {e for e, p in profiles.items() if p.get("status", "").strip().casefold() in DEACTIVATED}
    rows = updates.to_pylist()
    in_updates = set()
    reactivations = 0
    for row in rows:
        email = row["Email"].strip()
        in_updates.add(email)
        row[GRACE_COLUMN] = ""
        if email in grace.back and not status_column and row.get(STATUS) == "inactive":
            row[STATUS], reactivations = "active", reactivations + 1
    deactivations = 0
    for email in sorted(set(grace.hold) | (grace.back - in_updates)):
        profile = profiles.get(email, {})
        row = {name: profile.get(name.casefold(), "") for name in updates.column_names}
        row["Email"] = email
        was_deactivated = email in deactivated
        if email in grace.hold:
            row[STATUS], row[GRACE_COLUMN] = "inactive", grace.hold[email]
            deactivations += not was_deactivated
        else:  # back, and no change of the engine's: reactivated unless their row keeps them inactive
            stays = status_column and was_deactivated
            row[STATUS], row[GRACE_COLUMN] = ("inactive" if stays else "active"), ""
            reactivations += was_deactivated and not stays
        rows.append(row)
    names = [*updates.column_names, GRACE_COLUMN]
    kept = pc.invert(pc.is_in(_column(deletions, "Email"), pa.array(sorted(grace.hold), pa.string())))
    return Rewritten(
        updates=pa.table({name: pa.array([r.get(name, "") for r in rows], pa.string()) for name in names}),
        deletions=deletions.filter(kept),
        deactivations=deactivations,
        reactivations=reactivations,
    )


def _write(table: pa.Table, path: Path, escape: bool) -> None:
    """Replace one file, formula-escaped for people (the review copy) or as it is (the hub's)."""
    if escape:
        table = pa.table(
            {
                name: pc.if_else(
                    pc.match_substring_regex(column, FORMULA_START),
                    pc.binary_join_element_wise("'", column, ""),
                    column,
                )
                for name, column in zip(table.column_names, table.columns, strict=True)
            }
        )
    staging = path.with_name(f".grace-{path.name}")
    pacsv.write_csv(table, staging, write_options=pacsv.WriteOptions(quoting_style="needed"))
    os.replace(staging, path)


def until_counts(grace: Grace) -> list[dict[str, str | int]]:
    """How many members are held until each day, earliest first: dates and counts, never who."""
    days: dict[str, int] = {}
    for until in grace.hold.values():
        days[until] = days.get(until, 0) + 1
    return [{"until": day, "members": n} for day, n in sorted(days.items())]


def apply_grace(
    out_dir: Path, members_csv: Path, summary: dict, held_before: dict[str, str], day: date, days: int
) -> tuple[dict, Grace]:
    """Apply grace to the engine's files in `out_dir` (both copies) and its summary; returns the new
    summary (counts and dates only) and the decisions, whose `held` is the state to store."""
    hub_dir = out_dir / HUB_API_DIR
    deletions = read_strings(hub_dir / DELETIONS, "profile deletions")
    export = read_strings(members_csv, "hub member export")
    missing = [str(e) for e in _column(deletions, "Email").to_pylist()]
    grace = decide(held_before, missing, _deactivated(export) if held_before else [], day, days)
    summary = dict(summary)
    if grace.hold or grace.back:
        done = rewrite(
            grace,
            read_strings(hub_dir / UPDATES, "profile updates"),
            deletions,
            export,
            summary["status_column"],
        )
        for name, table in ((UPDATES, done.updates), (DELETIONS, done.deletions)):
            _write(table, hub_dir / name, escape=False)
            _write(table, out_dir / name, escape=True)
        summary.update(
            updates=done.updates.num_rows,
            deletions=done.deletions.num_rows,
            deactivations=summary["deactivations"] + done.deactivations,
            reactivations=summary["reactivations"] + done.reactivations,
        )
    summary["deletion_grace"] = {
        "days": days,
        "held": len(grace.held),
        "held_until": until_counts(grace),
        "new": len(set(grace.held) - set(held_before)),
        "back": len(grace.back),
        "deleted_after_grace": grace.expired,
    }
    (out_dir / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary, grace


def upload_day(upload: str) -> date:
    """The UTC day of the upload's claim (its claimed name says it), else today: grace counts days."""
    day = claimed_on(upload)
    return date.fromisoformat(day) if day else datetime.now(UTC).date()


def state_key(customer_key: str, upload: str) -> str:
    """Where the grace state after `upload` is stored (result storage, beside the once-records)."""
    return once_key(customer_key, f"deletion-grace-{upload}")


def held_before(customer_key: str) -> dict[str, str]:
    """Who grace holds now: the state after the last applied upload (none stored: nobody)."""
    upload = last_applied(customer_key)
    found = already_done(state_key(customer_key, upload)) if upload else None
    return dict(found.held) if isinstance(found, DeletionGrace) else {}


def hold_deletions(reg: Registration, upload: str, out_dir: Path, members_csv: Path, summary: dict) -> dict:
    """Process-upload's grace stage for one claimed upload: the files and summary rewritten, the state
    after it stored (read back only once the upload is applied). Off and nobody held: unchanged."""
    before, days = held_before(reg.customer.key), reg.deletion_grace_days
    if not days and not before:
        return summary
    summary, grace = apply_grace(Path(out_dir), Path(members_csv), summary, before, upload_day(upload), days)
    record = DeletionGrace(upload=upload, days=days, held=grace.held)
    store_record(state_key(reg.customer.key, upload), record)
    return summary


def grace_ends(reg: Registration, upload: str, sha256: str) -> bool:
    """Whether this upload ends someone's grace: then it is compared and applied even with the bytes of
    an earlier applied upload (else a duplicate, never applied twice), since the same file now deletes
    who it only held. Decided once per upload and content, so a re-run of the upload agrees."""
    key = once_key(reg.customer.key, f"grace-ends-{upload}-{sha256[:16]}")
    if (decided := already_done(key)) is not None:
        return bool(decided)
    day, days = upload_day(upload), timedelta(days=reg.deletion_grace_days)
    ends = any(day >= date.fromisoformat(since) + days for since in held_before(reg.customer.key).values())
    store_record(key, ends)
    return ends


def grace_in_words(summary: dict) -> str:
    """The Slack summary's grace line: counts and dates, never who ("" when grace is off)."""
    grace = summary.get("deletion_grace")
    if not grace:
        return ""
    held = ", ".join(f"{h['members']} until {h['until']}" for h in grace["held_until"]) or "nobody"
    return (
        f"deletion grace ({grace['days']} days): held, deactivated not deleted: {held}; "
        f"{grace['back']} back and reactivated; {grace['deleted_after_grace']} deleted after their grace"
    )
