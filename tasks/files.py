"""The three review files from an HRIS upload: potential invites, profile updates, profile deletions.

Compares the customer's HRIS CSV with the hub's member export, translating mapped fields through
the data mapping table. Columnar (pyarrow + numpy): emails are hashed once, in one shared
dictionary for both files; statuses and mapped fields are read dictionary-encoded, so each distinct
value is normalised and translated once. Member emails and names never reach the logs; counts do.

`generate_files` runs the engine's stages, each in its own module: both files read and keyed
(tasks/files_read.py), mapped values as segment codes (tasks/files_segments.py), the runbook's
rules (tasks/files_rules.py), the files and their summary written (tasks/files_write.py).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from tasks import files_rules as rules
from tasks.column_match import renamed_columns
from tasks.files_read import (
    ACTIVE,
    BAD_STATUS,
    EMAIL_ALIASES,
    FIRST_NAME_ALIASES,
    INACTIVE,
    LAST_NAME_ALIASES,
    STATUS_ALIASES,
    Hris,
    Matches,
    Members,
    hris_columns,
    match,
    read_hris,
    read_members,
)
from tasks.files_rules import DeletionGuard, Updates
from tasks.files_segments import UNKNOWN, Segments, UnmappedValue, Vocabulary, segment_codes
from tasks.files_write import (
    DELETIONS,
    FORMULA_START,
    GRACE_COLUMN,
    HUB_API_DIR,
    HUB_FILES,
    INVITES,
    NO_STATUS_NOTE,
    OUTPUT_FILES,
    REJECTED,
    SUMMARY,
    UPDATES,
    Summary,
    counts_in_words,
    hub_file,
    summary_of,
    write_atomically,
)
from tasks.mapping_table import MappingTable, read_mapping_file
from tasks.tabular import InputError

if TYPE_CHECKING:
    from prefect import Task

# The names the engine's callers (flows, the CLI, benchmarks, tests) import from here.
__all__ = [
    "ACTIVE",
    "BAD_STATUS",
    "DELETIONS",
    "EMAIL_ALIASES",
    "FIRST_NAME_ALIASES",
    "FORMULA_START",
    "HUB_API_DIR",
    "HUB_FILES",
    "INACTIVE",
    "INVITES",
    "LAST_NAME_ALIASES",
    "NO_STATUS_NOTE",
    "OUTPUT_FILES",
    "REJECTED",
    "STATUS_ALIASES",
    "GRACE_COLUMN",
    "SUMMARY",
    "UNKNOWN",
    "UPDATES",
    "DeletionGuard",
    "Hris",
    "Matches",
    "MassDeletion",
    "Members",
    "Result",
    "Segments",
    "Summary",
    "UnmappedValue",
    "Updates",
    "Vocabulary",
    "counts_in_words",
    "generate_files",
    "hub_file",
    "use_jemalloc",
]


class MassDeletion(Exception):
    """The upload would delete more members than the guard allows; files are written for review."""


@dataclass
class Result:
    summary: Summary
    out_dir: Path


def generate_files(
    hris_csv: Path | str,
    members_csv: Path | str,
    mapping: Path | str | MappingTable,
    out_dir: Path | str,
    max_deletion_pct: float = 20,
    allow_mass_deletion: bool = False,
    hub_copies: bool = False,
) -> Result:
    """Write the five output files into out_dir (and, with `hub_copies`, the unescaped three in
    HUB_API_DIR); raise InputError before writing anything if input is bad.

    One stage per rule of the runbook's three files, in the order a person would apply them; the
    member export is read, mapped values coded, rejected rows numbered by line, and invites and
    deletions found on a second thread beside the rest."""
    mapping_table = mapping if isinstance(mapping, MappingTable) else read_mapping_file(mapping)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("output folder", out_dir, "exists and is not a folder")
    with ThreadPoolExecutor(2) as pool:  # pyarrow and numpy release the GIL: both cores work
        read_other = pool.submit(read_members, members_csv, mapping_table)
        hris = read_hris(hris_csv, mapping_table)  # the upload's error first, when both files are bad
        members = read_other.result()
        beside = pool.submit(_beside_the_match, hris, members, mapping_table)
        matches = match(hris, members)
        rejected = rules.rejected(hris, matches)
        valid = ~rejected
        segments = beside.result()
        segments.count_unmapped(valid)
        rejected_rows = pool.submit(rules.rejected_rows, hris, matches, np.nonzero(rejected)[0])
        invites = pool.submit(rules.invites, hris, matches, segments, valid)
        deletions = pool.submit(rules.deletions, hris, members, matches)
        updates = rules.updates(hris, members, matches, segments, valid)
        files = {
            INVITES: invites.result(),
            UPDATES: updates.table,
            DELETIONS: deletions.result(),
            REJECTED: rejected_rows.result(),
        }
    guard = rules.deletion_guard(
        files[DELETIONS].num_rows, len(matches.m_rows), max_deletion_pct, allow_mass_deletion
    )
    renamed = renamed_columns(
        hris.table, hris_csv, mapping_table, segments.missing_columns, hris_columns(mapping_table)
    )
    summary = summary_of(files, updates, segments, guard, hris, renamed)
    write_atomically(out_dir, files, summary, hub_copies)
    if guard["tripped"] and not allow_mass_deletion:
        raise MassDeletion(
            f"mass-deletion guard: {guard['deletions']} of {guard['members']} members "
            f"({guard['deletion_pct']}%) would be deleted, over the {max_deletion_pct}% limit. The files "
            f"are in {out_dir} for review; if this is intended, run again with --allow-mass-deletion"
        )
    return Result(summary=summary, out_dir=out_dir)


JEMALLOC_DECAY_MS = 50  # freed pages go back to the system within this; arrow's default keeps them ~1 s


def _beside_the_match(hris: Hris, members: Members, mapping: MappingTable) -> Segments:
    """What needs no match, on the second core while the match runs: mapped values as codes and,
    when a row is already rejected (its email or status), every row's line."""
    segments = segment_codes(hris.table, members.table, mapping)
    if rules.rejected_before_match(hris).any():
        _ = hris.table.row_lines
    return segments


def use_jemalloc() -> None:
    """Allocate arrow memory with jemalloc for this process: on a 1M-row upload ~0.7 s less system
    time than the default mimalloc; freed pages returned within 50 ms, a ~230 MiB lower peak
    (the parse's scratch is gone before the match allocates), for no measurable time
    (docs/performance.md)."""
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(JEMALLOC_DECAY_MS)
    except NotImplementedError:  # a pyarrow built without it (Windows): the default pool is fine
        pass


def _generate_files_for_flow(
    hris_csv: Path,
    members_csv: Path,
    mapping: Path | MappingTable,
    out_dir: Path,
    max_deletion_pct: float = 20,
) -> Summary:
    """The file engine as a task; a tripped mass-deletion guard comes back in the summary for a gate."""
    from prefect import get_run_logger

    use_jemalloc()
    try:
        result = generate_files(
            hris_csv,
            members_csv,
            mapping,
            out_dir,
            max_deletion_pct,
            allow_mass_deletion=False,
            hub_copies=True,
        )
        summary = result.summary
    except MassDeletion:
        summary = json.loads((Path(out_dir) / SUMMARY).read_text())
    get_run_logger().info("Generated files: %s", counts_in_words(summary))
    return summary


def __getattr__(name: str) -> Task[[Path, Path, Path | MappingTable, Path, float], Summary]:
    """`generate_files_task` (a Prefect task) is made on first use, so `hris-runbook generate-files`
    runs the engine without importing Prefect (about a second of a two-second run)."""
    if name == "generate_files_task":
        from prefect import task

        from tasks.naming import step_run_name

        made = task(name="generate-files", task_run_name=step_run_name("generate-files"))(
            _generate_files_for_flow
        )
        globals()[name] = made
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
