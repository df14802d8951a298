"""Reading the tables customers send us: any common encoding, delimiter and line ending, fast.

Every problem becomes an `InputError` that names the file and says what is wrong in one line,
without quoting row contents (they hold people's names and emails).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

DELIMITERS = [",", ";", "\t", "|"]
HEAD_BYTES = 1 << 20  # enough to sniff encoding, delimiter and header; the rest is read by pyarrow
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
    if b"\x00" in data[:65536]:
        raise InputError(label, path, "this is a binary file, not a text CSV file")
    return data


def detect_encoding(data: bytes) -> str:
    """utf-8-sig for a BOM, utf-8 when the start decodes, otherwise Windows-1252."""
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

    def column(self, aliases: Iterable[str]) -> pa.Array | None:
        """The first column whose header matches one of the aliases (in alias order), as one array."""
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
        """The file line on which each given data row starts (1 = the header line)."""
        wanted = sorted(set(row_indexes))
        if not wanted:
            return {}
        data = self.path.read_bytes()
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        if lines == self.table.num_rows + 1:  # one line per record: no quoted newlines, no blank lines
            return {i: i + 2 for i in wanted}
        found, targets = {}, iter(wanted)
        target = next(targets)
        for index, (line, _record) in enumerate(records_with_lines(data, self.encoding, self.delimiter)):
            if index == target:
                found[index] = line
                target = next(targets, None)
                if target is None:
                    break
        return found


def records_with_lines(data: bytes, encoding: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Each data record with the line it starts on, skipping blank lines as pyarrow does."""
    reader = csv.reader(io.StringIO(data.decode(encoding, errors="replace"), newline=""), delimiter=delimiter)
    next(reader, None)
    start_line = reader.line_num + 1
    for record in reader:
        if record:
            yield start_line, record
        start_line = reader.line_num + 1


def header_key(name: str) -> str:
    """Header names match trimmed and case-insensitively."""
    return " ".join(name.strip().split()).casefold()


def read_csv(
    label: str, path: Path | str, wanted: Iterable[str] | None = None, categorical: Iterable[str] = ()
) -> Table:
    """Read a CSV with every column as text; `wanted` (header keys) limits which columns are parsed.

    Columns named in `categorical` (header keys: statuses, departments…) are read dictionary-encoded,
    so work on them is done once per distinct value rather than once per row.
    """
    path = Path(path)
    data = read_bytes(label, path, limit=HEAD_BYTES)
    encoding = detect_encoding(data)
    head = data[:262_144].decode(encoding, errors="replace").lstrip("\ufeff")
    delimiter = detect_delimiter(head)
    try:
        header = next(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter))
    except (StopIteration, csv.Error):
        raise InputError(label, path, "no header row") from None
    header = [h.strip() for h in header]
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

    def on_invalid_row(row) -> str:
        bad_rows.append((row.number, row.expected_columns, row.actual_columns))
        return "skip"

    def parse(encoding: str) -> pa.Table:
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
    if bad_rows:
        _, expected, actual = bad_rows[0]
        line = next(
            (
                n
                for n, record in records_with_lines(path.read_bytes(), encoding, delimiter)
                if len(record) != expected
            ),
            None,
        )
        where = f"line {line}" if line else "a row"
        raise InputError(
            label,
            path,
            f"{where} has {actual} fields where the header has {expected} "
            f"({len(bad_rows)} such row(s)); fix the file and upload it again",
        )
    return Table(label, path, encoding, delimiter, header, table)
