"""Load BTS On-Time Reporting CSV files into `raw.flights`, in whichever warehouse the backend uses.

Every line of a file after its header ends up in exactly one place: `raw.flights` (parsed and typed),
`raw.flights_rejected` (with the physical line the record starts on and a reason naming each bad field and
its value), or the file's count of blank lines. Reloading a file replaces its rows in one transaction
together with its audit row and its reconciliation in `raw.data_quality_summary`.

This file is the transactional load, one SQL text for DuckDB and PostgreSQL (flightdelay/warehouse/engine.py);
reading and typing a file is `bts_typing.type_file` (the one rule set of bts_fields.py, the same for Redshift).
Trust boundary: only fixed identifiers from `FIELDS` reach SQL; header names are mapped to them and values
and file names are bound as parameters or arrive as Arrow data.
The names callers import from here (FIELDS, LoadError, count_lines, read_header, ...) stay importable.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from flightdelay.raw import reconciliation
from flightdelay.raw.bts_fields import FIELDS, SQL_TYPES, FieldSpec, canonical_header
from flightdelay.raw.bts_reader import (
    LoadError,
    check_layout,
    count_lines,
    read_airport_id_map,
    read_header,
    sha256_of,
)
from flightdelay.raw.bts_typing import type_file
from flightdelay.warehouse.engine import Warehouse

__all__ = [
    "DDL", "FIELDS", "FieldSpec", "FileLoad", "FlightLoader", "LoadError", "canonical_header", "check_layout",
    "count_lines", "load_flights", "read_airport_id_map", "read_header", "refuse_same_name_different_bytes",
    "sha256_of",
]

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


def _warehouse(warehouse: Warehouse | Path) -> Warehouse:
    if isinstance(warehouse, Warehouse):
        return warehouse
    from flightdelay.warehouse.duckdb_warehouse import DuckDBWarehouse

    return DuckDBWarehouse(Path(warehouse))


def _with_constant(table: pa.Table, name: str, value: object, kind: pa.DataType) -> pa.Table:
    return table.append_column(name, pa.array([value] * table.num_rows, type=kind))


class FlightLoader(AbstractContextManager):
    """One warehouse connection; `load_file` types a file (bts_typing.py), then loads it in one transaction. As a
    context manager (`with`), it is itself, closed on leaving."""

    def __init__(self, warehouse: Warehouse | Path, airport_id_map: Path | None = None):
        self.warehouse = _warehouse(warehouse)
        self.con = self.warehouse.connect()
        self.con.execute(DDL)
        self.con.execute(reconciliation.DDL)
        self.airport_codes = read_airport_id_map(Path(airport_id_map)) if airport_id_map is not None else None

    def close(self) -> None:
        self.con.close()

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

    def _load(self, path: Path, name: str, sha: str) -> FileLoad:
        typed = type_file(path, name, self.airport_codes, file_sha256=sha)
        loaded_at = datetime.now(UTC).replace(tzinfo=None)
        accepted = _with_constant(_with_constant(typed.accepted, "source_file", name, pa.string()),
                                  "loaded_at", loaded_at, pa.timestamp("us"))
        rejected = typed.rejected.select(["source_line", "rejection_reason", "raw_record"])
        rejected = _with_constant(_with_constant(rejected, "source_file", name, pa.string()),
                                  "loaded_at", loaded_at, pa.timestamp("us"))
        con = self.con
        con.execute("begin transaction")
        try:
            self.warehouse.lock_source_file(con, name)
            con.execute("delete from raw.flights where source_file = ?", [name])
            con.execute("delete from raw.flights_rejected where source_file = ?", [name])
            self.warehouse.insert_arrow(con, "raw.flights", accepted)
            self.warehouse.insert_arrow(con, "raw.flights_rejected", rejected)
            loaded = con.execute("select count(*) from raw.flights where source_file = ?", [name]).fetchone()[0]
            rejected_rows = con.execute(
                "select count(*) from raw.flights_rejected where source_file = ?", [name]).fetchone()[0]
            counts = typed.counts
            load = FileLoad(name, sha, "loaded", counts.rows_read, loaded, rejected_rows, counts.blank_lines,
                            lines_read=typed.lines_read)
            if not load.reconciles:
                raise LoadError(
                    f"{path}: reconciliation failed: read {load.rows_read} != loaded {loaded} + rejected "
                    f"{rejected_rows} + blank {load.blank_lines}"
                )
            self._audit(load)
            reconciliation.write(con, "flights", [load.counts])
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return load




def refuse_same_name_different_bytes(files: list[Path]) -> None:
    """Rows are recorded by file name: two different files of one name would replace each other's rows."""
    by_name: dict[str, Path] = {}
    for path in map(Path, files):
        other = by_name.setdefault(path.name, path)
        if other != path and other.resolve() != path.resolve() and sha256_of(other) != sha256_of(path):
            raise LoadError(f"{path} and {other}: two different files named {path.name}; rows are recorded by file "
                            "name, so one would replace the other's. Rename one (for example add the month or the "
                            "source) and load again")


def load_flights(warehouse: Warehouse | Path, files: list[Path], force: bool = False,
                 progress: bool = False, airport_id_map: Path | None = None) -> list[FileLoad]:
    """Load `files` into `warehouse` (a Warehouse, or the path of a DuckDB file)."""
    from tqdm import tqdm

    refuse_same_name_different_bytes(files)
    loads = []
    with FlightLoader(warehouse, airport_id_map) as loader:
        bar = tqdm(files, desc="loading BTS files", unit="file", disable=not progress)
        for path in bar:
            bar.set_postfix_str(Path(path).name)
            loads.append(loader.load_file(path, force=force))
    return loads
