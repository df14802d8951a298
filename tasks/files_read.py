"""The file engine's first stage: both files read and every person keyed by email.

The HRIS upload and the hub's member export are read with only the columns the engine uses
(statuses and mapped fields dictionary-encoded, so each distinct value is handled once); emails are
hashed once, in one dictionary shared by both files, so people compare as numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.addresses import address_keys
from tasks.mapping_table import MappingTable
from tasks.tabular import InputError, Table, header_key, read_csv

EMAIL_ALIASES = ["email", "work email", "email address", "e-mail"]
FIRST_NAME_ALIASES = ["first name"]
LAST_NAME_ALIASES = ["last name"]
STATUS_ALIASES = ["employee status", "status"]
ACTIVE, INACTIVE, BAD_STATUS = 0, 1, 2


def per_value(column: pa.DictionaryArray, convert: Callable[[str], int]) -> np.ndarray:
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


def hris_columns(mapping: MappingTable) -> list[str]:
    """The HRIS columns the engine reads (header keys): identity, status and every mapped field."""
    mapped_keys = [header_key(f.hris_field) for f in mapping.fields]
    return [*EMAIL_ALIASES, *FIRST_NAME_ALIASES, *LAST_NAME_ALIASES, *STATUS_ALIASES, *mapped_keys]


def read_hris(path: Path | str, mapping: MappingTable) -> Hris:
    """Read and key the HRIS file: 'each line in the file will represent one member's profile', found
    by its email (a row without a valid one is rejected later)."""
    mapped_keys = [header_key(f.hris_field) for f in mapping.fields]
    table = read_csv(
        "HRIS upload", path, wanted=hris_columns(mapping), categorical=[*STATUS_ALIASES, *mapped_keys]
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
        status=per_value(raw_status, _status_code) if raw_status is not None else np.zeros(rows, np.int64),
    )


def _status_code(value: str) -> int:
    """'We expect the values "active" or "inactive"' (a blank cell is active)."""
    v = value.strip().lower()
    return ACTIVE if v in ("", "active") else INACTIVE if v == "inactive" else BAD_STATUS


def read_members(path: Path | str, mapping: MappingTable) -> Members:
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
    key, _ = address_keys(email, validate=False)
    status = table.column(["status"])
    deactivated = (
        per_value(status, lambda v: int(v.strip().lower() in ("deactivated", "inactive")))
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


def match(hris: Hris, members: Members) -> Matches:
    """Number every email of both files once, so people compare as numbers: who is on two rows, who
    is on any row, and which member each row is."""
    encoded = pc.dictionary_encode(pa.chunked_array([hris.key, members.key], pa.string())).chunks
    ids = np.concatenate([chunk.indices.to_numpy() for chunk in encoded] + [np.zeros(0, np.int32)])
    distinct = len(encoded[-1].dictionary) if encoded else 0  # each chunk's: the distinct values so far
    del encoded  # the dictionaries (~250 MiB at 5M rows) are not needed past here
    ids_h, ids_m = ids[: len(hris.key)], ids[len(hris.key) :]
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
