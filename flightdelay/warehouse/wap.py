"""Write-audit-publish ledger in the warehouse: which audit build is current, whether a validation of exactly
that build passed, and which build each publish copied.

`flightdelay build` writes the marts to `marts_audit`, `validate` gates them and `publish` copies them to
`marts`. Each is also a command of its own, so `publish` cannot rely on having just watched `validate` pass:
it reads this ledger (schema `wap`) instead.

- `wap.builds`: one row per build. It is written as `started` before anything touches `marts_audit`, so a
  failed or killed build is the current build from that moment on and no earlier pass applies to it; after
  dbt passed it becomes `built` with the fingerprint of `marts_audit`; `failed` if dbt failed.
- `wap.validations`: one row per validation of a build, `passed` false until the gates passed on exactly
  the content that build wrote.
- `wap.publications`: one row per publish, with the build it copied.

The fingerprint covers every row of every base table in `marts_audit` (name, column names and types, row
count, sum of the row hashes: order does not matter, any changed value does; each engine hashes rows its own
way, `Warehouse.row_hash_sum`). DuckDB hashes some 30 million rows a second, so it is cheap next to the
build; it is what catches dbt run by hand into `marts_audit`.

Every function takes an open connection of the backend's warehouse (DuckDB or PostgreSQL: the SQL here runs
on both); the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from flightdelay.warehouse.engine import Warehouse

SCHEMA = "wap"

DDL = """
create schema if not exists wap;
create table if not exists wap.builds (
    build_seq bigint not null,
    build_id varchar not null,
    status varchar not null,
    started_at timestamp not null,
    finished_at timestamp,
    fingerprint varchar,
    tables varchar,
    detail varchar
);
create table if not exists wap.validations (
    validation_seq bigint not null,
    build_id varchar not null,
    passed boolean not null,
    fingerprint varchar not null,
    summary varchar not null,
    validated_at timestamp not null,
    finished_at timestamp
);
create table if not exists wap.publications (
    build_id varchar not null,
    fingerprint varchar not null,
    tables varchar not null,
    published_at timestamp not null
);
alter table wap.builds add column if not exists inputs varchar;
alter table wap.builds add column if not exists rebuilt_from varchar;
alter table wap.validations add column if not exists gates varchar;
"""

STARTED, BUILT, FAILED = "started", "built", "failed"


@dataclass(frozen=True)
class Fingerprint:
    digest: str
    # table -> {"rows": n, "hash": hex}: says which tables differ when two fingerprints do
    tables: dict[str, dict[str, object]]

    def differences(self, recorded_tables: dict[str, dict[str, object]]) -> list[str]:
        """Tables that differ from a recorded fingerprint's, each with what changed."""
        out = []
        for name in sorted(set(self.tables) | set(recorded_tables)):
            now, then = self.tables.get(name), recorded_tables.get(name)
            if then is None:
                out.append(f"{name}: not there at build, now {now['rows']:,} rows")
            elif now is None:
                out.append(f"{name}: {then['rows']:,} rows at build, now gone")
            elif now != then:
                rows = "same row count" if now["rows"] == then["rows"] else f"{then['rows']:,} -> {now['rows']:,} rows"
                out.append(f"{name}: {rows}, different content")
        return out


@dataclass(frozen=True)
class Build:
    build_id: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    fingerprint: str | None
    tables: dict[str, dict[str, object]]
    detail: str | None
    inputs: str | None = None  # what dbt built from (flightdelay/flow/build_inputs.py), JSON
    rebuilt_from: str | None = None  # 'YYYY-MM-01': the first month dbt rebuilt; None: every month


@dataclass(frozen=True)
class Validation:
    build_id: str
    passed: bool
    fingerprint: str
    summary: str
    validated_at: datetime
    finished_at: datetime | None
    gates: str | None = None  # digest of the suites and gate code that ran


def _now() -> datetime:
    """UTC, without zone: the ledger's timestamps are all UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_ledger(con) -> None:
    con.execute(DDL)


def fingerprint(con, schema: str, warehouse: Warehouse) -> Fingerprint:
    """Content fingerprint of every base table in `schema` (the tables publish copies)."""
    names = [row[0] for row in con.execute(
        "select table_name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE' "
        "order by table_name", [schema]).fetchall()]
    tables: dict[str, dict[str, object]] = {}
    for name in names:
        columns = con.execute(
            "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ? "
            "order by ordinal_position", [schema, name]).fetchall()
        rows, content = con.execute(warehouse.row_hash_sum(f"{schema}.{name}")).fetchone()
        table_hash = hashlib.sha256(json.dumps([columns, rows, str(content)]).encode()).hexdigest()
        tables[name] = {"rows": int(rows), "hash": table_hash[:16]}
    digest = hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()
    return Fingerprint(digest, tables)


def start_build(con, inputs: str | None = None, rebuilt_from: str | None = None) -> str:
    """Record a new build as started, making it the current build; returns its id."""
    started = _now()
    build_id = f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    con.execute(
        "insert into wap.builds (build_seq, build_id, status, started_at, inputs, rebuilt_from) "
        "select coalesce(max(build_seq), 0) + 1, ?, ?, ?, ?, ? from wap.builds",
        [build_id, STARTED, started, inputs, rebuilt_from])
    return build_id


def finish_build(con, build_id: str, content: Fingerprint) -> None:
    con.execute(
        "update wap.builds set status = ?, finished_at = ?, fingerprint = ?, tables = ? where build_id = ?",
        [BUILT, _now(), content.digest, json.dumps(content.tables, sort_keys=True), build_id])


def fail_build(con, build_id: str, detail: str) -> None:
    con.execute("update wap.builds set status = ?, finished_at = ?, detail = ? where build_id = ?",
                [FAILED, _now(), detail, build_id])


_BUILD_COLUMNS = "build_id, status, started_at, finished_at, fingerprint, tables, detail, inputs, rebuilt_from"


def _build(row) -> Build:
    return Build(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]) if row[5] else {}, *row[6:])


def latest_build(con) -> Build | None:
    row = con.execute(f"select {_BUILD_COLUMNS} from wap.builds order by build_seq desc limit 1").fetchone()
    return _build(row) if row else None


def build(con, build_id: str) -> Build | None:
    row = con.execute(f"select {_BUILD_COLUMNS} from wap.builds where build_id = ?", [build_id]).fetchone()
    return _build(row) if row else None


def published_build(con) -> Build | None:
    """The build the last publish copied, or None before the first publish."""
    row = con.execute(
        f"select {_BUILD_COLUMNS} from wap.builds where build_id = (select build_id from wap.publications "
        "order by published_at desc limit 1)").fetchone()
    return _build(row) if row else None


def builds_after(con, build_id: str | None) -> list[Build]:
    """Every build started after `build_id` (after none: every build), oldest first."""
    return [_build(row) for row in con.execute(
        f"select {_BUILD_COLUMNS} from wap.builds where build_seq > coalesce((select max(build_seq) from wap.builds "
        "where build_id = ?), 0) order by build_seq", [build_id]).fetchall()]


def start_validation(con, build_id: str, content_digest: str, gates: str | None = None) -> int:
    """Record a validation of `build_id` as started (not passed: a killed validation passes nothing)."""
    return con.execute(
        "insert into wap.validations (validation_seq, build_id, passed, fingerprint, summary, validated_at, gates) "
        "select coalesce(max(validation_seq), 0) + 1, ?, false, ?, 'started, not finished', ?, ? "
        "from wap.validations returning validation_seq",
        [build_id, content_digest, _now(), gates]).fetchone()[0]


def finish_validation(con, validation_seq: int, passed: bool, summary: str) -> None:
    con.execute("update wap.validations set passed = ?, summary = ?, finished_at = ? where validation_seq = ?",
                [passed, summary, _now(), validation_seq])


def latest_validation(con, build_id: str) -> Validation | None:
    row = con.execute(
        "select build_id, passed, fingerprint, summary, validated_at, finished_at, gates from wap.validations "
        "where build_id = ? order by validation_seq desc limit 1", [build_id]).fetchone()
    return Validation(*row) if row else None


def record_publication(con, build_id: str, content: Fingerprint) -> None:
    con.execute("insert into wap.publications values (?, ?, ?, ?)",
                [build_id, content.digest, json.dumps(content.tables, sort_keys=True), _now()])
