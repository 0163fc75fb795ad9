"""Reading a registry export for ``dampak import-registry`` and ``dampak export reassessment``:
CSV records checked against the physical lines they came from, in an encoding detected or given,
and Parquet row by row. A record that cannot be read comes out as a ``Broken`` with its line and
reason, never lost with the rows after it; a file that cannot be read at all stops the command
with a ``DampakError`` naming why.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from streams.errors import DampakError

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_RECORD_LINES",
    "SAMPLE_BYTES",
    "Broken",
    "CsvFile",
    "Rows",
    "Source",
    "detect_encoding",
    "file_format",
    "open_source",
    "parquet_rows",
]

logger = logging.getLogger(__name__)

#: A physical line longer than this is rejected whole (and skipped without being held in memory).
MAX_LINE_BYTES = 1 << 20
#: A quoted field may hold line breaks (an address), but a record ends within this many physical
#: lines: past it, the quote that opened the record is taken as never closed.
MAX_RECORD_LINES = 32
#: The share of the file read to detect its encoding when it has no byte-order mark.
SAMPLE_BYTES = 1 << 20
#: Byte-order marks, longest first (a UTF-32-LE mark starts with the UTF-16-LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Broken:
    """A record that cannot be read: the reason, and the field it names (``-``: the line as a whole).
    ``row`` holds what its first line shows when parsed leniently, so that the household id of a
    broken row still counts as present for ``--snapshot``."""

    reason: str
    name: str = "-"
    row: dict[str, Any] = field(default_factory=dict)


#: (line or row number, the row by column name or why it could not be read)
Rows = Iterator[tuple[int, "dict[str, Any] | Broken"]]


def detect_encoding(head: bytes) -> tuple[str, int, bool]:
    """``(codec, bytes of byte-order mark to skip, guessed)`` for a file starting with ``head``.

    A byte-order mark decides. Without one, NUL bytes at every other position mean UTF-16, text
    that decodes as UTF-8 is UTF-8, and anything else is taken for cp1252 (what a Windows
    spreadsheet writes; it reads Latin-1 text the same, bar 0x80-0x9F): a guess, so the caller
    says so and ``--encoding`` overrides it."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec, len(bom) if codec == "utf-8" else 0, False
    pairs = len(head) // 2
    if pairs and head.count(0) > pairs // 2:
        odd = head[1::2].count(0)
        return ("utf-16-le" if odd > head[0::2].count(0) else "utf-16-be"), 0, True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SAMPLE_BYTES)
    except UnicodeDecodeError:
        return "cp1252", 0, True
    return "utf-8", 0, True


class _Cut(Exception):
    """The record being read ran into its line cap or a broken line."""


class _Feed:
    """The lines a ``csv.reader`` reads, noting each one it takes for the record in hand, so that
    a record that fails gives back every line but its first to be read again."""

    def __init__(self, lines: Iterator[tuple[int, str | Broken]]) -> None:
        self.lines = lines
        self.again: deque[tuple[int, str | Broken]] = deque()
        self.taken: list[tuple[int, str]] = []
        self.broken: tuple[int, Broken] | None = None

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if len(self.taken) >= MAX_RECORD_LINES:
            raise _Cut
        number, line = self.again.popleft() if self.again else next(self.lines)
        if isinstance(line, Broken):
            self.broken = (number, line)
            raise _Cut
        self.taken.append((number, line))
        return line

    def give_back(self) -> None:
        """Read every taken line but the first again (and a broken line that cut the record)."""
        back: list[tuple[int, str | Broken]] = [*self.taken[1:]]
        if self.broken is not None and self.taken:
            back.append(self.broken)
            self.broken = None
        self.again.extendleft(reversed(back))


class CsvFile:
    """A CSV export read record by record. ``columns`` is its header; ``rows()`` yields each
    record under its first physical line's number, or a ``Broken`` for a record that breaks the
    format: an unclosed or misplaced quote, a field over Python's csv field limit (128 KiB), a
    line over ``MAX_LINE_BYTES``, a NUL byte, or a field count other than the header's. A broken
    record rejects its first line only; the lines it took are read again as records of their own.

    Raises DampakError when the header cannot be read, or when a line does not decode: the
    encoding is then wrong for the whole file (the message says whether it was guessed)."""

    def __init__(self, fh: IO[bytes], delimiter: str = ",", encoding: str | None = None) -> None:
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise DampakError(f"--delimiter {delimiter!r}: one character, not a quote or a line break")
        self.fh, self.delimiter = fh, delimiter
        head = fh.read(SAMPLE_BYTES)
        if encoding:
            try:
                self.encoding = codecs.lookup(encoding).name
            except LookupError:
                raise DampakError(f"--encoding {encoding!r}: no such encoding") from None
            skip, self.guessed = 0, False
            if self.encoding in ("utf-8", "utf-8-sig"):
                self.encoding, skip = "utf-8", len(codecs.BOM_UTF8) * head.startswith(codecs.BOM_UTF8)
        else:
            self.encoding, skip, self.guessed = detect_encoding(head)
        fh.seek(skip)
        # A codec whose line break is one byte (UTF-8, cp1252, Latin-1) is split on b"\n" and
        # decoded line by line, which names the exact line of a bad byte; UTF-16/32 go through a
        # decoding reader.
        self.narrow = len("\n\n".encode(self.encoding)) - len("\n".encode(self.encoding)) == 1
        self.multiline = 0  # records that span more than one physical line
        self.columns: list[str] = []
        self.feed = _Feed(self._lines())
        self.reader = csv.reader(self.feed, delimiter=delimiter, strict=True)
        header = self._next_record()
        if header is None:
            raise DampakError("the file is empty: no header line")
        if isinstance(header[1], Broken):
            raise DampakError(f"line {header[0]}: the header cannot be read: {header[1].reason}")
        self.columns = header[1]

    def _how(self) -> str:
        if self.guessed:
            return (
                "the encoding was detected from the start of the file; name it with --encoding "
                "(cp1252 or latin-1 for a Windows export, utf-16, ...)"
            )
        return "check --encoding"

    def _wrong(self, number: int, exc: UnicodeDecodeError) -> DampakError:
        return DampakError(
            f"line {number:,}: not {self.encoding} text (byte 0x{exc.object[exc.start]:02x} at "
            f"position {exc.start + 1}): " + self._how()
        )

    def _lines(self) -> Iterator[tuple[int, str | Broken]]:
        number = 0
        text = io.TextIOWrapper(self.fh, self.encoding, newline="\n") if not self.narrow else None
        while True:
            try:
                raw: bytes | str = (text or self.fh).readline(MAX_LINE_BYTES + 1)
            except UnicodeDecodeError:  # UTF-16/32 decode in blocks: the line is approximate
                raise DampakError(
                    f"near line {number + 1:,}: not {self.encoding} text: " + self._how()
                ) from None
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES and raw[-1:] not in ("\n", b"\n"):
                yield number, self._overlong(raw, text)
                continue
            try:
                line = raw.decode(self.encoding) if isinstance(raw, bytes) else raw
            except UnicodeDecodeError as exc:
                raise self._wrong(number, exc) from None
            if "\0" in line:
                nul = "a NUL byte (is the file UTF-16? give --encoding)"
                yield number, Broken(nul, row=self._lenient(line))
            else:
                yield number, line

    def _overlong(self, start: bytes | str, text: IO[str] | None) -> Broken:
        """Skip the rest of an overlong line, keeping only what its start shows."""
        chunk = start
        while chunk and chunk[-1:] not in ("\n", b"\n"):
            chunk = (text or self.fh).readline(MAX_LINE_BYTES)
        head = start.decode(self.encoding, "replace") if isinstance(start, bytes) else start
        cells = self._lenient_cells(head)[:-1]  # the last cell is cut
        return Broken(
            f"a line longer than {MAX_LINE_BYTES:,} bytes",
            row=dict(zip(self.columns, cells, strict=False)),
        )

    def _lenient_cells(self, line: str) -> list[str]:
        try:
            return next(csv.reader([line.replace("\0", "")], delimiter=self.delimiter), [])
        except csv.Error:
            return []

    def _lenient(self, line: str) -> dict[str, Any]:
        return dict(zip(self.columns, self._lenient_cells(line), strict=False))

    def _next_record(self) -> tuple[int, list[str] | Broken] | None:
        """The next record (blank lines skipped), or None at the end of the file."""
        feed = self.feed
        while True:
            feed.taken, feed.broken = [], None
            try:
                cells = next(self.reader)
            except StopIteration:
                return None
            except _Cut:
                if feed.broken is not None and not feed.taken:
                    number, broken = feed.broken
                    return number, broken
                reason = f"a quote not closed within {MAX_RECORD_LINES} lines"
                if feed.broken is not None:
                    reason = f"a quote not closed before line {feed.broken[0]:,}"
                return self._fail(reason)
            except csv.Error as exc:
                reason = str(exc)
                if reason == "unexpected end of data":
                    reason = "a quote not closed before the end of the file"
                elif "expected after" in reason:
                    reason = f"a quote inside a quoted field ({reason})"
                elif reason.startswith("new-line character"):
                    reason = "a carriage return inside an unquoted field (line breaks are LF or CRLF)"
                return self._fail(reason)
            if not cells and len(feed.taken) == 1:
                continue
            if len(feed.taken) > 1:
                # A line break inside quotes is legal, but a line wholly inside the quotes that
                # holds a whole record's worth of delimiters is a record: the quote was a stray one.
                width = len(self.columns or cells)
                inside = feed.taken[1:-1]
                if width > 1 and any(line.count(self.delimiter) >= width - 1 for _, line in inside):
                    return self._fail("a quote that runs into the next records")
                self.multiline += 1
            return feed.taken[0][0], cells

    def _fail(self, reason: str) -> tuple[int, Broken]:
        number, line = self.feed.taken[0]
        broken = Broken(reason, row=self._lenient(line))
        self.feed.give_back()
        return number, broken

    def rows(self) -> Rows:
        width = len(self.columns)
        while (record := self._next_record()) is not None:
            number, cells = record
            if isinstance(cells, Broken):
                yield number, cells
            elif len(cells) != width:
                row = dict(zip(self.columns, cells, strict=False))
                yield number, Broken(f"{len(cells)} fields where the header has {width}", row=row)
            else:
                yield number, dict(zip(self.columns, cells, strict=True))


def file_format(path: Path, fmt: str | None = None) -> str:
    """``fmt`` when given, else the format the file's extension names: ``parquet`` for ``.parquet``
    and ``.pq``, ``csv`` for anything else."""
    return fmt or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")


@dataclass
class Source:
    """An opened export: its header, its rows, and its size and read position (bytes of a CSV
    file; a Parquet file counts rows and has no position)."""

    columns: list[str]
    rows: Rows
    total: int
    position: Callable[[], int] | None
    csv_file: CsvFile | None


@contextlib.contextmanager
def open_source(
    path: Path, fmt: str, delimiter: str, encoding: str | None, notes: list[str]
) -> Iterator[Source]:
    """The export, open (``fmt``: ``csv`` or ``parquet``); ``notes`` gets what the caller should
    tell the user (an encoding guessed). Raises DampakError for an unknown format and for a file
    whose header or encoding cannot be read."""
    if fmt == "csv":
        with open(path, "rb") as fh:
            csv_file = CsvFile(fh, delimiter, encoding)
            if csv_file.guessed and csv_file.encoding not in ("utf-8", "ascii"):
                notes.append(
                    f"encoding taken for {csv_file.encoding} (the file is not UTF-8); if names read "
                    "wrong, give --encoding"
                )
            yield Source(csv_file.columns, csv_file.rows(), os.fstat(fh.fileno()).st_size, fh.tell, csv_file)
    elif fmt == "parquet":
        columns, total, rows = parquet_rows(path)
        yield Source(columns, rows, total, None, None)
    else:
        raise DampakError(f"format {fmt!r}: csv or parquet")


def parquet_rows(path: Path, batch_rows: int = 10_000) -> tuple[list[str], int, Rows]:
    """The columns, the row count and the rows of a Parquet file, batch by batch. A row whose
    values cannot be converted is a ``Broken`` naming the column. Raises DampakError when the file
    is no Parquet file, or when its data cannot be read past a row (that row number is named)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    unreadable = (pa.ArrowException, OSError, ValueError, OverflowError)
    try:
        parquet = pq.ParquetFile(path)
        columns, total = parquet.schema_arrow.names, parquet.metadata.num_rows
    except unreadable as exc:
        raise DampakError(f"{path.name}: not a readable Parquet file ({exc})") from exc

    def rows() -> Rows:
        number = 0
        batches = parquet.iter_batches(batch_size=batch_rows)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except unreadable as exc:
                raise DampakError(f"{path.name}: unreadable after row {number:,} ({exc})") from exc
            try:
                converted: list[dict[str, Any] | Broken] = list(batch.to_pylist())
            except unreadable:
                converted = [_parquet_row(batch, i) for i in range(batch.num_rows)]
            for row in converted:
                number += 1
                yield number, row

    return columns, total, rows()


def _parquet_row(batch: Any, i: int) -> dict[str, Any] | Broken:
    """Row ``i`` of a batch whose rows do not all convert, column by column."""
    row: dict[str, Any] = {}
    failed = None
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        try:
            row[name] = column[i].as_py()
        except (ValueError, OverflowError, TypeError) as exc:
            failed = failed or (name, type(exc).__name__)
    if failed is None:
        return row
    return Broken(f"a value that cannot be read ({failed[1]})", name=failed[0], row=row)
