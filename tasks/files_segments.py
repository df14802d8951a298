"""The file engine's mapped values: each HRIS field through the data mapping table to its 10KC segment.

Both files' values of a segment become integer codes of one vocabulary, so HRIS and hub values
compare as numbers; each distinct value is translated once. A value the table does not know changes
nothing and is reported (with its count of valid rows) in the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.files_read import per_value
from tasks.mapping_table import MappingTable
from tasks.tabular import Table, header_key

UNKNOWN = -2  # the code of an HRIS value the mapping table does not know (-1: no value)


class UnmappedValue(TypedDict):
    field: str
    value: str
    rows: int


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


@dataclass
class Segments:
    """Each 10KC segment's value as a code per row (-1: none) in the HRIS file and the member export."""

    names: list[str]
    vocabularies: list[Vocabulary]
    hris: list[np.ndarray]
    members: list[np.ndarray]
    unmapped_values: list[UnmappedValue]
    missing_columns: list[str]
    # Per mapped field read: its column and which rows hold a value the table does not know.
    unknown: list[tuple[str, pa.DictionaryArray, np.ndarray]] = field(default_factory=list)

    def count_unmapped(self, valid: np.ndarray) -> None:
        """Report each value the table does not know with its count of valid rows (known only once
        the rules have found the rejected rows, so the codes can be made before)."""
        self.unmapped_values = [
            value
            for name, column, unknown in self.unknown
            for value in _unmapped(name, column, unknown & valid)
        ]


def segment_codes(hris: Table, members: Table, mapping: MappingTable) -> Segments:
    """The data mapping table turns each mapped HRIS field into its 10KC segment; both files' values
    become codes of one vocabulary per segment. Needs no rule's outcome: it runs beside the match."""
    names = mapping.segments()
    vocabularies = [Vocabulary() for _ in names]
    h_seg, unknown, missing_columns = _hris_segments(hris, mapping, names, vocabularies)
    return Segments(
        names=names,
        vocabularies=vocabularies,
        hris=h_seg,
        members=_member_segments(members, names, vocabularies),
        unmapped_values=[],
        missing_columns=missing_columns,
        unknown=unknown,
    )


def _hris_segments(
    hris: Table, mapping: MappingTable, names: list[str], vocabularies: list[Vocabulary]
) -> tuple[list[np.ndarray], list[tuple[str, pa.DictionaryArray, np.ndarray]], list[str]]:
    """Each row's 10KC values through the table (the first field mapped to a segment wins); a value the
    table does not know changes nothing (its rows are returned, to be reported)."""
    h_seg = [np.full(hris.table.num_rows, -1, np.int64) for _ in names]
    unknown: list[tuple[str, pa.DictionaryArray, np.ndarray]] = []
    missing_columns: list[str] = []
    for mapped in mapping.fields:
        column = hris.column([header_key(mapped.hris_field)])
        if column is None:
            missing_columns.append(mapped.hris_field)
            continue
        s = names.index(mapped.segment)
        codes = per_value(column, _translator(mapping.translation(mapped), vocabularies[s]))
        h_seg[s] = np.where(h_seg[s] == -1, codes, h_seg[s])
        unknown.append((mapped.hris_field, column, codes == UNKNOWN))
    return [np.where(codes == UNKNOWN, -1, codes) for codes in h_seg], unknown, missing_columns


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
            codes.append(per_value(column, _coder(vocabulary)))
    return codes


def _coder(vocabulary: Vocabulary) -> Callable[[str], int]:
    """A member's 10KC value -> its code (a value no file has yet gets a new one); -1 for a blank cell."""

    def code(value: str) -> int:
        return vocabulary.code(value.strip()) if value.strip() else -1

    return code
