"""The data mapping table: how the customer's HRIS fields and values become 10KC segments.

Columns A–G: Category, HRIS Field, HRIS Values, Notes, 10KC Segment, 10KC Value, Visibility. They
are found by header name, falling back to the letters. One row per HRIS value; a blank B continues
the field above (a merged cell, exported); a blank E means segment = B; a blank F means value = C.
G must say Public or Private for every field: a blank or anything else is an error, never "public".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

from tasks.tabular import (
    SHEET_MAX_BYTES,
    SHEET_MAX_COLUMNS,
    SHEET_MAX_ROWS,
    SHEET_TOO_BIG,
    InputError,
    SheetRows,
    header_key,
    read_sheet_rows,
)

if TYPE_CHECKING:
    import gspread
    from prefect import Task

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


# --- Google Sheets ------------------------------------------------------------------------------


class SheetsError(RuntimeError):
    """The mapping sheet could not be read for a reason a person can fix; the message says how."""


_SHEET_KEY = r"[a-zA-Z0-9_-]{10,}"


class SheetsCredentials(Protocol):
    """What reading a sheet needs of the GoogleSheetsCredentials block (blocks/google_sheets.py)."""

    @property
    def client_email(self) -> str: ...

    def get_client(self) -> gspread.Client: ...


@dataclass(frozen=True)
class MappingLink:
    """Where a data mapping table is: a Google Sheet (`sheet_key`) or a CSV/XLSX file on the worker."""

    link: str  # as given, trimmed: what is registered and shown
    sheet_key: str | None  # None: a file path


def parse_mapping_link(link: str) -> MappingLink:
    """The one reading of a mapping link (check-mapping, the mapping-table form, the registration,
    every upload): a Google Sheets link or a bare spreadsheet key, spaces around or not; anything
    else (a path with a `/` or an extension) is a file on the worker."""
    value = link.strip()
    if not value:
        raise SheetsError("no data mapping table link given")
    if value.lower().startswith(("https://", "http://")) or re.fullmatch(_SHEET_KEY, value):
        return MappingLink(value, spreadsheet_key(value))
    return MappingLink(value, None)


def spreadsheet_key(url_or_key: str) -> str:
    """The spreadsheet key from a Google Sheets link (…/spreadsheets/d/<key>/edit…) or the key itself."""
    value = url_or_key.strip()
    found = re.search(r"/spreadsheets/d/([a-zA-Z0-9_-]+)", value)
    if found:
        return found.group(1)
    if re.fullmatch(_SHEET_KEY, value):
        return value
    raise SheetsError(f"{url_or_key!r} is not a Google Sheets link or spreadsheet key")


def sheet_range() -> str:
    """One row and one column past the caps (A1:AY10001): what is beyond them is never fetched."""
    from openpyxl.utils import get_column_letter

    return f"A1:{get_column_letter(SHEET_MAX_COLUMNS + 1)}{SHEET_MAX_ROWS + 1}"


def read_mapping_sheet(credentials: SheetsCredentials, url_or_key: str) -> MappingTable:
    """Read the table from Google Sheets: the worksheet whose name mentions 'mapping', else the first."""
    from google.auth.exceptions import GoogleAuthError
    from gspread.exceptions import APIError, SpreadsheetNotFound
    from requests import RequestException

    key = spreadsheet_key(url_or_key)
    client = credentials.get_client()
    try:
        spreadsheet = client.open_by_key(key)
        worksheets = spreadsheet.worksheets()
        sheet = next((w for w in worksheets if "mapping" in w.title.lower()), worksheets[0])
        rows = sheet.get_values(sheet_range())  # bounded: one row and one column past the caps
    except SpreadsheetNotFound:
        raise SheetsError(f"no Google Sheet with key {key}: check the link") from None
    except PermissionError:
        raise SheetsError(
            f"the sheet {key} is not shared with {credentials.client_email}: share it with that address "
            "(Viewer is enough), then answer the form again"
        ) from None
    except APIError as exc:
        if exc.code == 429:
            raise SheetsError("Google Sheets is rate-limiting us; try again in a minute") from None
        raise SheetsError(
            f"Google Sheets answered {exc.code} for sheet {key}: {exc.error.get('message', '')}"
        ) from None
    except (GoogleAuthError, RequestException) as exc:
        raise SheetsError(f"could not reach Google Sheets for sheet {key} ({type(exc).__name__})") from None
    where = f"Google Sheet {spreadsheet.title!r} / {sheet.title!r}"
    if problem := sheet_too_big(rows):
        raise SheetsError(f"{where}: {problem}")
    return parse_rows(rows, where)


def sheet_too_big(rows: SheetRows) -> str | None:
    """The xlsx path's caps for a sheet's values: rows, columns and bytes of text."""
    if len(rows) > SHEET_MAX_ROWS or any(
        any(str(v).strip() for v in row[SHEET_MAX_COLUMNS:]) for row in rows
    ):
        return f"the sheet is larger than a mapping table; {SHEET_TOO_BIG}"
    if sum(len(str(v).encode()) for row in rows for v in row) > SHEET_MAX_BYTES:
        return f"the sheet holds over {SHEET_MAX_BYTES >> 20} MB of text; a mapping table is far smaller"
    return None


# --- validation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" stops the step; "warning" is shown and the run goes on
    message: str


@dataclass
class ValidationReport:
    source: str
    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def markdown(self) -> str:
        """A report a CSM can forward to the customer as it is."""
        lines = [f"**Data mapping table check: {self.source}**", ""]
        if not self.findings:
            return "\n".join([*lines, "No problems found."]) + "\n"
        if self.errors:
            lines += [
                "Please fix these before we can continue:",
                *[f"- {f.message}" for f in self.errors],
                "",
            ]
        if self.warnings:
            lines += ["Worth a look (we can continue):", *[f"- {f.message}" for f in self.warnings], ""]
        return "\n".join(lines)


def validate_mapping(table: MappingTable) -> ValidationReport:
    """Check what the runbook needs from the table: every field has values and a visibility, no value
    twice under a field, no value without a field, and each 10KC segment fed by one HRIS field."""
    findings: list[Finding] = []

    def error(message: str) -> None:
        findings.append(Finding("error", message))

    def warning(message: str) -> None:
        findings.append(Finding("warning", message))

    if not table.fields:
        error("The table has no HRIS fields in column B.")
    for value in table.orphan_values:
        error(f"Row {value.row}: the value '{value.hris_value}' has no HRIS field above it in column B.")
    segment_sources: dict[str, MappedField] = {}
    for mapped in table.fields:
        name = mapped.hris_field
        if not mapped.values:
            error(f"Row {mapped.row}: the field '{name}' has no values in column C.")
        elif len(mapped.values) == 1:
            warning(f"Row {mapped.row}: the field '{name}' has only one value; is the list complete?")
        visibility = mapped.visibility.strip().casefold()
        if not visibility:
            error(f"Row {mapped.row}: the field '{name}' needs Public or Private in column G.")
        elif visibility not in VISIBILITIES:
            error(
                f"Row {mapped.row}: the field '{name}' has visibility '{mapped.visibility}'; "
                "use Public or Private."
            )
        for value in mapped.values:
            own = value.visibility.strip().casefold()
            if value.row == mapped.row or not own or own == visibility:
                continue
            if own not in VISIBILITIES:
                error(
                    f"Row {value.row}: the value '{value.hris_value}' under '{name}' has visibility "
                    f"'{value.visibility}'; use Public or Private."
                )
            elif visibility in VISIBILITIES:
                error(
                    f"Row {value.row}: the value '{value.hris_value}' says {value.visibility} but its "
                    f"field '{name}' (row {mapped.row}) says {mapped.visibility}; a segment is all "
                    "public or all private."
                )
        if not mapped.category:
            warning(f"Row {mapped.row}: the field '{name}' has no category in column A.")
        seen: dict[str, MappedValue] = {}
        for value in mapped.values:
            folded = value.hris_value.strip().casefold()
            if folded in seen:
                error(
                    f"Rows {seen[folded].row} and {value.row}: the value '{value.hris_value}' appears twice "
                    f"under '{name}'."
                )
            else:
                seen[folded] = value
        other = segment_sources.get(mapped.segment.casefold())
        if other is not None:
            error(
                f"Row {mapped.row}: the 10KC segment '{mapped.segment}' is mapped from both "
                f"'{other.hris_field}' (row {other.row}) and '{name}'; map each segment from one HRIS field."
            )
        else:
            segment_sources[mapped.segment.casefold()] = mapped
    return ValidationReport(table.source, findings)


# --- tasks ----------------------------------------------------------------------------------------


class MappingCheck(BaseModel):
    """A table as read at one point of a run, with its validation report (kept for re-execution)."""

    model_config = {"arbitrary_types_allowed": True}

    table: MappingTable
    report: ValidationReport
    problem: str | None = None  # could not be read at all (not shared, not found…)


def read_mapping(link: str, credentials: SheetsCredentials | None = None) -> MappingTable:
    """The table behind a link (parse_mapping_link). With `credentials` (a form asking for a sheet) only
    a Google Sheet is read, never a file on the worker."""
    source = parse_mapping_link(link)
    if source.sheet_key is None:
        if credentials is not None:
            raise SheetsError(f"{link!r} is not a Google Sheets link or spreadsheet key")
        return read_mapping_file(source.link)
    if credentials is None:
        raise SheetsError(f"{source.link!r} is a Google Sheet: reading it needs the Sheets credentials")
    return read_mapping_sheet(credentials, source.sheet_key)


def _read_and_check_mapping(credentials: SheetsCredentials | None, link: str, once_key: str) -> MappingCheck:
    """Read and validate the table once per `once_key`, so a resumed run sees the same table."""
    from prefect import get_run_logger

    try:
        table = read_mapping(link, credentials)
    except (SheetsError, InputError) as exc:
        empty = MappingTable(source=link, fields=[])
        return MappingCheck(table=empty, report=ValidationReport(link, []), problem=str(exc))
    report = validate_mapping(table)
    get_run_logger().info(
        "Mapping table: %d field(s), %d error(s), %d warning(s)",
        len(table.fields),
        len(report.errors),
        len(report.warnings),
    )
    return MappingCheck(table=table, report=report)


def __getattr__(name: str) -> Task[[SheetsCredentials | None, str, str], MappingCheck]:
    """`read_and_check_mapping` (a Prefect task) is made on first use, so the file engine and the CLI
    read mapping tables without importing Prefect (about a second)."""
    if name == "read_and_check_mapping":
        from tasks.once import once_task

        made = once_task("read-mapping-table")(_read_and_check_mapping)
        globals()[name] = made
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
