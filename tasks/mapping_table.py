"""The data mapping table itself: how the customer's HRIS fields and values become 10KC segments.

Columns A–G: Category, HRIS Field, HRIS Values, Notes, 10KC Segment, 10KC Value, Visibility. They
are found by header name, falling back to the letters. One row per HRIS value; a blank B continues
the field above (a merged cell, exported); a blank E means segment = B; a blank F means value = C.
G must say Public or Private for every field: a blank or anything else is an error, never "public".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tasks.tabular import InputError, SheetRows, header_key, read_sheet_rows

LABEL = "mapping table"
COLUMNS = {
    "category": (0, {"category"}),
    "field": (1, {"hris field", "hris fields", "hris field name", "field"}),
    "value": (2, {"hris values", "hris value", "values", "value"}),
    "notes": (3, {"notes", "note", "comments"}),
    "segment": (4, {"10kc segment", "10kc segments", "segment"}),
    "tenkc_value": (5, {"10kc value", "10kc values"}),
    "visibility": (6, {"visibility", "public/private", "public or private"}),
}


VISIBILITIES = ("public", "private")


@dataclass(frozen=True)
class MappedValue:
    hris_value: str
    tenkc_value: str
    row: int  # the table's row number (1 = first row of the sheet)
    visibility: str = ""  # this row's own Visibility cell (blank on a merged cell's later rows)


@dataclass
class MappedField:
    hris_field: str
    segment: str
    visibility: str
    category: str
    row: int
    values: list[MappedValue] = field(default_factory=list)

    def segment_visibility(self) -> str:
        """public or private; anything else is refused, so a mistyped or blank cell never publishes."""
        visibility = self.visibility.strip().casefold()
        if visibility not in VISIBILITIES:
            raise ValueError(
                f"Row {self.row}: the field '{self.hris_field}' has visibility '{self.visibility}'; "
                "the table must say Public or Private before segments are made from it"
            )
        return visibility


@dataclass
class MappingTable:
    """The parsed table; `orphan_values` are values with no field above them (a validation error)."""

    source: str
    fields: list[MappedField]
    orphan_values: list[MappedValue] = field(default_factory=list)

    def segments(self) -> list[str]:
        """10KC segment names in table order, each once."""
        return list(dict.fromkeys(f.segment for f in self.fields))

    def translation(self, hris_field: MappedField) -> dict[str, str]:
        """HRIS value (trimmed, case-folded) -> 10KC value for one field."""
        return {v.hris_value.strip().casefold(): v.tenkc_value for v in hris_field.values}


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _find_header(rows: list[list[str]]) -> tuple[int, dict[str, int]]:
    """The header row (within the first ten) and the column index of each part."""
    for number, row in enumerate(rows[:10]):
        keys = [header_key(c) for c in row]
        found = {
            part: keys.index(name) for part, (_, names) in COLUMNS.items() for name in names if name in keys
        }
        if "field" in found and "value" in found:
            letters = {part: letter for part, (letter, _) in COLUMNS.items()}
            return number, {part: found.get(part, letters[part]) for part in COLUMNS}
    return 0, {part: letter for part, (letter, _) in COLUMNS.items()}


def parse_rows(rows: SheetRows, source: str) -> MappingTable:
    """Build the table from a sheet's rows (header included), from a file or from Google Sheets."""
    cells = [[_cell(c) for c in row] for row in rows]
    if not any(any(row) for row in cells):
        raise InputError(LABEL, source, "the table is empty")
    header_row, at = _find_header(cells)
    width = max(len(r) for r in cells)
    if width <= max(at["field"], at["value"]):
        raise InputError(
            LABEL,
            source,
            "no 'HRIS Field' (column B) and 'HRIS Values' (column C) columns; expected columns A–G",
        )

    def get(row: list[str], part: str) -> str:
        index = at[part]
        return row[index] if index < len(row) else ""

    fields: dict[str, MappedField] = {}
    orphans: list[MappedValue] = []
    current: MappedField | None = None
    for number, row in enumerate(cells[header_row + 1 :], start=header_row + 2):
        if not any(row):
            continue
        name = get(row, "field")
        if name:
            current = fields.get(header_key(name))
            if current is None:
                current = MappedField(
                    hris_field=name,
                    segment=get(row, "segment") or name,
                    visibility=get(row, "visibility"),
                    category=get(row, "category"),
                    row=number,
                )
                fields[header_key(name)] = current
        hris_value = get(row, "value")
        if not hris_value:
            continue
        value = MappedValue(hris_value, get(row, "tenkc_value") or hris_value, number, get(row, "visibility"))
        if current is None:
            orphans.append(value)
            continue
        current.values.append(value)
        if not current.visibility and get(row, "visibility").casefold() in VISIBILITIES:
            current.visibility = get(row, "visibility")  # a merged G cell whose value sits lower down
    return MappingTable(source=source, fields=list(fields.values()), orphan_values=orphans)


def read_mapping_file(path: Path | str) -> MappingTable:
    """Read the table from a CSV export or an .xlsx workbook (its first sheet)."""
    return parse_rows(read_sheet_rows(LABEL, path), Path(path).name)
