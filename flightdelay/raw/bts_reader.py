"""Reading a BTS file: its header checked against `FIELDS`, its records split by `raw_contracts.records` (exact
physical line numbers, one bad record never sinks the file, the path read as itself and never as a glob) and
handed on as Arrow tables; plus the file facts the load records (SHA-256, physical lines) and the airport id map.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from flightdelay.raw.bts_fields import (
    AIRPORT_ID_HEADERS,
    FALLBACK_HEADERS,
    FIELDS,
    FieldSpec,
    canonical_header,
    missing_required,
)
from raw_contracts.records import BadRecord, CsvRecords, UnreadableFile, preview

BATCH_RECORDS = 200_000
LANDED_FIXED = ["source_line", "raw_record"]
REJECT_COLUMNS = ["source_line", "rejection_reason", "raw_record"]


class LoadError(ValueError):
    """A file that cannot be loaded at all (empty, unknown layout); names the file and the problem."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def count_lines(path: Path) -> int:
    """Physical lines as `raw_contracts.records` counts them (ended by LF, CRLF or a lone CR; a last line
    without an ending counts), counted apart from the reader so the raw-file gate can compare the two."""
    terminators = 0
    last = b""
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            terminators += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
            if last == b"\r" and block[:1] == b"\n":  # a CRLF split across two blocks
                terminators -= 1
            last = block[-1:]
    return terminators + (1 if last and last not in (b"\n", b"\r") else 0)


def open_records(path: Path, handle: BinaryIO) -> CsvRecords:
    try:
        return CsvRecords(handle)
    except UnreadableFile as error:
        raise LoadError(f"{path}: {error}; expected a BTS On-Time Reporting CSV with a header line") from None


def read_header(path: Path) -> list[str]:
    """The file's header in canonical (modern, upper-case) BTS names."""
    with Path(path).open("rb") as handle:
        return [canonical_header(h) for h in open_records(path, handle).header]


def check_layout(path: Path, header: list[str], airport_ids_mapped: bool = False) -> None:
    missing = missing_required(header, airport_ids_mapped)
    only_ids = [f"{code} (found {AIRPORT_ID_HEADERS[code]})" for code in missing
                if AIRPORT_ID_HEADERS.get(code) in header]
    if only_ids:
        raise LoadError(
            f"{path}: the file carries numeric airport ids instead of airport codes: {only_ids}. Add the "
            "ORIGIN and DEST columns to the download, or give a mapping CSV with columns airport_id,airport_code "
            "(e.g. from the BTS Master Coordinate table) in FLIGHTDELAY_AIRPORT_ID_MAP"
        )
    if missing:
        raise LoadError(
            f"{path}: not a BTS On-Time Reporting layout: required columns {missing} are missing; "
            f"found {header}"
        )


@dataclass(frozen=True)
class Layout:
    """Where each FIELDS column comes from in one file: a position in the record, or a numeric airport id
    to map to a code."""

    header: list[str]
    positions: dict[str, int]  # FIELDS column -> index in the record
    mapped_ids: dict[str, int]  # FIELDS column (origin / dest) -> index of its numeric airport id

    @property
    def columns(self) -> list[str]:
        return [*self.positions, *self.mapped_ids]

    def label(self, field: FieldSpec) -> str | None:
        """The file's column a field's value comes from (None: the file lacks it)."""
        if field.column in self.positions:
            return self.header[self.positions[field.column]]
        return field.source if field.column in self.mapped_ids else None

    @property
    def used(self) -> set[int]:
        return {*self.positions.values(), *self.mapped_ids.values()}


def layout_of(path: Path, header: list[str], airport_ids_mapped: bool) -> Layout:
    index: dict[str, int] = {}
    known = {f.source for f in FIELDS} | set(FALLBACK_HEADERS.values()) | set(AIRPORT_ID_HEADERS.values())
    for position, name in enumerate(header):
        if name in index and name in known:
            raise LoadError(f"{path}: the column {name} appears twice (columns {index[name] + 1} and {position + 1}, "
                            "names compared in any case): which one holds the data is ambiguous. Remove one and "
                            "load again")
        if name:
            index.setdefault(name, position)
    positions: dict[str, int] = {}
    mapped: dict[str, int] = {}
    for f in FIELDS:
        if f.source in index:
            positions[f.column] = index[f.source]
        elif FALLBACK_HEADERS.get(f.source) in index:
            positions[f.column] = index[FALLBACK_HEADERS[f.source]]
        elif airport_ids_mapped and AIRPORT_ID_HEADERS.get(f.source) in index:
            mapped[f.column] = index[AIRPORT_ID_HEADERS[f.source]]
    return Layout(header, positions, mapped)


def _arrow(columns: list[list], names: list[str], types: list[pa.DataType]) -> pa.Table:
    return pa.Table.from_arrays([pa.array(values, type=kind) for values, kind in zip(columns, types, strict=True)],
                                names=names)


def arrow_batches(records: CsvRecords, layout: Layout,
                  airport_codes: dict[str, str] | None) -> Iterator[tuple[pa.Table, pa.Table]]:
    """The records in batches of up to BATCH_RECORDS, each as two Arrow tables: the records read (columns
    `source_line`, `raw_record`, then `layout.columns` as text) and the records that could not be read
    (`source_line`, `rejection_reason`, `raw_record`). Either table of a batch may be empty."""
    landed_names = [*LANDED_FIXED, *layout.columns]
    landed_types = [pa.int64(), *[pa.string()] * (1 + len(layout.columns))]
    for landed, rejects in _record_batches(records, layout, airport_codes or {}):
        yield (_arrow(landed, landed_names, landed_types),
               _arrow(rejects, REJECT_COLUMNS, [pa.int64(), pa.string(), pa.string()]))


def _record_batches(records: CsvRecords, layout: Layout,
                    airport_codes: dict[str, str]) -> Iterator[tuple[list[list], list[list]]]:
    """The same batches as columns of Python values, before they become Arrow."""
    used = layout.used
    positions = list(layout.positions.values())
    mapped = list(layout.mapped_ids.values())
    codes = airport_codes
    width = 2 + len(positions) + len(mapped)
    landed: list[list] = [[] for _ in range(width)]
    rejects: list[list] = [[], [], []]
    for record in records:
        if isinstance(record, BadRecord):
            rejects[0].append(record.line)
            rejects[1].append(record.reason)
            rejects[2].append(record.text)
        elif record.invalid_utf8 and used.intersection(record.invalid_utf8):
            rejects[0].append(record.line)
            rejects[1].append("; ".join(f"{layout.header[i]}: invalid UTF-8 in {preview(record.fields[i])}"
                                        for i in record.invalid_utf8 if i in used))
            rejects[2].append(record.text)
        else:
            fields = record.fields
            landed[0].append(record.line)
            landed[1].append(record.text)
            slot = 2
            for position in positions:
                landed[slot].append(fields[position])
                slot += 1
            for position in mapped:
                airport_id = fields[position].strip()
                # an unmapped id gets a value that fails the airport check, so the reason names it
                landed[slot].append(codes.get(airport_id, f"no code for {layout.header[position]} {airport_id}")
                                    if airport_id else "")
                slot += 1
        if len(landed[0]) + len(rejects[0]) >= BATCH_RECORDS:
            yield landed, rejects
            landed = [[] for _ in range(width)]
            rejects = [[], [], []]
    yield landed, rejects


def read_airport_id_map(path: Path) -> dict[str, str]:
    """FLIGHTDELAY_AIRPORT_ID_MAP: a CSV with columns airport_id,airport_code, read as data (never as SQL)."""
    if not path.is_file():
        raise LoadError(f"{path}: airport id mapping file not found (FLIGHTDELAY_AIRPORT_ID_MAP)")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        names = {n.strip() for n in reader.fieldnames or []}
        if not {"airport_id", "airport_code"} <= names:
            raise LoadError(f"{path}: expected the columns airport_id,airport_code; found {reader.fieldnames}")
        return {(row["airport_id"] or "").strip(): (row["airport_code"] or "").strip().upper() for row in reader
                if row.get("airport_id")}
