"""The file engine's outputs: the review files (formula-escaped for spreadsheets, and unescaped copies
for the hub API), `summary.json` with counts only, written atomically, and the counts in words.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypedDict

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tasks.files_read import Hris
from tasks.files_rules import DeletionGuard, Updates
from tasks.files_segments import Segments, UnmappedValue

INVITES = "potential invites.csv"
UPDATES = "profile updates.csv"
DELETIONS = "profile deletions.csv"
REJECTED = "rejected rows.csv"
SUMMARY = "summary.json"
GRACE_COLUMN = (
    "Deletion Grace Until"  # profile updates.csv, deletion grace held members only; the hub keeps it
)
OUTPUT_FILES = [INVITES, UPDATES, DELETIONS, REJECTED, SUMMARY]
# The same three files with every value as it is, for the hub API: formula escaping is for people
# opening a file in a spreadsheet, not for data (a segment value `- None -` stays `- None -`).
HUB_API_DIR = "for-hub-api"
HUB_FILES = [INVITES, UPDATES, DELETIONS]

NO_STATUS_NOTE = "no status column: status unchanged"
FORMULA_START = r"^[=+\-@\t\r]"


class Summary(TypedDict):
    """summary.json: counts, never an email or a name (of the customer's data, only unmapped values)."""

    invites: int
    updates: int
    deletions: int
    deactivations: int
    reactivations: int
    rejected_rows: int
    unmapped_values: list[UnmappedValue]
    deletion_guard: DeletionGuard
    hris_rows: int  # rows read from the HRIS file (charted; summaries of issue 25 also had `rows`)
    members: int
    missing_columns: list[str]
    renamed_columns: list[dict[str, str | int]]  # tasks/column_match.py renamed_columns
    status_column: bool
    notes: list[str]


def _escape_formulas(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Prefix cells a spreadsheet would run as a formula with a quote."""
    risky = pc.match_substring_regex(array, FORMULA_START)
    return pc.if_else(risky, pc.binary_join_element_wise("'", array, ""), array)


def _write_csv(table: pa.Table, path: Path, escape: bool = True) -> None:
    escaped = pa.table(
        {
            name: _escape_formulas(column) if escape and pa.types.is_string(column.type) else column
            for name, column in zip(table.column_names, table.columns, strict=True)
        }
    )
    pacsv.write_csv(escaped, path, write_options=pacsv.WriteOptions(quoting_style="needed"))


def hub_file(out_dir: Path | str, name: str) -> Path:
    """The file to send to the hub API: the unescaped copy (folders written before it existed: the
    reviewed file)."""
    raw = Path(out_dir) / HUB_API_DIR / name
    return raw if raw.is_file() else Path(out_dir) / name


def summary_of(
    files: dict[str, pa.Table],
    updates: Updates,
    segments: Segments,
    guard: DeletionGuard,
    hris: Hris,
    renamed: list[dict[str, str | int]],
) -> Summary:
    """The counts a person reads before applying the files (summary.json): never an email or a name."""
    status_column = hris.raw_status is not None
    return Summary(
        invites=files[INVITES].num_rows,
        updates=files[UPDATES].num_rows,
        deletions=files[DELETIONS].num_rows,
        deactivations=updates.deactivations,
        reactivations=updates.reactivations,
        rejected_rows=files[REJECTED].num_rows,
        unmapped_values=sorted(segments.unmapped_values, key=lambda u: (u["field"], -u["rows"], u["value"])),
        deletion_guard=guard,
        hris_rows=len(hris.key),
        members=guard["members"],
        missing_columns=segments.missing_columns,
        renamed_columns=renamed,
        status_column=status_column,
        notes=[] if status_column else [NO_STATUS_NOTE],
    )


def write_atomically(out_dir: Path, tables: dict[str, pa.Table], summary: Summary, hub_copies: bool) -> None:
    """Write into a hidden folder beside the outputs, then rename each file into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".generating-", dir=out_dir))
    writes = [(table, staging / name, True) for name, table in tables.items()]
    if hub_copies:
        writes += [(tables[name], staging / name.replace(".csv", ".raw"), False) for name in HUB_FILES]
    try:
        with ThreadPoolExecutor(2) as pool:  # arrow writes without the GIL: two files at a time
            list(pool.map(lambda write: _write_csv(*write), writes))
        (staging / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if hub_copies:
            (out_dir / HUB_API_DIR).mkdir(exist_ok=True)
            for name in HUB_FILES:
                os.replace(staging / name.replace(".csv", ".raw"), out_dir / HUB_API_DIR / name)
        for name in OUTPUT_FILES:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _count(n: int, one: str) -> str:
    return f"{n} {one if n == 1 else one + 's'}"


def counts_in_words(summary: Summary) -> str:
    """A summary's counts as the Slack message gives them, for a log line a person reads."""
    s = summary
    compared = f"{_count(s['hris_rows'], 'HRIS row')} compared with {_count(s['members'], 'hub member')}"
    changes = [
        _count(s["invites"], "potential invite"),
        f"{_count(s['updates'], 'profile update')} ({_count(s['deactivations'], 'deactivation')}, "
        f"{_count(s['reactivations'], 'reactivation')})",
        _count(s["deletions"], "profile deletion"),
        _count(s["rejected_rows"], "rejected row"),
        _count(len(s["unmapped_values"]), "unmapped value"),
    ]
    return f"{compared}: " + ", ".join(changes)
