"""Split a CSV file into records, each with the physical line it starts on.

Why not the engines' own CSV readers: DuckDB and Spark number rows, not lines (a blank line or a quoted
line break shifts every number after it), treat a path as a glob pattern, fail or skip a whole file over
one bad byte, and read a 3 MB field whole. This reader streams the file's bytes, so memory stays bounded
by `Limits.max_line_bytes`, and every line of a file ends up in exactly one place: the header, a record,
a bad record (with the reason), or the count of blank lines.

A record is one line, or several when a quoted field holds a line break. A quote that is still open after
`Limits.max_record_lines` lines (or at the end of the file) is taken as a stray: that line alone becomes a
bad record and reading resumes on the next line, so one broken quote costs one record, not the rest of
the file.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO


class UnreadableFile(ValueError):
    """The file has no readable header: nothing of it can be loaded."""


@dataclass(frozen=True)
class Limits:
    # No field of the formats we read comes near these; a longer one is an export gone wrong.
    max_field_chars: int = 4_096
    max_line_bytes: int = 1 << 20
    max_record_lines: int = 20


@dataclass(frozen=True)
class Record:
    line: int  # physical line (1-based) the record starts on
    fields: list[str]
    # indices of fields whose bytes are not valid UTF-8 (kept as lone surrogates in `fields`)
    invalid_utf8: tuple[int, ...] = ()
    text: str = ""  # the record as read, for the quarantine


@dataclass(frozen=True)
class BadRecord:
    line: int
    reason: str  # names the field and shows the value where there is one
    text: str


@dataclass
class LineCounts:
    header_line: int = 0
    records: int = 0
    bad_records: int = 0
    blank_lines: int = 0

    @property
    def rows_read(self) -> int:
        """Every line after the header is a record, part of one, a bad record or blank."""
        return self.records + self.bad_records + self.blank_lines


PREVIEW_CHARS = 60
HEAD_BYTES = 4_096
QUARANTINE_TEXT_CHARS = 2_000


def preview(value: str) -> str:
    """A value as a reason shows it: in quotes, long values cut, bytes that are not UTF-8 as \\xff and control
    characters as \\x01 (escaped once, so the reason shows what the file holds)."""
    shown = value if len(value) <= PREVIEW_CHARS else value[:PREVIEW_CHARS] + "..."
    text = shown.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "'" + "".join(char if char.isprintable() else repr(char)[1:-1] for char in text) + "'"


def _has_surrogate(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def physical_lines(handle: BinaryIO, limit: int, overlong: dict[int, bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the terminator), or None for a line over `limit` bytes (its start is kept in
    `overlong`, by line number, and the rest skipped without being held). A line ends at LF, CRLF or a lone CR."""
    number = 0
    first = True
    while True:
        chunk = handle.readline(limit + 1)
        if not chunk:
            return
        if first:
            chunk = chunk.removeprefix(b"\xef\xbb\xbf")
            first = False
        if len(chunk) > limit and not chunk.endswith(b"\n"):
            while True:  # skip the rest of the overlong line without holding it
                more = handle.readline(limit)
                if not more or more.endswith(b"\n"):
                    break
            number += 1
            overlong[number] = chunk[:HEAD_BYTES]
            yield number, None
            continue
        if chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
        if b"\r" in chunk:
            for piece in chunk.split(b"\r"):
                number += 1
                yield number, piece
            continue
        number += 1
        yield number, chunk


class CsvRecords:
    """`CsvRecords(handle)` reads the header at once (UnreadableFile if there is none); iterating yields
    `Record`s and `BadRecord`s in file order; `counts` is complete once iteration ends."""

    def __init__(self, handle: BinaryIO, limits: Limits = Limits()):
        self.limits = limits
        self.counts = LineCounts()
        self._overlong: dict[int, bytes] = {}  # the start of each line over the byte limit, by line number
        # the last physical line taken from the file: past a record's own lines when a quote made it look ahead
        self.lines_read = 0
        self._lines = physical_lines(handle, limits.max_line_bytes, self._overlong)
        self._pending: deque[tuple[int, bytes | None]] = deque()
        csv.field_size_limit(max(csv.field_size_limit(), limits.max_line_bytes * limits.max_record_lines))
        self.header: list[str] = []
        self.header = self._read_header()

    # ------------------------------------------------------------ lines

    def _next_line(self) -> tuple[int, bytes | None] | None:
        if self._pending:
            return self._pending.popleft()
        item = next(self._lines, None)
        if item is not None:
            self.lines_read = item[0]
        return item

    # ------------------------------------------------------------ records

    def _read_header(self) -> list[str]:
        for item in self._records():
            if isinstance(item, BadRecord):
                raise UnreadableFile(f"the header (line {item.line}) cannot be read: {item.reason}")
            if item.invalid_utf8:
                raise UnreadableFile(f"the header (line {item.line}) is not UTF-8 text: {item.text[:200]!r}")
            self.counts.header_line = item.line
            # Blank lines before the header are not data lines.
            self.counts.blank_lines = 0
            return [name.strip() for name in item.fields]
        raise UnreadableFile("file is empty")

    def __iter__(self) -> Iterator[Record | BadRecord]:
        for item in self._records(len(self.header)):
            if isinstance(item, Record):
                item = self._check_shape(item)
            if isinstance(item, BadRecord):
                self.counts.bad_records += 1
            else:
                self.counts.records += 1
            yield item

    def _field_name(self, index: int) -> str:
        return self.header[index] if index < len(self.header) and self.header[index] else f"field {index + 1}"

    def _check_shape(self, record: Record) -> Record | BadRecord:
        width = len(self.header)
        found = len(record.fields)
        if found != width:
            counts = f"(expected {width} fields as in the header, found {found})"
            if found > width:
                reason = (f"{self._field_name(width - 1)}: followed by an extra value {preview(record.fields[width])} "
                          f"{counts}")
            else:
                reason = f"{self._field_name(found)}: missing, and every field after it {counts}"
            return BadRecord(record.line, reason, record.text)
        for index, value in enumerate(record.fields):
            if len(value) > self.limits.max_field_chars:
                return BadRecord(record.line, f"{self._field_name(index)}: value of {len(value):,} characters is "
                                 f"longer than the limit of {self.limits.max_field_chars:,}: {preview(value)}",
                                 record.text)
        return record

    def _records(self, width: int | None = None) -> Iterator[Record | BadRecord]:
        limits = self.limits
        while True:
            item = self._next_line()
            if item is None:
                return
            number, data = item
            if data is None:
                yield self._overlong_record(number)
                continue
            if not data.strip():
                self.counts.blank_lines += 1
                continue
            if b'"' not in data:
                yield self._record(number, data, None)
                continue
            first_line = data
            consumed: list[tuple[int, bytes | None]] = []
            fields: list[str] | None = None
            malformed = ""
            while True:
                try:
                    fields = next(csv.reader([data.decode("utf-8", "surrogateescape")], strict=True))
                    break
                except csv.Error as error:
                    if str(error) != "unexpected end of data":
                        malformed = str(error)
                        break
                following = self._next_line() if len(consumed) + 1 < limits.max_record_lines else None
                if following is None:
                    break
                consumed.append(following)
                if following[1] is None:
                    break
                data = data + b"\n" + following[1]
            joined_badly = bool(consumed) and (fields is None or (width is not None and (
                len(fields) != width or self._swallows_records(consumed, width))))
            if fields is not None and not joined_badly:
                yield self._record(number, data, fields)
                continue
            if malformed and not consumed:
                yield BadRecord(number, self._malformed_reason(first_line, malformed), _quarantine_text(first_line))
                continue
            # A quote opened on this line and never closed in a way that makes a record: a stray quote.
            yield BadRecord(number, self._unterminated_reason(first_line), _quarantine_text(first_line))
            self._pending.extendleft(reversed(consumed))  # the lines after it are records of their own

    @staticmethod
    def _swallows_records(consumed: list[tuple[int, bytes | None]], width: int) -> bool:
        """A quoted value whose later lines are whole records on their own: two stray quotes that happen to
        pair up (and give the right field count), not a value with line breaks. Taken as a stray quote, so
        the records in between are read as themselves instead of vanishing into one."""
        for _, data in consumed:
            if data is not None and len(next(csv.reader([data.decode("utf-8", "surrogateescape")]), [])) >= width:
                return True
        return False

    def _overlong_record(self, number: int) -> BadRecord:
        """A line over the byte limit was skipped, not held: its start names the field that runs on (the one
        after the last delimiter there, assuming no quoted delimiters before it)."""
        head = self._overlong.pop(number, b"")
        text = head.decode("utf-8", "replace")
        index = text.count(",")
        value = text.rsplit(",", 1)[-1]
        return BadRecord(number, f"{self._field_name(index)}: line is longer than {self.limits.max_line_bytes:,} "
                         f"bytes, this value runs on: {preview(value)}", _quarantine_text(head))

    def _unterminated_reason(self, line: bytes) -> str:
        fields = next(csv.reader([line.decode("utf-8", "surrogateescape")], strict=False))
        index = len(fields) - 1
        return (f"{self._field_name(index)}: unterminated quote: the quoted value opened on this line "
                f"({preview(fields[index])}) is not closed into a record of {len(self.header) or 'its'} fields "
                f"within {self.limits.max_record_lines} lines")

    def _malformed_reason(self, line: bytes, error: str) -> str:
        """Which field breaks the quoting rules: walk the line as the csv module does."""
        text = line.decode("utf-8", "surrogateescape")
        index, start, quoted, closed = 0, 0, False, False
        for position, char in enumerate(text):
            if quoted:
                if char == '"':
                    quoted, closed = False, True
                continue
            if char == ",":
                index, start, closed = index + 1, position + 1, False
            elif char == '"' and closed:
                quoted, closed = True, False  # a doubled quote inside a quoted value
            elif char == '"' and position == start:
                quoted = True
            elif closed:
                break
        value = text[start:].split(",", 1)[0]
        return f"{self._field_name(index)}: malformed quoting ({error}) in {preview(value)}"

    def _record(self, number: int, data: bytes, fields: list[str] | None) -> Record:
        try:
            text = data.decode("utf-8")
            valid = True
        except UnicodeDecodeError:
            text = data.decode("utf-8", "surrogateescape")
            valid = False
        if fields is None:
            fields = text.split(",")
        invalid = () if valid else tuple(i for i, value in enumerate(fields) if _has_surrogate(value))
        return Record(number, fields, invalid, _quarantine_text(data))


def _quarantine_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")[:QUARANTINE_TEXT_CHARS]
