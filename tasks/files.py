"""The three review files from an HRIS upload: potential invites, profile updates, profile deletions.

Compares the customer's HRIS CSV with the hub's member export, translating mapped fields through
the data mapping table. Columnar (pyarrow + numpy): emails are hashed once, in one shared
dictionary for both files; statuses and mapped fields are read dictionary-encoded, so each distinct
value is normalised and translated once. Member emails and names never reach the logs; counts do.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tasks.addresses import address_keys
from tasks.column_match import renamed_columns
from tasks.mapping import MappingTable, read_mapping_file
from tasks.tabular import InputError, Table, header_key, read_csv

if TYPE_CHECKING:
    from prefect import Task

INVITES = "potential invites.csv"
UPDATES = "profile updates.csv"
DELETIONS = "profile deletions.csv"
REJECTED = "rejected rows.csv"
SUMMARY = "summary.json"
OUTPUT_FILES = [INVITES, UPDATES, DELETIONS, REJECTED, SUMMARY]
# The same three files with every value as it is, for the hub API: formula escaping is for people
# opening a file in a spreadsheet, not for data (a segment value `- None -` stays `- None -`).
HUB_API_DIR = "for-hub-api"
HUB_FILES = [INVITES, UPDATES, DELETIONS]

EMAIL_ALIASES = ["email", "work email", "email address", "e-mail"]
FIRST_NAME_ALIASES = ["first name"]
LAST_NAME_ALIASES = ["last name"]
STATUS_ALIASES = ["employee status", "status"]
NO_STATUS_NOTE = "no status column: status unchanged"
FORMULA_START = r"^[=+\-@\t\r]"
ACTIVE, INACTIVE, BAD_STATUS = 0, 1, 2
UNKNOWN = -2  # the code of an HRIS value the mapping table does not know (-1: no value)


class MassDeletion(Exception):
    """The upload would delete more members than the guard allows; files are written for review."""


class UnmappedValue(TypedDict):
    field: str
    value: str
    rows: int


class DeletionGuard(TypedDict):
    tripped: bool
    allowed: bool
    max_deletion_pct: float
    deletions: int
    members: int
    deletion_pct: float


class Summary(TypedDict):
    """summary.json: counts, never an email or a name (of the customer's data, only unmapped values)."""

    rows: int  # rows read from the HRIS file (the board charts it)
    invites: int
    updates: int
    deletions: int
    deactivations: int
    reactivations: int
    rejected_rows: int
    unmapped_values: list[UnmappedValue]
    deletion_guard: DeletionGuard
    hris_rows: int
    members: int
    missing_columns: list[str]
    renamed_columns: list[dict[str, str | int]]  # tasks/column_match.py renamed_columns
    status_column: bool
    notes: list[str]


@dataclass
class Result:
    summary: Summary
    out_dir: Path


class Vocabulary:
    """10KC values of one segment as integer codes, so HRIS and hub values compare as numbers."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._codes: dict[str, int] = {}

    def code(self, value: str) -> int:
        if value not in self._codes:
            self._codes[value] = len(self.values)
            self.values.append(value)
        return self._codes[value]

    def strings(self, codes: np.ndarray) -> pa.Array:
        """Codes back to text; -1 (no value) becomes an empty cell."""
        if not self.values:  # a segment no file has a value for
            return pa.repeat(pa.scalar("", pa.string()), len(codes))
        text = pa.array(self.values, pa.string()).take(pa.array(np.maximum(codes, 0)))
        return pc.if_else(pa.array(codes < 0), "", text)


def _per_value(column: pa.DictionaryArray, convert: Callable[[str], int]) -> np.ndarray:
    """Apply `convert` to each distinct value once and spread the results over the rows."""
    lookup = np.array([convert(v) for v in column.dictionary.to_pylist()] + [convert("")], dtype=np.int64)
    indices = column.indices.fill_null(len(column.dictionary)).to_numpy()
    per_row: np.ndarray = lookup[indices]
    return per_row


def _strings(column: pa.Array | None, rows: int) -> pa.Array:
    """A name column as trimmed text; an absent column is blank on every row."""
    if column is None:
        return pa.repeat(pa.scalar("", pa.string()), rows)
    if pa.types.is_dictionary(column.type):
        column = column.cast(pa.string())
    return pc.utf8_trim_whitespace(column)


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


def _names(first: pa.Array, last: pa.Array) -> list[str | None]:
    """'first last' per row, spaces collapsed and case folded, for matching a person whose email is
    missing or invalid; a row without both names matches no one."""
    return [
        " ".join(f"{f} {s}".split()).casefold() if f.strip() and s.strip() else None
        for f, s in zip(first.to_pylist(), last.to_pylist(), strict=True)
    ]


def _sorted_by(keys: pa.Array, columns: dict[str, pa.Array]) -> pa.Table:
    order = pc.sort_indices(keys)
    return pa.table({name: column.take(order) for name, column in columns.items()})


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

    One stage per rule of the runbook's three files, in the order a person would apply them."""
    mapping_table = mapping if isinstance(mapping, MappingTable) else read_mapping_file(mapping)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("output folder", out_dir, "exists and is not a folder")
    hris = _read_hris(hris_csv, mapping_table)
    members = _read_members(members_csv, mapping_table)
    matches = _match(hris, members)
    rejected = _rejected(hris, matches)
    valid = ~rejected
    segments = _segments(hris.table, members.table, mapping_table, valid)
    updates = _updates(hris, members, matches, segments, valid)
    files = {
        INVITES: _invites(hris, matches, segments, valid),
        UPDATES: updates.table,
        DELETIONS: _deletions(hris, members, matches),
        REJECTED: _rejected_rows(hris, matches, np.nonzero(rejected)[0]),
    }
    guard = _deletion_guard(
        files[DELETIONS].num_rows, len(matches.m_rows), max_deletion_pct, allow_mass_deletion
    )
    renamed = renamed_columns(
        hris.table, hris_csv, mapping_table, segments.missing_columns, _hris_columns(mapping_table)
    )
    summary = _summary(files, updates, segments, guard, hris, renamed)
    _write_atomically(out_dir, files, summary, hub_copies)
    if guard["tripped"] and not allow_mass_deletion:
        raise MassDeletion(
            f"mass-deletion guard: {guard['deletions']} of {guard['members']} members "
            f"({guard['deletion_pct']}%) would be deleted, over the {max_deletion_pct}% limit. The files "
            f"are in {out_dir} for review; if this is intended, run again with --allow-mass-deletion"
        )
    return Result(summary=summary, out_dir=out_dir)


# --- the stages of generate_files, each one rule of the runbook -------------------------------------


@dataclass
class Hris:
    """The HRIS upload, one entry per row: the person's email and its key, names and status."""

    table: Table
    email: pa.Array  # trimmed
    key: pa.Array  # address key: lower case, the domain in IDNA form (ö.de and xn--… are one)
    has_email: np.ndarray
    valid_email: np.ndarray  # a valid address (so has_email too)
    first: pa.Array  # trimmed; blank on every row when the file has no such column
    last: pa.Array
    has_first: bool
    has_last: bool
    raw_status: pa.Array | None  # None: no status column, so nobody's status changes (runbook: optional)
    status: np.ndarray  # ACTIVE, INACTIVE or BAD_STATUS


@dataclass
class Members:
    """The hub's member export, one entry per row: email and its key, names, deactivated or not."""

    table: Table
    email: pa.Array
    key: pa.Array
    first: pa.Array
    last: pa.Array
    deactivated: np.ndarray


@dataclass
class Matches:
    """Who is who across both files, from one hash of every email in them."""

    ids_m: np.ndarray  # each member row's person, as a number shared with the HRIS rows
    duplicated: np.ndarray  # per HRIS row: a valid email on more than one row
    in_file: np.ndarray  # per person: on some HRIS row with an email, rejected or not
    m_rows: np.ndarray  # the member rows, each member once (the first row wins when the export repeats one)
    hub_row: np.ndarray  # per HRIS row: that person's member row, -1 when not a member


@dataclass
class Segments:
    """Each 10KC segment's value as a code per row (-1: none) in the HRIS file and the member export."""

    names: list[str]
    vocabularies: list[Vocabulary]
    hris: list[np.ndarray]
    members: list[np.ndarray]
    unmapped_values: list[UnmappedValue]
    missing_columns: list[str]


@dataclass
class Updates:
    table: pa.Table
    deactivations: int
    reactivations: int


def _hris_columns(mapping: MappingTable) -> list[str]:
    """The HRIS columns the engine reads (header keys): identity, status and every mapped field."""
    mapped_keys = [header_key(f.hris_field) for f in mapping.fields]
    return [*EMAIL_ALIASES, *FIRST_NAME_ALIASES, *LAST_NAME_ALIASES, *STATUS_ALIASES, *mapped_keys]


def _read_hris(path: Path | str, mapping: MappingTable) -> Hris:
    """Read and key the HRIS file: 'each line in the file will represent one member's profile', found
    by its email (a row without a valid one is rejected later)."""
    mapped_keys = [header_key(f.hris_field) for f in mapping.fields]
    table = read_csv(
        "HRIS upload", path, wanted=_hris_columns(mapping), categorical=[*STATUS_ALIASES, *mapped_keys]
    )
    raw_email = table.column(EMAIL_ALIASES)
    if raw_email is None:
        raise InputError(
            "HRIS upload", path, "no email column (looked for Email, Work Email, Email Address, E-mail)"
        )
    rows = len(raw_email)
    email = pc.utf8_trim_whitespace(raw_email)
    key, valid_email = address_keys(email)
    has_email = pc.not_equal(key, "").to_numpy(zero_copy_only=False)
    valid_email &= has_email
    first, last = table.column(FIRST_NAME_ALIASES), table.column(LAST_NAME_ALIASES)
    raw_status = table.column(STATUS_ALIASES)
    return Hris(
        table=table,
        email=email,
        key=key,
        has_email=has_email,
        valid_email=valid_email,
        first=_strings(first, rows),
        last=_strings(last, rows),
        has_first=first is not None,
        has_last=last is not None,
        raw_status=raw_status,
        status=_per_value(raw_status, _status_code) if raw_status is not None else np.zeros(rows, np.int64),
    )


def _status_code(value: str) -> int:
    """'We expect the values "active" or "inactive"' (a blank cell is active)."""
    v = value.strip().lower()
    return ACTIVE if v in ("", "active") else INACTIVE if v == "inactive" else BAD_STATUS


def _read_members(path: Path | str, mapping: MappingTable) -> Members:
    """Read and key the hub's member export the same way; a member marked deactivated (or inactive)
    is deactivated."""
    segment_keys = [header_key(s) for s in mapping.segments()]
    table = read_csv(
        "member export",
        path,
        wanted=["email", "first name", "last name", "status", *segment_keys],
        categorical=["status", *segment_keys],
    )
    raw_email = table.column(["email"])
    if raw_email is None:
        raise InputError("member export", path, "no Email column")
    rows = len(raw_email)
    email = pc.utf8_trim_whitespace(raw_email)
    key, _ = address_keys(email)
    status = table.column(["status"])
    deactivated = (
        _per_value(status, lambda v: int(v.strip().lower() in ("deactivated", "inactive")))
        if status is not None
        else np.zeros(rows, np.int64)
    ).astype(bool)
    return Members(
        table=table,
        email=email,
        key=key,
        first=_strings(table.column(FIRST_NAME_ALIASES), rows),
        last=_strings(table.column(LAST_NAME_ALIASES), rows),
        deactivated=deactivated,
    )


def _match(hris: Hris, members: Members) -> Matches:
    """Number every email of both files once, so people compare as numbers: who is on two rows, who
    is on any row, and which member each row is."""
    encoded = pc.dictionary_encode(pa.concat_arrays([hris.key, members.key]))
    ids = encoded.indices.to_numpy()
    ids_h, ids_m = ids[: len(hris.key)], ids[len(hris.key) :]
    distinct = len(encoded.dictionary)
    h_count = np.bincount(ids_h[hris.valid_email], minlength=distinct)
    duplicated = hris.valid_email & (h_count[ids_h] > 1)
    # Everyone on a row, rejected or not, is still in the file: never deleted (matched by key).
    in_file = np.bincount(ids_h[hris.has_email], minlength=distinct) > 0
    m_rows = np.nonzero(pc.not_equal(members.key, "").to_numpy(zero_copy_only=False))[0]
    first_row = np.full(distinct, -1, np.int64)
    first_row[ids_m[m_rows][::-1]] = m_rows[::-1]  # the first row wins when the export repeats a member
    m_rows = m_rows[first_row[ids_m[m_rows]] == m_rows]
    return Matches(
        ids_m=ids_m, duplicated=duplicated, in_file=in_file, m_rows=m_rows, hub_row=first_row[ids_h]
    )


def _rejected(hris: Hris, matches: Matches) -> np.ndarray:
    """Rejected rows: a missing or invalid email, an email on two rows, or a status other than
    active or inactive. They change no one (and their people are not deleted)."""
    rejected: np.ndarray = ~hris.valid_email | matches.duplicated | (hris.status == BAD_STATUS)
    return rejected


def _rejected_rows(hris: Hris, matches: Matches, rows: np.ndarray) -> pa.Table:
    """Line, email and reason for each rejected row (only these rows are looked at one by one)."""
    lines = hris.table.line_numbers(rows.tolist())
    statuses = (
        hris.raw_status.take(pa.array(rows)).to_pylist() if hris.raw_status is not None else [""] * len(rows)
    )
    reasons = []
    for row, status in zip(rows.tolist(), statuses, strict=True):
        if not hris.has_email[row]:
            reasons.append("missing email")
        elif not hris.valid_email[row]:
            reasons.append("invalid email")
        elif matches.duplicated[row]:
            reasons.append("email appears more than once in the file")
        else:
            reasons.append(f"status '{(status or '').strip().lower()}' is not active or inactive")
    return pa.table(
        {
            "Line": pa.array([lines[r] for r in rows.tolist()], pa.int64()),
            "Email": hris.email.take(pa.array(rows, pa.int64())),
            "Reason": pa.array(reasons, pa.string()),
        }
    ).sort_by("Line")


def _segments(hris: Table, members: Table, mapping: MappingTable, valid: np.ndarray) -> Segments:
    """The data mapping table turns each mapped HRIS field into its 10KC segment; both files' values
    become codes of one vocabulary per segment."""
    names = mapping.segments()
    vocabularies = [Vocabulary() for _ in names]
    h_seg, unmapped_values, missing_columns = _hris_segments(hris, mapping, names, vocabularies, valid)
    return Segments(
        names=names,
        vocabularies=vocabularies,
        hris=h_seg,
        members=_member_segments(members, names, vocabularies),
        unmapped_values=unmapped_values,
        missing_columns=missing_columns,
    )


def _hris_segments(
    hris: Table, mapping: MappingTable, names: list[str], vocabularies: list[Vocabulary], valid: np.ndarray
) -> tuple[list[np.ndarray], list[UnmappedValue], list[str]]:
    """Each row's 10KC values through the table (the first field mapped to a segment wins); a value the
    table does not know changes nothing and is reported with its count of valid rows."""
    h_seg = [np.full(len(valid), -1, np.int64) for _ in names]
    unmapped_values: list[UnmappedValue] = []
    missing_columns: list[str] = []
    for mapped in mapping.fields:
        column = hris.column([header_key(mapped.hris_field)])
        if column is None:
            missing_columns.append(mapped.hris_field)
            continue
        s = names.index(mapped.segment)
        codes = _per_value(column, _translator(mapping.translation(mapped), vocabularies[s]))
        h_seg[s] = np.where(h_seg[s] == -1, codes, h_seg[s])
        unmapped_values += _unmapped(mapped.hris_field, column, (codes == UNKNOWN) & valid)
    return [np.where(codes == UNKNOWN, -1, codes) for codes in h_seg], unmapped_values, missing_columns


def _translator(translation: dict[str, str], vocabulary: Vocabulary) -> Callable[[str], int]:
    """HRIS value -> code of its 10KC value: -1 for a blank cell, UNKNOWN for a value not in the table."""

    def translate(value: str) -> int:
        value = value.strip()
        if not value:
            return -1
        found = translation.get(value.casefold())
        return vocabulary.code(found) if found is not None else UNKNOWN

    return translate


def _unmapped(field: str, column: pa.DictionaryArray, unknown: np.ndarray) -> list[UnmappedValue]:
    """Each value (trimmed) the table has no 10KC value for, with the number of valid rows holding it."""
    if not unknown.any():
        return []
    counts: dict[str, int] = {}
    per_entry = np.bincount(column.indices.to_numpy()[unknown], minlength=len(column.dictionary))
    for entry in np.nonzero(per_entry)[0]:
        value = column.dictionary[int(entry)].as_py().strip()
        counts[value] = counts.get(value, 0) + int(per_entry[entry])
    return [UnmappedValue(field=field, value=v, rows=c) for v, c in counts.items()]


def _member_segments(members: Table, names: list[str], vocabularies: list[Vocabulary]) -> list[np.ndarray]:
    """The members' segment values as codes of the same vocabularies (-1: none)."""
    rows = members.table.num_rows
    codes = []
    for name, vocabulary in zip(names, vocabularies, strict=True):
        column = members.column([header_key(name)])
        if column is None:
            codes.append(np.full(rows, -1, np.int64))
        else:
            codes.append(_per_value(column, _coder(vocabulary)))
    return codes


def _coder(vocabulary: Vocabulary) -> Callable[[str], int]:
    """A member's 10KC value -> its code (a value no file has yet gets a new one); -1 for a blank cell."""

    def code(value: str) -> int:
        return vocabulary.code(value.strip()) if value.strip() else -1

    return code


def _invites(hris: Hris, matches: Matches, segments: Segments, valid: np.ndarray) -> pa.Table:
    """'We'll invite people to 10KC when you add a row in the CSV file': a valid row of someone who is
    not a member, unless inactive. Potential invites: a person decides who is invited."""
    invite = np.nonzero(valid & (matches.hub_row < 0) & (hris.status != INACTIVE))[0]
    invite_idx = pa.array(invite)
    return _sorted_by(
        hris.key.take(invite_idx),
        {
            "Email": hris.email.take(invite_idx),
            "First Name": hris.first.take(invite_idx),
            "Last Name": hris.last.take(invite_idx),
            **{
                name: segments.vocabularies[s].strings(segments.hris[s][invite])
                for s, name in enumerate(segments.names)
            },
        },
    )


def _updates(
    hris: Hris, members: Members, matches: Matches, segments: Segments, valid: np.ndarray
) -> Updates:
    """'We'll update user profiles on 10KC to match the row of data for each user in the latest CSV':
    each member whose valid row differs in status, a name or a 10KC value."""
    hub = np.nonzero(valid & (matches.hub_row >= 0))[0]
    hub_m = matches.hub_row[hub]
    deactivate, reactivate = _status_changes(hris, members, hub, hub_m)
    changed = deactivate | reactivate | _profile_changes(hris, members, segments, hub, hub_m)
    return Updates(
        table=_update_rows(hris, members, segments, hub[changed], hub_m[changed]),
        deactivations=int(deactivate[changed].sum()),
        reactivations=int(reactivate[changed].sum()),
    )


def _status_changes(
    hris: Hris, members: Members, hub: np.ndarray, hub_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """'We will deactivate accounts when status changes to "inactive". We will reactivate accounts if
    the status changes back to "active".' Without a status column, neither."""
    if hris.raw_status is None:
        unchanged = np.zeros(len(hub), bool)
        return unchanged, unchanged
    inactive, deactivated = hris.status[hub] == INACTIVE, members.deactivated[hub_m]
    return inactive & ~deactivated, ~inactive & deactivated


def _profile_changes(
    hris: Hris, members: Members, segments: Segments, hub: np.ndarray, hub_m: np.ndarray
) -> np.ndarray:
    """A name or a 10KC value on the row that differs from the member's; a blank cell (or a value the
    mapping table does not know) changes nothing."""
    changed = np.zeros(len(hub), bool)
    hub_idx, hub_m_idx = pa.array(hub), pa.array(hub_m)
    for h_names, m_names, present in (
        (hris.first, members.first, hris.has_first),
        (hris.last, members.last, hris.has_last),
    ):
        if present:
            mine, theirs = h_names.take(hub_idx), m_names.take(hub_m_idx)
            differs = pc.and_(pc.not_equal(mine, ""), pc.not_equal(mine, theirs))
            changed |= differs.to_numpy(zero_copy_only=False)
    for h_codes, m_codes in zip(segments.hris, segments.members, strict=True):
        mine = h_codes[hub]
        changed |= (mine >= 0) & (mine != m_codes[hub_m])
    return changed


def _update_rows(
    hris: Hris, members: Members, segments: Segments, upd: np.ndarray, upd_m: np.ndarray
) -> pa.Table:
    """Each updated profile as the row has it, the member's own value where the row's cell is blank."""
    upd_idx, upd_m_idx = pa.array(upd), pa.array(upd_m)

    def prefer_hris(h_values: pa.Array, m_values: pa.Array) -> pa.Array:
        mine = h_values.take(upd_idx)
        return pc.if_else(pc.equal(mine, ""), m_values.take(upd_m_idx), mine)

    inactive = hris.status[upd] == INACTIVE if hris.raw_status is not None else members.deactivated[upd_m]
    return _sorted_by(
        hris.key.take(upd_idx),
        {
            "Email": members.email.take(upd_m_idx),
            "First Name": prefer_hris(hris.first, members.first),
            "Last Name": prefer_hris(hris.last, members.last),
            "Employee Status": pc.if_else(pa.array(inactive), "inactive", "active"),
            **{
                name: segments.vocabularies[s].strings(
                    np.where(segments.hris[s][upd] >= 0, segments.hris[s][upd], segments.members[s][upd_m])
                )
                for s, name in enumerate(segments.names)
            },
        },
    )


def _deletions(hris: Hris, members: Members, matches: Matches) -> pa.Table:
    """'We'll remove accounts from the 10KC platform when you delete rows in the latest CSV file': each
    member on no row. A row whose email is missing or invalid still names its person by first and last
    name, who is kept."""
    gone = matches.m_rows[~matches.in_file[matches.ids_m[matches.m_rows]]]
    unkeyed = pa.array(np.nonzero(~hris.valid_email)[0])
    names = set(_names(hris.first.take(unkeyed), hris.last.take(unkeyed))) - {None}
    if names and len(gone):
        named = _names(members.first.take(pa.array(gone)), members.last.take(pa.array(gone)))
        gone = gone[np.array([name not in names for name in named], bool)]
    gone_idx = pa.array(gone)
    return _sorted_by(
        members.key.take(gone_idx),
        {
            "Email": members.email.take(gone_idx),
            "First Name": members.first.take(gone_idx),
            "Last Name": members.last.take(gone_idx),
        },
    )


def _deletion_guard(
    deletions: int, members: int, max_deletion_pct: float, allow_mass_deletion: bool
) -> DeletionGuard:
    """More than 10 deletions and over `max_deletion_pct` of the members stops the run for a person
    to look (the files are still written), unless allowed."""
    deletion_pct = round(100 * deletions / members, 2) if members else 0.0
    tripped = deletions > 10 and deletion_pct > max_deletion_pct
    return DeletionGuard(
        tripped=tripped,
        allowed=bool(tripped and allow_mass_deletion),
        max_deletion_pct=max_deletion_pct,
        deletions=deletions,
        members=members,
        deletion_pct=deletion_pct,
    )


def _summary(
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
        rows=len(hris.key),
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


def use_jemalloc() -> None:
    """Allocate arrow memory with jemalloc for this process: on a 1M-row upload ~0.7 s less system
    time and a ~70 MiB lower peak than the default mimalloc (docs/performance.md)."""
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without it (Windows): the default pool is fine
        pass


def _write_atomically(out_dir: Path, tables: dict[str, pa.Table], summary: Summary, hub_copies: bool) -> None:
    """Write into a hidden folder beside the outputs, then rename each file into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".generating-", dir=out_dir))
    try:
        for name, table in tables.items():
            _write_csv(table, staging / name)
        (staging / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if hub_copies:
            (out_dir / HUB_API_DIR).mkdir(exist_ok=True)
            for name in HUB_FILES:
                _write_csv(tables[name], staging / name.replace(".csv", ".raw"), escape=False)
                os.replace(staging / name.replace(".csv", ".raw"), out_dir / HUB_API_DIR / name)
        for name in OUTPUT_FILES:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
