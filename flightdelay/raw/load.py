"""Load BTS On-Time Reporting CSV files into `raw.flights`.

Every line of a file after its header ends up in exactly one place: `raw.flights` (parsed and typed),
`raw.flights_rejected` (with the physical line the record starts on and a reason naming each bad field and
its value), or the file's count of blank lines. Reloading a file replaces its rows in one transaction
together with its audit row and its reconciliation in `raw.data_quality_summary`.

Trust boundary: the file is split into records by `raw_contracts.records` in Python (exact physical line
numbers, one bad record never sinks the file, the path read as itself and never as a glob). Only fixed
identifiers from `FIELDS` reach SQL; header names are mapped to them and values and file names are bound
as parameters or arrive as Arrow data.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa

from flightdelay.raw import reconciliation
from raw_contracts.ranges import FLIGHT_RANGES
from raw_contracts.records import BadRecord, CsvRecords, UnreadableFile, preview


class LoadError(ValueError):
    """A file that cannot be loaded at all (empty, unknown layout); names the file and the problem."""


@dataclass(frozen=True)
class FieldSpec:
    source: str  # BTS header name
    column: str  # raw.flights column
    kind: str  # date | hhmm | int | number | flag | carrier | airport | text
    required: bool = False


FIELDS = (
    FieldSpec("FL_DATE", "fl_date", "date", required=True),
    FieldSpec("OP_UNIQUE_CARRIER", "op_unique_carrier", "carrier", required=True),
    FieldSpec("TAIL_NUM", "tail_num", "text"),
    # Optional: many extracts (course and Kaggle files, the BTS form with few boxes ticked) leave it out;
    # staging then keys the flight by route and scheduled minute (see stg_bts__flights).
    FieldSpec("OP_CARRIER_FL_NUM", "op_carrier_fl_num", "int"),
    FieldSpec("ORIGIN", "origin", "airport", required=True),
    FieldSpec("DEST", "dest", "airport", required=True),
    FieldSpec("CRS_DEP_TIME", "crs_dep_time", "hhmm", required=True),
    FieldSpec("DEP_TIME", "dep_time", "hhmm"),
    FieldSpec("DEP_DELAY", "dep_delay", "number"),
    FieldSpec("DEP_DEL15", "dep_del15", "flag"),
    FieldSpec("CRS_ARR_TIME", "crs_arr_time", "hhmm"),
    FieldSpec("ARR_TIME", "arr_time", "hhmm"),
    FieldSpec("ARR_DELAY", "arr_delay", "number"),
    FieldSpec("CANCELLED", "cancelled", "flag"),
    FieldSpec("DIVERTED", "diverted", "flag"),
    FieldSpec("AIR_TIME", "air_time", "number"),
    FieldSpec("DISTANCE", "distance", "number"),
)

SQL_TYPES = {
    "date": "date",
    "hhmm": "smallint",
    "int": "integer",
    "number": "double",
    "flag": "double",
    "carrier": "varchar",
    "airport": "varchar",
    "text": "varchar",
}

# Header names of the legacy "On_Time_On_Time_Performance" downloads (and the older UniqueCarrier-era
# names) -> the modern names used above. Matched case-insensitively.
LEGACY_HEADERS = {
    "FLIGHTDATE": "FL_DATE",
    "REPORTING_AIRLINE": "OP_UNIQUE_CARRIER",
    "UNIQUECARRIER": "OP_UNIQUE_CARRIER",
    "UNIQUE_CARRIER": "OP_UNIQUE_CARRIER",
    "TAIL_NUMBER": "TAIL_NUM",
    "TAILNUM": "TAIL_NUM",
    "FLIGHT_NUMBER_REPORTING_AIRLINE": "OP_CARRIER_FL_NUM",
    "FLIGHTNUM": "OP_CARRIER_FL_NUM",
    "FL_NUM": "OP_CARRIER_FL_NUM",
    "CRSDEPTIME": "CRS_DEP_TIME",
    "DEPTIME": "DEP_TIME",
    "DEPDELAY": "DEP_DELAY",
    "DEPDELAYMINUTES": "DEP_DELAY_NEW",
    "DEPDEL15": "DEP_DEL15",
    "CRSARRTIME": "CRS_ARR_TIME",
    "ARRTIME": "ARR_TIME",
    "ARRDELAY": "ARR_DELAY",
    "ARRDELAYMINUTES": "ARR_DELAY_NEW",
    "AIRTIME": "AIR_TIME",
    "ORIGINAIRPORTID": "ORIGIN_AIRPORT_ID",
    "DESTAIRPORTID": "DEST_AIRPORT_ID",
}
# When a download has only the "_NEW" delays (early departures/arrivals set to 0), they stand in for
# the signed delays: the 15-minute label is the same, mean delays are not (recorded in load_audit).
FALLBACK_HEADERS = {"DEP_DELAY": "DEP_DELAY_NEW", "ARR_DELAY": "ARR_DELAY_NEW"}
# Numeric airport ids (BTS AIRPORT_ID) that can stand in for ORIGIN / DEST through a mapping file.
AIRPORT_ID_HEADERS = {"ORIGIN": "ORIGIN_AIRPORT_ID", "DEST": "DEST_AIRPORT_ID"}


def canonical_header(name: str) -> str:
    upper = name.strip().upper()
    return LEGACY_HEADERS.get(upper, upper)


# Date layouts seen in BTS downloads: the form's own, spreadsheet re-saves, ISO.
DATE_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M", "%Y-%m-%d")

DDL = f"""
create schema if not exists raw;
create table if not exists raw.flights (
    {", ".join(f"{f.column} {SQL_TYPES[f.kind]}" for f in FIELDS)},
    source_file varchar not null,
    source_line bigint not null,
    loaded_at timestamp not null
);
create table if not exists raw.flights_rejected (
    source_file varchar not null,
    source_line bigint not null,
    rejection_reason varchar not null,
    raw_record varchar,
    loaded_at timestamp not null
);
create table if not exists raw.load_audit (
    source_file varchar not null,
    file_sha256 varchar not null,
    status varchar not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_rejected bigint not null,
    loaded_at timestamp not null
);
alter table raw.load_audit add column if not exists blank_lines bigint default 0;
alter table raw.load_audit add column if not exists lines_read bigint;
"""
NUMBER_SYNTAX = {
    "number": r"(?i)[+-]?(nan|inf|infinity|([0-9]+([.][0-9]*)?|[.][0-9]+)(e[+-]?[0-9]+)?)",
    "int": r"(?i)[+-]?(nan|inf|infinity|[0-9]+([.]0*)?)",
    "flag": r"[0-9]+([.][0-9]*)?",
}
# Plausible flight dates: BTS reporting began in October 1987.
DATE_RANGE = ("1987-10-01", "2099-12-31")
BATCH_RECORDS = 200_000


@dataclass(frozen=True)
class FileLoad:
    source_file: str
    file_sha256: str
    status: str  # loaded | unchanged | duplicate of <name>
    rows_read: int  # lines after the header: records + blank lines (a quoted line break joins two lines)
    rows_loaded: int
    rows_rejected: int
    blank_lines: int = 0
    lines_read: int | None = None  # physical lines in the file, the header included

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_rejected + self.blank_lines

    @property
    def counts(self) -> reconciliation.FileCounts:
        return reconciliation.FileCounts(self.source_file, self.rows_read, self.rows_loaded, self.rows_rejected,
                                         self.blank_lines)


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
    missing = [f.source for f in FIELDS if f.required and f.source not in header
               and not (airport_ids_mapped and AIRPORT_ID_HEADERS.get(f.source) in header)]
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


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _shown(value_sql: str) -> str:
    """SQL for a value as a reason shows it: in quotes, cut to 60 characters."""
    return (f"'''' || left({value_sql}, 60) || case when length({value_sql}) > 60 then '...' else '' end "
            "|| ''''")


def _rule(field: FieldSpec, label: str | None) -> tuple[str, str]:
    """(typed value expression, reason expression: null when the value is fine) over the temp table
    `landed`, whose columns are named after FIELDS: no name taken from a file reaches this SQL. `label` is
    the column the value came from, as the reason names it (DEP_DELAY_NEW standing in for DEP_DELAY);
    None when the file lacks the field."""
    if label is None:
        reason = f"'{field.source}: required value is missing'" if field.required else "null"
        return f"cast(null as {SQL_TYPES[field.kind]})", reason
    v = f"nullif(trim(\"{field.column}\"), '')"
    shown = _shown(v)
    name = _q(f"{label}: ")
    cannot = f"{name} || 'cannot parse ' || {shown} || ' as {field.kind}'"
    if field.kind == "date":
        parsed = "cast(coalesce(" + ", ".join(f"try_strptime({v}, {_q(fmt)})" for fmt in DATE_FORMATS) + ") as date)"
        low, high = DATE_RANGE
        valid = f"{parsed} between date '{low}' and date '{high}'"
        typed = f"case when {valid} then {parsed} end"
        reason = (f"case when {parsed} is null then {cannot} when not ({valid}) then {name} || {shown} "
                  f"|| ' is outside the plausible range [{low}, {high}]' end")
    elif field.kind == "hhmm":
        as_int = f"try_cast({v} as integer)"
        valid = (f"(regexp_full_match({v}, '[0-9]{{1,4}}') and {as_int} between 0 and 2400 "
                 f"and {as_int} % 100 < 60)")
        typed = f"cast(case when {valid} then {as_int} end as smallint)"
        reason = f"case when not {valid} then {cannot} end"
    elif field.kind in ("int", "number", "flag"):
        # DuckDB's cast also takes 1_000 and trailing no-break spaces: only plain decimals (and the non-finite
        # spellings, to name them) reach it
        parsed = f"case when regexp_full_match({v}, '{NUMBER_SYNTAX[field.kind]}') then try_cast({v} as double) end"
        if field.kind == "flag":
            valid, expected = f"{parsed} in (0, 1)", "0 or 1"
        else:
            low, high = FLIGHT_RANGES.get(field.column, (-1e300, 1e300))
            valid = f"isfinite({parsed}) and {parsed} between {low!r} and {high!r}"
            expected = f"inside the plausible range [{low:g}, {high:g}]"
        if field.kind == "int":
            # BTS writes some integer fields as 12.00; accept a zero fraction only.
            valid = f"{valid} and {parsed} = floor({parsed})"
            expected = f"a whole number {expected}"
        typed = f"case when {valid} then {parsed} end"
        if field.kind == "int":
            typed = f"try_cast({typed} as integer)"
        reason = (f"case when {parsed} is null then {cannot} "
                  f"when not isfinite({parsed}) then {name} || {shown} || ' is not a finite number' "
                  f"when not ({valid}) then {name} || {shown} || ' is not {expected}' end")
    else:
        pattern = {"carrier": "[A-Z0-9]{2,3}", "airport": "[A-Z0-9]{3}", "text": "[!-~]{1,10}"}[field.kind]
        valid = f"regexp_full_match({v}, '{pattern}')"
        typed = f"case when {valid} then {v} end"
        reason = f"case when not {valid} then {cannot} end"
    if field.required:
        reason = f"case when {v} is null then {name} || 'required value is missing' else {reason} end"
    else:
        reason = f"case when {v} is not null then {reason} end"
    return typed, reason


@dataclass(frozen=True)
class _Layout:
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


def _layout(path: Path, header: list[str], airport_ids_mapped: bool) -> _Layout:
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
    return _Layout(header, positions, mapped)


def _arrow(columns: list[list], names: list[str], types: list[pa.DataType]) -> pa.Table:
    return pa.Table.from_arrays([pa.array(values, type=kind) for values, kind in zip(columns, types, strict=True)],
                                names=names)


class DuckDBFlightLoader:
    """One warehouse connection; `load_file` reads a file record by record, then loads it in one transaction."""

    def __init__(self, warehouse_path: Path, airport_id_map: Path | None = None):
        warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(warehouse_path))
        self.con.execute("set TimeZone = 'UTC'")
        self.con.execute(DDL)
        self.con.execute(reconciliation.DDL)
        self.airport_codes = read_airport_id_map(Path(airport_id_map)) if airport_id_map is not None else None

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckDBFlightLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _previous(self, sha: str) -> list[tuple[str, str]]:
        return self.con.execute(
            "select distinct source_file, status from raw.load_audit where file_sha256 = ? and status = 'loaded'",
            [sha],
        ).fetchall()

    def _audit(self, load: FileLoad) -> None:
        self.con.execute(
            "insert into raw.load_audit (source_file, file_sha256, status, rows_read, rows_loaded, rows_rejected, "
            "loaded_at, blank_lines, lines_read) values (?, ?, ?, ?, ?, ?, now()::timestamp, ?, ?)",
            [load.source_file, load.file_sha256, load.status, load.rows_read, load.rows_loaded,
             load.rows_rejected, load.blank_lines, load.lines_read],
        )

    def load_file(self, path: Path, force: bool = False, source_name: str | None = None) -> FileLoad:
        """Load one file. `source_name` is the name its rows are recorded under (default: the file's own
        name; `ingest` loads a temporary copy under the name it lands as)."""
        path = Path(path)
        if not path.is_file():
            raise LoadError(f"{path}: no such file")
        header = read_header(path)
        check_layout(path, header, airport_ids_mapped=self.airport_codes is not None)
        name = source_name or path.name
        sha = sha256_of(path)

        previous = self._previous(sha)
        same_name = [p for p in previous if p[0] == name]
        other_name = [p for p in previous if p[0] != name]
        if other_name and not same_name:
            # The same bytes under another name: loading would duplicate every flight.
            load = FileLoad(name, sha, f"duplicate of {other_name[0][0]}", 0, 0, 0)
            self._audit(load)
            return load
        if same_name and not force and self._is_current(name, sha):
            counts = self.con.execute(
                "select rows_read, rows_loaded, rows_rejected, coalesce(blank_lines, 0), lines_read "
                "from raw.load_audit where source_file = ? and file_sha256 = ? and status = 'loaded' "
                "order by loaded_at desc limit 1",
                [name, sha],
            ).fetchone()
            load = FileLoad(name, sha, "unchanged", *counts)
            self.con.execute("begin transaction")
            self._audit(load)
            reconciliation.write(self.con, "flights", [load.counts])  # checked again in this run
            self.con.execute("commit")
            return load
        return self._load(path, name, sha)

    def _is_current(self, name: str, sha: str) -> bool:
        row = self.con.execute(
            "select file_sha256 from raw.load_audit where source_file = ? and status = 'loaded' "
            "order by loaded_at desc limit 1",
            [name],
        ).fetchone()
        return row is not None and row[0] == sha

    # ------------------------------------------------------------ reading

    def _stage(self, path: Path) -> tuple[_Layout, CsvRecords]:
        """Read the file into the temp tables `landed` (the used fields as text, under FIELDS column names)
        and `read_rejects` (records that could not be read, with the reason)."""
        con = self.con
        with path.open("rb") as handle:
            records = open_records(path, handle)
            layout = _layout(path, [canonical_header(h) for h in records.header], self.airport_codes is not None)
            columns = layout.columns
            con.execute("create or replace temp table landed (source_line bigint, raw_record varchar"
                        + "".join(f', "{c}" varchar' for c in columns) + ")")
            con.execute("create or replace temp table read_rejects "
                        "(source_line bigint, rejection_reason varchar, raw_record varchar)")
            landed_names = ["source_line", "raw_record", *columns]
            landed_types = [pa.int64(), *[pa.string()] * (1 + len(columns))]
            for landed, rejects in self._batches(records, layout):
                if landed[0]:
                    con.register("landed_batch", _arrow(landed, landed_names, landed_types))
                    con.execute("insert into landed select * from landed_batch")
                    con.unregister("landed_batch")
                if rejects[0]:
                    con.register("reject_batch", _arrow(rejects, ["source_line", "rejection_reason", "raw_record"],
                                                        [pa.int64(), pa.string(), pa.string()]))
                    con.execute("insert into read_rejects select * from reject_batch")
                    con.unregister("reject_batch")
        return layout, records

    def _batches(self, records: CsvRecords, layout: _Layout) -> Iterator[tuple[list[list], list[list]]]:
        used = layout.used
        positions = list(layout.positions.values())
        mapped = list(layout.mapped_ids.values())
        codes = self.airport_codes or {}
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

    # ------------------------------------------------------------ loading

    def _load(self, path: Path, name: str, sha: str) -> FileLoad:
        con = self.con
        try:
            layout, records = self._stage(path)
            counts = records.counts
            rules = [_rule(f, layout.label(f)) for f in FIELDS]
            typed = ",\n".join(f"{expr} as {f.column}" for f, (expr, _) in zip(FIELDS, rules, strict=True))
            reasons = ", ".join(reason for _, reason in rules)
            con.execute(
                f"""create or replace temp table parsed as
                select {typed},
                       concat_ws('; ', {reasons}) as rejection_reason,
                       source_line,
                       raw_record
                from landed"""
            )
            columns = ", ".join(f.column for f in FIELDS)
            con.execute("begin transaction")
            try:
                con.execute("delete from raw.flights where source_file = ?", [name])
                con.execute("delete from raw.flights_rejected where source_file = ?", [name])
                con.execute(
                    f"""insert into raw.flights
                    select {columns}, ?, source_line, now()::timestamp
                    from parsed where rejection_reason = '' order by source_line""", [name])
                con.execute(
                    """insert into raw.flights_rejected
                    select ?, source_line, rejection_reason, raw_record, now()::timestamp
                    from parsed where rejection_reason <> ''
                    union all
                    select ?, source_line, rejection_reason, raw_record, now()::timestamp
                    from read_rejects""", [name, name])
                loaded = con.execute("select count(*) from raw.flights where source_file = ?", [name]).fetchone()[0]
                rejected = con.execute(
                    "select count(*) from raw.flights_rejected where source_file = ?", [name]).fetchone()[0]
                load = FileLoad(name, sha, "loaded", counts.rows_read, loaded, rejected, counts.blank_lines,
                                lines_read=count_lines(path))
                if not load.reconciles:
                    raise LoadError(
                        f"{path}: reconciliation failed: read {load.rows_read} != loaded {loaded} + rejected "
                        f"{rejected} + blank {load.blank_lines}"
                    )
                self._audit(load)
                reconciliation.write(con, "flights", [load.counts])
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
        finally:
            for table in ("landed", "read_rejects", "parsed"):
                con.execute(f"drop table if exists {table}")
        return load


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


def refuse_same_name_different_bytes(files: list[Path]) -> None:
    """Rows are recorded by file name: two different files of one name would replace each other's rows."""
    by_name: dict[str, Path] = {}
    for path in map(Path, files):
        other = by_name.setdefault(path.name, path)
        if other != path and other.resolve() != path.resolve() and sha256_of(other) != sha256_of(path):
            raise LoadError(f"{path} and {other}: two different files named {path.name}; rows are recorded by file "
                            "name, so one would replace the other's. Rename one (for example add the month or the "
                            "source) and load again")


def load_flights(warehouse_path: Path, files: list[Path], force: bool = False,
                 progress: bool = False, airport_id_map: Path | None = None) -> list[FileLoad]:
    from tqdm import tqdm

    refuse_same_name_different_bytes(files)
    loads = []
    with DuckDBFlightLoader(warehouse_path, airport_id_map) as loader:
        bar = tqdm(files, desc="loading BTS files", unit="file", disable=not progress)
        for path in bar:
            bar.set_postfix_str(Path(path).name)
            loads.append(loader.load_file(path, force=force))
    return loads
