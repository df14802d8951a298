"""Which line of a CSV file each record starts on, for rejected rows a person can find in the file.

Cheapest first: a vectorised scan of the file's quotes and newlines (read in pieces, UTF-16 re-encoded
as UTF-8), and the csv module where a quote defeats that scan. Blank lines are skipped as pyarrow
skips them, so record numbers match the rows read.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a file is scanned: a flow that reads no file never loads them
    import numpy as np
    import pyarrow as pa

SCAN_BYTES = 8 << 20  # line numbering reads the file in pieces of this size
FIELD_LIMIT = (1 << 31) - 1  # the csv module's default (128 KiB per field) is smaller than real exports


def count_lines(path: Path, encoding: str) -> int | None:
    """The file's line count (a last line without a newline counts); None when it has a lone CR,
    which the csv module counts as a line break. Counted with numpy over one reused buffer."""
    import numpy as np

    if encoding == "utf-16":
        pieces: Iterator[bytes | memoryview] = _utf8_pieces(path, encoding)
    else:
        pieces = _raw_pieces(path)
    newlines, last = 0, 10  # as if a newline came before the file
    for piece in pieces:
        data = np.frombuffer(piece, np.uint8)
        if not len(data):
            continue
        is_cr = data == 13
        if last == 13 and data[0] != 10:
            return None
        if is_cr.any() and np.count_nonzero(is_cr[:-1] & (data[1:] != 10)):
            return None
        newlines += int(np.count_nonzero(data == 10))
        last = int(data[-1])
    if last == 13:
        return None
    return newlines + (last != 10)


def _raw_pieces(path: Path) -> Iterator[memoryview]:
    """The file in pieces of SCAN_BYTES, read into one buffer (each piece is gone at the next)."""
    buffer = bytearray(SCAN_BYTES)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as f:
        while size := f.readinto(buffer):
            yield view[:size]


def newlines_per_row(column: pa.ChunkedArray) -> np.ndarray | None:
    """How many newlines each value holds (counted once per distinct value in a dictionary column);
    None when no value holds one, the usual case, so no per-row array is made."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    counts: list[np.ndarray | None] = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            per_value = pc.count_substring(chunk.dictionary, "\n").to_numpy(zero_copy_only=False)
            has = bool(per_value.any())
            counts.append(per_value[chunk.indices.to_numpy(zero_copy_only=False)] if has else None)
        elif _may_hold_newline(chunk):
            counted = pc.count_substring(chunk, "\n").to_numpy(zero_copy_only=False)
            counts.append(counted if counted.any() else None)
        else:
            counts.append(None)
    if all(c is None for c in counts):
        return None
    return np.concatenate(
        [
            c if c is not None else np.zeros(len(chunk), np.int32)
            for c, chunk in zip(counts, column.chunks, strict=True)
        ]
    )


def _may_hold_newline(chunk: pa.Array) -> bool:
    """Whether any value may hold a newline: one vectorised look at the data buffer, ~5x faster than
    counting per value (the buffer can hold bytes beyond the chunk's slice: a hit is only a maybe)."""
    import numpy as np

    data = chunk.buffers()[2]
    return data is not None and bool((np.frombuffer(data, np.uint8) == 10).any())


def _utf8_pieces(path: Path, encoding: str) -> Iterator[bytes]:
    """The file in pieces that each end at a newline (but the last), in an encoding where quotes and
    newlines are single ASCII bytes: UTF-16 is re-encoded as UTF-8, its line breaks kept."""
    decoder = codecs.getincrementaldecoder("utf-16")() if encoding == "utf-16" else None
    carry = b""
    with path.open("rb") as f:
        while True:
            raw = f.read(SCAN_BYTES)
            block = carry + (decoder.decode(raw, final=not raw).encode("utf-8") if decoder else raw)
            cut = block.rfind(b"\n") + 1 if raw else len(block)
            if cut:
                yield block[:cut]
            carry = block[cut:]
            if not raw:
                return


def record_start_lines(path: Path, encoding: str, delimiter: str) -> np.ndarray | None:
    """The line each record (the header first) starts on, skipping blank lines as pyarrow does.

    Vectorised: a newline ends a record unless an odd number of quotes precede it. That holds
    while every quote opens a field, closes one or is doubled; any other quote (`5'11"`), or a lone
    CR, returns None and the caller falls back to the csv module.
    """
    import numpy as np

    quote, newline, cr = ord('"'), ord("\n"), ord("\r")
    field_edges = np.array([ord(delimiter), newline, cr, quote], np.uint8)
    content_start = 3 if encoding == "utf-8-sig" else 0
    records: list[np.ndarray] = []
    segment_start = 1  # the line on which the current record (or blank line) starts
    quotes_before = newlines_before = offset = 0
    last_end = -1  # file position of the newline that ended the previous record or blank line
    for piece in _utf8_pieces(path, encoding):
        if piece.count(b"\r") != piece.count(b"\r\n"):
            return None
        data = np.frombuffer(piece, np.uint8)
        quotes = np.flatnonzero(data == quote)
        if len(quotes):
            before = data[np.maximum(quotes - 1, 0)]
            after = data[np.minimum(quotes + 1, len(data) - 1)]
            at_field_start = np.isin(before, field_edges) | (quotes == 0) | (quotes + offset == content_start)
            at_field_end = np.isin(after, field_edges) | (quotes == len(data) - 1)
            opens = (quotes_before + np.arange(len(quotes))) % 2 == 0
            if not (at_field_start[opens].all() and at_field_end[~opens].all()):
                return None
        newlines = np.flatnonzero(data == newline)
        outside = (quotes_before + np.searchsorted(quotes, newlines)) % 2 == 0
        ends = newlines[outside]
        if len(ends):
            gap = np.diff(ends, prepend=last_end - offset)
            after_cr = data[np.maximum(ends - 1, 0)] == cr
            blank = (gap == 1) | ((gap == 2) & after_cr)
            next_line = newlines_before + np.flatnonzero(outside) + 2  # the line after each end
            segment_starts = np.concatenate([[segment_start], next_line[:-1]])
            records.append(segment_starts[~blank])
            segment_start, last_end = int(next_line[-1]), int(ends[-1]) + offset
        quotes_before += len(quotes)
        newlines_before += len(newlines)
        offset += len(data)
    if offset - last_end > 1:  # the last record has no newline after it
        records.append(np.array([segment_start]))
    return np.concatenate(records) if records else np.zeros(0, np.int64)


def records_with_lines(data: bytes, encoding: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Each data record with the line it starts on, skipping blank lines as pyarrow does."""
    csv.field_size_limit(FIELD_LIMIT)
    reader = csv.reader(io.StringIO(data.decode(encoding, errors="replace"), newline=""), delimiter=delimiter)
    next(reader, None)
    start_line = reader.line_num + 1
    for record in reader:
        if record:
            yield start_line, record
        start_line = reader.line_num + 1
