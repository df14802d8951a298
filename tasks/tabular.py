"""Reading the tables customers send us: any common encoding, delimiter and line ending, fast.

Every problem becomes an `InputError` that names the file and says what is wrong in one line,
without quoting row contents (they hold people's names and emails).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.csv_lines import (
    FIELD_LIMIT,
    SCAN_BYTES,
    count_lines,
    newlines_per_row,
    record_start_lines,
    records_with_lines,
)

if TYPE_CHECKING:  # imported where a file is read: a flow that reads no table never loads them
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

# Line numbering lives in tasks/csv_lines.py; its names are imported from here too.
__all__ = [
    "DELIMITERS",
    "FIELD_LIMIT",
    "HEAD_BYTES",
    "SCAN_BYTES",
    "SHEET_MAX_BYTES",
    "SHEET_MAX_COLUMNS",
    "SHEET_MAX_ROWS",
    "SHEET_TOO_BIG",
    "UTF16_BOMS",
    "InputError",
    "SheetRows",
    "Table",
    "detect_delimiter",
    "detect_encoding",
    "header_key",
    "read_bytes",
    "read_csv",
    "read_header",
    "read_sheet_rows",
    "record_start_lines",
    "records_with_lines",
]

DELIMITERS = [",", ";", "\t", "|"]
HEAD_BYTES = 1 << 20  # enough to sniff encoding, delimiter and header; the rest is read by pyarrow
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # Excel's "Unicode Text" (tab-delimited)
# A data mapping table is a few hundred rows of columns A–G; a sheet far bigger is a mistake, and
# reading it cell by cell would take minutes (openpyxl pads every row to the sheet's width).
SHEET_MAX_ROWS = 10_000
SHEET_MAX_COLUMNS = 50
SHEET_MAX_BYTES = 20 << 20
SHEET_TOO_BIG = (
    f"a mapping table has at most {SHEET_MAX_ROWS:,} rows and {SHEET_MAX_COLUMNS} columns; delete what "
    "is below and right of the table (or copy the table into a new workbook) and send it again"
)
# A sheet's rows as read: text from a CSV or Google Sheets; numbers, dates or None from an .xlsx.
SheetRows = Sequence[Sequence[object]]
_SIGNATURES = {
    b"\x1f\x8b": "a gzip archive",
    b"PK\x03\x04": "a zip archive or an .xlsx spreadsheet",
    b"\xd0\xcf\x11\xe0": "an .xls spreadsheet",
    b"%PDF": "a PDF",
}


class InputError(ValueError):
    """A file we were given cannot be used; the message names the file and the problem."""

    def __init__(self, label: str, path: Path | str, problem: str):
        super().__init__(f"{label} ({Path(path).name}): {problem}")
        self.label, self.path, self.problem = label, Path(path), problem


def read_bytes(label: str, path: Path | str, limit: int | None = None) -> bytes:
    """The file's bytes (the first `limit` of them), refusing a missing, empty or binary file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(label, path, "file not found")
    with path.open("rb") as f:
        data = f.read(-1 if limit is None else limit)
    if not data.strip():
        raise InputError(label, path, "the file is empty")
    for signature, kind in _SIGNATURES.items():
        if data.startswith(signature):
            raise InputError(label, path, f"this is {kind}, not a text CSV file")
    if data.startswith(UTF16_BOMS):
        if not data.decode("utf-16", errors="replace").strip():
            raise InputError(label, path, "the file is empty")
    elif b"\x00" in data[:65536]:
        raise InputError(label, path, "this is a binary file, not a text CSV file")
    return data


def detect_encoding(data: bytes) -> str:
    """utf-16 or utf-8-sig for a BOM, utf-8 when the start decodes, otherwise Windows-1252."""
    if data.startswith(UTF16_BOMS):
        return "utf-16"
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data[:HEAD_BYTES].decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= min(len(data), HEAD_BYTES) - 4:  # a multi-byte character cut at the sample's end
            return "utf-8"
        return "cp1252"


def detect_delimiter(header_text: str) -> str:
    """The delimiter that splits the header line into the most fields (outside quotes)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    in_quotes = False
    for char in header_text:
        if char == '"':
            in_quotes = not in_quotes
        elif char == "\n" and not in_quotes:
            break
        elif not in_quotes and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass
class Table:
    """A CSV read as strings: `columns` maps the header as written to the arrow column."""

    label: str
    path: Path
    encoding: str
    delimiter: str
    header: list[str]
    table: pa.Table
    header_lines: int = 1  # lines the header row spans (a quoted header name can hold a newline)

    def column(self, aliases: Iterable[str]) -> pa.Array | None:
        """The first column whose header matches one of the aliases (in alias order), as one array."""
        import pyarrow as pa

        by_key: dict[str, str] = {}
        for i, header in enumerate(self.header):
            by_key.setdefault(header_key(header), f"c{i}")
        for alias in aliases:
            name = by_key.get(alias)
            if name is not None and name in self.table.column_names:
                column = self.table[name]
                if pa.types.is_dictionary(column.type):
                    column = column.unify_dictionaries()
                return column.combine_chunks()
        return None

    def line_numbers(self, row_indexes: Iterable[int]) -> dict[int, int]:
        """The file line on which each given data row starts (1 = the header line).

        Cheapest first: from the newlines inside the values read; else a vectorised scan of the
        file's quotes and newlines; else, when a quote defeats that scan, the csv module.
        """
        wanted = sorted(set(row_indexes))
        if not wanted:
            return {}
        lines = self.row_lines
        if lines is not None:
            return {i: int(lines[i]) for i in wanted}
        found: dict[int, int] = {}
        targets = iter(wanted)
        target: int | None = next(targets)
        data = self.path.read_bytes()
        for index, (line, _record) in enumerate(records_with_lines(data, self.encoding, self.delimiter)):
            if index == target:
                found[index] = line
                target = next(targets, None)
                if target is None:
                    break
        return found

    @cached_property
    def row_lines(self) -> np.ndarray | None:
        """Every data row's first line, by the vectorised ways; None when only the csv module can
        tell. Kept once made: the engine makes it beside the match when a row is already rejected."""
        lines = self._lines_from_values()
        if lines is None:
            starts = record_start_lines(self.path, self.encoding, self.delimiter)
            if starts is not None and len(starts) == self.table.num_rows + 1:
                lines = starts[1:]
        return lines

    def _lines_from_values(self) -> np.ndarray | None:
        """Each row's line from the newlines inside the values before it, when those and one line per
        record add up to the file's lines (so no blank line, no newline in a column not read)."""
        import numpy as np

        file_lines = count_lines(self.path, self.encoding)
        if file_lines is None:
            return None
        rows: int = self.table.num_rows
        inside: np.ndarray | None = None  # newlines inside each row's values; None: there are none
        for column in self.table.columns:
            counts = newlines_per_row(column)
            if counts is not None:
                inside = counts if inside is None else inside + counts
        if self.header_lines + rows + (0 if inside is None else int(inside.sum())) != file_lines:
            return None
        lines: np.ndarray = np.arange(self.header_lines + 1, self.header_lines + 1 + rows)
        if inside is not None:
            lines += np.cumsum(inside) - inside
        return lines


def header_key(name: str) -> str:
    """Header names match trimmed and case-insensitively."""
    return " ".join(name.strip().split()).casefold()


def read_header(label: str, path: Path | str) -> list[str]:
    """The header row's names as written (trimmed), from the file's first MiB only."""
    _, _, header, _ = _sniff(label, Path(path))
    return header


def read_csv(
    label: str, path: Path | str, wanted: Iterable[str] | None = None, categorical: Iterable[str] = ()
) -> Table:
    """Read a CSV with every column as text; `wanted` (header keys) limits which columns are parsed.

    Columns named in `categorical` (header keys: statuses, departments…) are read dictionary-encoded,
    so work on them is done once per distinct value rather than once per row.
    """
    import pyarrow as pa

    path = Path(path)
    encoding, delimiter, header, header_lines = _sniff(label, path)
    names = [f"c{i}" for i in range(len(header))]
    wanted_keys = set(wanted) if wanted is not None else None
    include = [
        n for n, h in zip(names, header, strict=True) if wanted_keys is None or header_key(h) in wanted_keys
    ]
    categorical_keys = set(categorical)
    types = {
        n: pa.dictionary(pa.int32(), pa.string()) if header_key(h) in categorical_keys else pa.string()
        for n, h in zip(names, header, strict=True)
    }
    bad_rows: list[tuple[int | None, int, int]] = []

    def parse(encoding: str) -> pa.Table:
        return _arrow_read(path, names, include, types, delimiter, encoding, bad_rows)

    table, encoding = _read_rows(label, path, parse, encoding, bad_rows)
    if bad_rows:
        raise _bad_rows_error(label, path, bad_rows, encoding, delimiter)
    return Table(label, path, encoding, delimiter, header, table, header_lines=header_lines)


def _sniff(label: str, path: Path) -> tuple[str, str, list[str], int]:
    """Encoding, delimiter and header (trimmed) from the file's first MiB, and the lines the header
    row spans."""
    data = read_bytes(label, path, limit=HEAD_BYTES)
    encoding = detect_encoding(data)
    head = data[:262_144].decode(encoding, errors="replace").lstrip("\ufeff")
    delimiter = detect_delimiter(head)
    csv.field_size_limit(FIELD_LIMIT)
    reader = csv.reader(io.StringIO(head, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise InputError(label, path, "no header row") from None
    return encoding, delimiter, [h.strip() for h in header], reader.line_num


def _arrow_read(
    path: Path,
    names: list[str],
    include: list[str],
    types: dict[str, pa.DataType],
    delimiter: str,
    encoding: str,
    bad_rows: list[tuple[int | None, int, int]],
) -> pa.Table:
    """pyarrow's parse of the whole file, rows with the wrong number of fields noted in `bad_rows`."""
    import pyarrow.csv as pacsv

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        bad_rows.append((row.number, row.expected_columns, row.actual_columns))
        return "skip"

    return pacsv.read_csv(
        str(path),
        read_options=pacsv.ReadOptions(
            column_names=names,
            skip_rows=1,
            encoding="utf8" if encoding.startswith("utf-8") else encoding,
            block_size=16 << 20,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid_row
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=include,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
        ),
    )


def _read_rows(
    label: str,
    path: Path,
    parse: Callable[[str], pa.Table],
    encoding: str,
    bad_rows: list[tuple[int | None, int, int]],
) -> tuple[pa.Table, str]:
    """The parsed rows and the encoding they were read in (Windows-1252 when UTF-8 fails further on)."""
    import pyarrow as pa

    try:
        try:
            table = parse(encoding)
        except pa.ArrowInvalid as exc:
            if "UTF8" not in str(exc) or encoding == "cp1252":
                raise
            bad_rows.clear()
            encoding = "cp1252"  # valid UTF-8 at the start, not further on: a Windows export
            table = parse(encoding)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        problem = (
            "the file is not valid UTF-8 or Windows-1252 text"
            if isinstance(exc, UnicodeDecodeError) or "UTF8" in str(exc)
            else "cannot be parsed as CSV"
        )
        raise InputError(label, path, problem) from None
    return table, encoding


def _bad_rows_error(
    label: str, path: Path, bad_rows: list[tuple[int | None, int, int]], encoding: str, delimiter: str
) -> InputError:
    """The first row whose field count is not the header's, by line (a cut-off last line said so)."""
    _, expected, actual = bad_rows[0]
    records = [(n, len(r)) for n, r in records_with_lines(path.read_bytes(), encoding, delimiter)]
    line = next((n for n, fields in records if fields != expected), None)
    last, last_fields = records[-1] if records else (None, expected)
    if len(bad_rows) == 1 and line == last and last_fields < expected:
        return InputError(
            label,
            path,
            f"the last line (line {last}) has {last_fields} fields where the header has {expected}: "
            "the file looks cut off mid-transfer; upload it again, complete",
        )
    where = f"line {line}" if line else "a row"
    return InputError(
        label,
        path,
        f"{where} has {actual} fields where the header has {expected} "
        f"({len(bad_rows)} such row(s)); fix the file and upload it again",
    )


def read_sheet_rows(label: str, path: Path | str) -> SheetRows:
    """All rows of a small table (the data mapping table): a CSV or text export in any encoding
    `read_csv` accepts, or the first sheet of an .xlsx workbook."""
    path = Path(path)
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        return _xlsx_rows(label, path)
    data = read_bytes(label, path)
    text = data.decode(detect_encoding(data), errors="replace").lstrip("\ufeff")
    csv.field_size_limit(FIELD_LIMIT)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=detect_delimiter(text[:65536])))


def _xlsx_rows(label: str, path: Path) -> SheetRows:
    """The first sheet, refused (in one line, quickly) when it reaches far beyond a mapping table."""
    from zipfile import BadZipFile

    import openpyxl
    from openpyxl.utils import get_column_letter

    if not path.is_file():
        raise InputError(label, path, "file not found")
    if path.stat().st_size > SHEET_MAX_BYTES:
        limit = f"{SHEET_MAX_BYTES >> 20} MB"
        raise InputError(label, path, f"the workbook is over {limit}; a mapping table is far smaller")
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, OSError, KeyError, ValueError):
        raise InputError(label, path, "not a readable .xlsx workbook") from None
    too_big = SHEET_TOO_BIG
    try:
        sheet = workbook.worksheets[0]
        rows, columns = sheet.max_row or 0, sheet.max_column or 0  # the sheet's used range, as saved
        if rows > SHEET_MAX_ROWS or columns > SHEET_MAX_COLUMNS:
            corner = f"{get_column_letter(columns)}{rows}"
            raise InputError(label, path, f"the first sheet reaches cell {corner}; {too_big}")
        bounded = sheet.iter_rows(  # bounded even when the saved range is missing or wrong
            max_row=SHEET_MAX_ROWS + 1, max_col=SHEET_MAX_COLUMNS + 1, values_only=True
        )
        table = [list(row) for row in bounded]
    finally:
        workbook.close()
    beyond = [row[SHEET_MAX_COLUMNS:] for row in table]
    if len(table) > SHEET_MAX_ROWS or any(value is not None for extra in beyond for value in extra):
        raise InputError(label, path, f"the first sheet is larger than a mapping table; {too_big}")
    return [row[:SHEET_MAX_COLUMNS] for row in table]
