"""The data mapping table read and checked: what the runbook needs from it, and a run's one reading.

The table and its parsing are in tasks/mapping_table.py, Google Sheets links and reading in
tasks/mapping_sheets.py; every name of both is imported from here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

from tasks.mapping_sheets import (
    MappingLink,
    SheetsCredentials,
    SheetsError,
    parse_mapping_link,
    read_mapping_sheet,
    sheet_range,
    sheet_too_big,
    spreadsheet_key,
)
from tasks.mapping_table import (
    COLUMNS,
    LABEL,
    VISIBILITIES,
    MappedField,
    MappedValue,
    MappingTable,
    parse_rows,
    read_mapping_file,
)
from tasks.tabular import InputError

if TYPE_CHECKING:
    from prefect import Task

__all__ = [
    "COLUMNS",
    "LABEL",
    "VISIBILITIES",
    "Finding",
    "MappedField",
    "MappedValue",
    "MappingCheck",
    "MappingLink",
    "MappingTable",
    "SheetsCredentials",
    "SheetsError",
    "ValidationReport",
    "parse_mapping_link",
    "parse_rows",
    "read_mapping",
    "read_mapping_file",
    "read_mapping_sheet",
    "sheet_range",
    "sheet_too_big",
    "spreadsheet_key",
    "validate_mapping",
]

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
        _check_visibility(mapped, error)
        if not mapped.category:
            warning(f"Row {mapped.row}: the field '{name}' has no category in column A.")
        _check_repeated_values(mapped, error)
        other = segment_sources.get(mapped.segment.casefold())
        if other is not None:
            error(
                f"Row {mapped.row}: the 10KC segment '{mapped.segment}' is mapped from both "
                f"'{other.hris_field}' (row {other.row}) and '{name}'; map each segment from one HRIS field."
            )
        else:
            segment_sources[mapped.segment.casefold()] = mapped
    return ValidationReport(table.source, findings)


def _check_visibility(mapped: MappedField, error: Callable[[str], None]) -> None:
    """The field says Public or Private in column G, and none of its values says otherwise."""
    name = mapped.hris_field
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


def _check_repeated_values(mapped: MappedField, error: Callable[[str], None]) -> None:
    """No HRIS value twice under one field (trimmed, case-insensitively)."""
    seen: dict[str, MappedValue] = {}
    for value in mapped.values:
        folded = value.hris_value.strip().casefold()
        if folded in seen:
            error(
                f"Rows {seen[folded].row} and {value.row}: the value '{value.hris_value}' appears twice "
                f"under '{mapped.hris_field}'."
            )
        else:
            seen[folded] = value


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
