"""Load BTS On-Time Reporting CSV files into `raw.flights` with the warehouse's own bulk reader.

Every data line of a file ends up in exactly one place: `raw.flights` (parsed and typed) or
`raw.flights_rejected` (with the line number and a reason naming each bad field and its value).
Reloading a file replaces its rows in one transaction; every load is recorded in `raw.load_audit`.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb


class LoadError(ValueError):
    """A file that cannot be loaded at all (empty, unknown layout); names the file and the problem."""


@dataclass(frozen=True)
class FieldSpec:
    source: str  # BTS header name
    column: str  # raw.flights column
    kind: str  # date | hhmm | int | number | carrier | airport | text
    required: bool = False


FIELDS = (
    FieldSpec("FL_DATE", "fl_date", "date", required=True),
    FieldSpec("OP_UNIQUE_CARRIER", "op_unique_carrier", "carrier", required=True),
    FieldSpec("TAIL_NUM", "tail_num", "text"),
    FieldSpec("OP_CARRIER_FL_NUM", "op_carrier_fl_num", "int", required=True),
    FieldSpec("ORIGIN", "origin", "airport", required=True),
    FieldSpec("DEST", "dest", "airport", required=True),
    FieldSpec("CRS_DEP_TIME", "crs_dep_time", "hhmm", required=True),
    FieldSpec("DEP_TIME", "dep_time", "hhmm"),
    FieldSpec("DEP_DELAY", "dep_delay", "number"),
    FieldSpec("DEP_DEL15", "dep_del15", "number"),
    FieldSpec("CRS_ARR_TIME", "crs_arr_time", "hhmm"),
    FieldSpec("ARR_TIME", "arr_time", "hhmm"),
    FieldSpec("ARR_DELAY", "arr_delay", "number"),
    FieldSpec("CANCELLED", "cancelled", "number"),
    FieldSpec("DIVERTED", "diverted", "number"),
    FieldSpec("AIR_TIME", "air_time", "number"),
    FieldSpec("DISTANCE", "distance", "number"),
)

SQL_TYPES = {
    "date": "date",
    "hhmm": "smallint",
    "int": "integer",
    "number": "double",
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
"""


@dataclass(frozen=True)
class FileLoad:
    source_file: str
    file_sha256: str
    status: str  # loaded | unchanged | duplicate
    rows_read: int
    rows_loaded: int
    rows_rejected: int

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_rejected


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_header(path: Path) -> list[str]:
    """The file's header in canonical (modern, upper-case) BTS names."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header or not any(h.strip() for h in header):
        raise LoadError(f"{path}: file is empty; expected a BTS On-Time Reporting CSV with a header line")
    return [canonical_header(h) for h in header]


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


def _parse_expr(field: FieldSpec, present: bool) -> tuple[str, str]:
    """(typed value expression, expression that is true when a non-empty value fails to parse)."""
    if not present:
        return f"cast(null as {SQL_TYPES[field.kind]})", "false"
    v = f'nullif(trim("{field.source}"), \'\')'
    if field.kind == "date":
        parsed = "coalesce(" + ", ".join(f"try_strptime({v}, {_q(fmt)})" for fmt in DATE_FORMATS) + ")"
        return f"cast({parsed} as date)", f"({v} is not null and {parsed} is null)"
    if field.kind == "hhmm":
        as_int = f"try_cast({v} as integer)"
        valid = (f"(regexp_full_match({v}, '[0-9]{{1,4}}') and {as_int} between 0 and 2400 "
                 f"and {as_int} % 100 < 60)")
        return f"cast(case when {valid} then {as_int} end as smallint)", f"({v} is not null and not {valid})"
    if field.kind == "int":
        # BTS writes some integer fields as 12.00; accept a zero fraction only.
        as_num = f"try_cast({v} as double)"
        valid = f"({as_num} is not null and {as_num} = floor({as_num}))"
        return f"cast(case when {valid} then {as_num} end as integer)", f"({v} is not null and not {valid})"
    if field.kind == "number":
        parsed = f"try_cast({v} as double)"
        return parsed, f"({v} is not null and {parsed} is null)"
    if field.kind == "carrier":
        valid = f"regexp_full_match({v}, '[A-Z0-9]{{2,3}}')"
        return f"case when {valid} then {v} end", f"({v} is not null and not {valid})"
    if field.kind == "airport":
        valid = f"regexp_full_match({v}, '[A-Z0-9]{{3}}')"
        return f"case when {valid} then {v} end", f"({v} is not null and not {valid})"
    return v, "false"


def _reason_expr(field: FieldSpec, present: bool) -> str:
    _, invalid = _parse_expr(field, present)
    v = f'trim("{field.source}")' if present else "''"
    missing = f"(nullif({v}, '') is null)" if field.required else "false"
    return (
        f"case when {missing} then '{field.source}: required value is missing' "
        f"when {invalid} then '{field.source}: cannot parse ''' || {v} || ''' as {field.kind}' end"
    )


class DuckDBFlightLoader:
    """Bulk path: DuckDB's CSV reader, with CSV-level rejects stored by DuckDB itself."""

    def __init__(self, warehouse_path: Path, airport_id_map: Path | None = None):
        warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(warehouse_path))
        self.con.execute("set TimeZone = 'UTC'")
        self.con.execute(DDL)
        self.airport_id_map = airport_id_map
        if airport_id_map is not None:
            if not Path(airport_id_map).exists():
                raise LoadError(f"{airport_id_map}: airport id mapping file not found (FLIGHTDELAY_AIRPORT_ID_MAP)")
            self.con.execute(
                f"""create or replace temp table airport_id_map as
                select trim(cast(airport_id as varchar)) as airport_id, upper(trim(airport_code)) as airport_code
                from read_csv({_q(str(airport_id_map))}, header = true, all_varchar = true)""")

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
            "insert into raw.load_audit values (?, ?, ?, ?, ?, ?, now()::timestamp)",
            [load.source_file, load.file_sha256, load.status, load.rows_read, load.rows_loaded,
             load.rows_rejected],
        )

    def load_file(self, path: Path, force: bool = False) -> FileLoad:
        path = Path(path)
        if not path.exists():
            raise LoadError(f"{path}: no such file")
        header = read_header(path)
        check_layout(path, header, airport_ids_mapped=self.airport_id_map is not None)
        name = path.name
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
                "select rows_read, rows_loaded, rows_rejected from raw.load_audit "
                "where source_file = ? and file_sha256 = ? and status = 'loaded' order by loaded_at desc limit 1",
                [name, sha],
            ).fetchone()
            load = FileLoad(name, sha, "unchanged", *counts)
            self._audit(load)
            return load
        return self._load(path, header, name, sha)

    def _is_current(self, name: str, sha: str) -> bool:
        row = self.con.execute(
            "select file_sha256 from raw.load_audit where source_file = ? and status = 'loaded' "
            "order by loaded_at desc limit 1",
            [name],
        ).fetchone()
        return row is not None and row[0] == sha

    def _load(self, path: Path, header: list[str], name: str, sha: str) -> FileLoad:
        con = self.con
        file_columns = list(header)
        con.execute("begin transaction")
        try:
            con.execute(
                f"""create or replace temp table csv_rows as
                select *, row_number() over () as _ordinal
                from read_csv({_q(str(path))}, header = true, all_varchar = true, normalize_names = false,
                              store_rejects = true, rejects_table = 'csv_rejects', rejects_scan = 'csv_scans',
                              rejects_limit = 0)"""
            )
            # Canonical names: any capitalisation, legacy download names, and the stand-ins.
            for column in [r[0] for r in con.execute("describe csv_rows").fetchall()]:
                if column != "_ordinal" and column != canonical_header(column):
                    con.execute(f'alter table csv_rows rename column "{column}" to "{canonical_header(column)}"')
            for wanted, stand_in in FALLBACK_HEADERS.items():
                if wanted not in header and stand_in in header:
                    con.execute(f'alter table csv_rows add column "{wanted}" varchar')
                    con.execute(f'update csv_rows set "{wanted}" = "{stand_in}"')
                    header = [*header, wanted]
            for code, id_column in AIRPORT_ID_HEADERS.items():
                if code not in header and id_column in header and self.airport_id_map is not None:
                    # unmapped ids get a value that fails the airport check, so the reason names them
                    con.execute(f'alter table csv_rows add column "{code}" varchar')
                    con.execute(
                        f"""update csv_rows set "{code}" = coalesce(
                                (select airport_code from airport_id_map as m
                                 where m.airport_id = trim(csv_rows."{id_column}")),
                                'no code for {id_column} ' || trim(csv_rows."{id_column}"))
                            where nullif(trim("{id_column}"), '') is not null""")
                    header = [*header, code]
            present = {f.source: f.source in header for f in FIELDS}
            # DuckDB records one error per bad field; a line is one rejected row, with its first error.
            con.execute(
                """create or replace temp table csv_rejected_lines as
                select line, any_value(csv_line) as csv_line,
                       arg_min(error_type || ': ' || error_message, coalesce(column_idx, 0)) as reason
                from csv_rejects group by line"""
            )
            csv_rejected = con.execute("select count(*) from csv_rejected_lines").fetchone()[0]
            accepted_rows = con.execute("select count(*) from csv_rows").fetchone()[0]
            rows_read = accepted_rows + csv_rejected
            # Line numbers: data lines start at 2; lines DuckDB rejected are skipped in the ordinal.
            con.execute(
                f"""create or replace temp table line_map as
                with lines as (
                    select range as source_line from range(2, {rows_read} + 2)
                    where range not in (select line from csv_rejected_lines)
                )
                select source_line, row_number() over (order by source_line) as _ordinal from lines"""
            )
            typed = ",\n".join(f"{_parse_expr(f, present[f.source])[0]} as {f.column}" for f in FIELDS)
            reasons = ", ".join(_reason_expr(f, present[f.source]) for f in FIELDS)
            con.execute(
                f"""create or replace temp table parsed as
                select {typed},
                       concat_ws('; ', {reasons}) as rejection_reason,
                       m.source_line,
                       concat_ws(',', {", ".join(f'coalesce("{h}", {_q("")})' for h in file_columns if h)})
                           as raw_record
                from csv_rows as r
                join line_map as m using (_ordinal)"""
            )
            con.execute("delete from raw.flights where source_file = ?", [name])
            con.execute("delete from raw.flights_rejected where source_file = ?", [name])
            columns = ", ".join(f.column for f in FIELDS)
            con.execute(
                f"""insert into raw.flights
                select {columns}, {_q(name)}, source_line, now()::timestamp
                from parsed where rejection_reason = '' order by source_line"""
            )
            con.execute(
                f"""insert into raw.flights_rejected
                select {_q(name)}, source_line, rejection_reason, raw_record, now()::timestamp
                from parsed where rejection_reason <> ''
                union all
                select {_q(name)}, line, 'CSV: ' || reason, csv_line, now()::timestamp
                from csv_rejected_lines"""
            )
            loaded = con.execute(
                "select count(*) from raw.flights where source_file = ?", [name]
            ).fetchone()[0]
            rejected = con.execute(
                "select count(*) from raw.flights_rejected where source_file = ?", [name]
            ).fetchone()[0]
            load = FileLoad(name, sha, "loaded", rows_read, loaded, rejected)
            if not load.reconciles:
                raise LoadError(
                    f"{path}: reconciliation failed: read {rows_read} != loaded {loaded} + rejected {rejected}"
                )
            self._audit(load)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        finally:
            for table in ("csv_rows", "line_map", "parsed", "csv_rejected_lines", "csv_rejects", "csv_scans"):
                con.execute(f"drop table if exists {table}")
        return load


def load_flights(warehouse_path: Path, files: list[Path], force: bool = False,
                 progress: bool = False, airport_id_map: Path | None = None) -> list[FileLoad]:
    from tqdm import tqdm

    loads = []
    with DuckDBFlightLoader(warehouse_path, airport_id_map) as loader:
        bar = tqdm(files, desc="loading BTS files", unit="file", disable=not progress)
        for path in bar:
            bar.set_postfix_str(Path(path).name)
            loads.append(loader.load_file(path, force=force))
    return loads
