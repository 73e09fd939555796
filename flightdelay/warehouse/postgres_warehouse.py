"""A PostgreSQL server as the warehouse. Rows go in with `COPY ... FROM STDIN` and come out with
`COPY (query) TO STDOUT` (CSV, typed again on the way into Arrow from the query's column types), so neither
direction moves one Python object per value.

The connection is psycopg2's, wrapped to DuckDB's interface (`?` placeholders, execute returning itself) and in
autocommit, so the flow's explicit `begin transaction` ... `commit` are the transactions, as on DuckDB.
PostgreSQL cannot read Parquet, so the committed lake tables are copied in as `weather.*` (`expose_lake`):
what Spectrum's external tables are on Redshift.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flightdelay.warehouse.engine import Warehouse, qualified, quoted

# PostgreSQL type OID -> Arrow type; a column of another type is refused rather than guessed
ARROW_TYPES = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 700: pa.float32(), 701: pa.float64(),
    1700: pa.float64(), 25: pa.string(), 1043: pa.string(), 1042: pa.string(), 1082: pa.date32(),
    1114: pa.timestamp("us"), 1184: pa.timestamp("us", tz="UTC"),
}
# Arrow type -> PostgreSQL column type, for tables created from Arrow (the lake's weather tables)
PG_TYPES = {
    pa.string(): "text", pa.large_string(): "text", pa.int64(): "bigint", pa.int32(): "integer",
    pa.int16(): "smallint", pa.float64(): "double precision", pa.float32(): "real", pa.bool_(): "boolean",
    pa.date32(): "date",
}
_PLACEHOLDER = re.compile(r"\?")


class WarehouseUnreachable(ValueError):
    """The server cannot be reached: says which settings name it and how to start one."""


class PostgresConnection(AbstractContextManager):
    """psycopg2 with DuckDB's calling convention, so the flow's SQL runs unchanged."""

    def __init__(self, dsn: str):
        import psycopg2

        try:
            self.raw = psycopg2.connect(dsn)
        except psycopg2.OperationalError as failure:
            # a ValueError, which the CLI reports as a message, not a traceback
            raise WarehouseUnreachable(
                f"cannot reach the PostgreSQL warehouse (FLIGHTDELAY_BACKEND=postgres): {str(failure).strip()}. "
                "Start one with `scripts/local_postgres.py start DIR` (README: the postgres home) or point "
                "FLIGHTDELAY_PG_HOST/PORT/USER/PASSWORD/DATABASE at yours") from None
        self.raw.autocommit = True
        self.cursor = self.raw.cursor()
        # The fingerprint hashes each row's text, and its text follows these settings: fixed here, not taken from
        # whatever the database or role defaults to (a lower extra_float_digits would hide a changed value).
        self.cursor.execute("set time zone 'UTC'; set extra_float_digits = 3; set datestyle = 'ISO, MDY'; "
                            "set intervalstyle = 'postgres'")

    @staticmethod
    def _native(sql: str, params: Any) -> str:
        return _PLACEHOLDER.sub("%s", sql.replace("%", "%%")) if params is not None else sql

    def execute(self, sql: str, params: Any = None) -> PostgresConnection:
        self.cursor.execute(self._native(sql, params), params)
        return self

    def executemany(self, sql: str, rows: list) -> PostgresConnection:
        self.cursor.executemany(self._native(sql, rows), rows)
        return self

    def fetchone(self) -> tuple | None:
        return self.cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self.cursor.fetchall()

    def close(self) -> None:
        self.raw.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


class PostgresWarehouse(Warehouse):
    def __init__(self, dsn: str):
        self.dsn = dsn
        from psycopg2.extensions import parse_dsn

        shown = parse_dsn(dsn)
        self.description = (f"PostgreSQL database {shown.get('dbname', '?')} on "
                            f"{shown.get('host', 'localhost')}:{shown.get('port', '5432')}")

    def connect(self, read_only: bool = False) -> PostgresConnection:
        return PostgresConnection(self.dsn)

    def row_hash_sum(self, relation: str) -> str:
        # the first 60 bits of the md5 of the row's text: a bigint, so the sum is exact
        return (f"select count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0) "
                f"from {qualified(relation)} as t")

    def begin_snapshot(self, con: PostgresConnection) -> None:
        # read committed (the default) gives every statement a fresh view: a commit between the fingerprint and
        # the copy would be published unvalidated
        con.execute("begin transaction isolation level repeatable read")

    def lock_source_file(self, con: PostgresConnection, source_file: str) -> None:
        # two loads of one file would each delete nothing, insert its rows and count only its own
        con.execute("select pg_advisory_xact_lock(hashtextextended(?, 0))", [f"raw.flights:{source_file}"])

    def binary_order(self, expression: str) -> str:
        return f'{expression} collate "C"'

    def replace_table(self, con: PostgresConnection, target: str, select_sql: str) -> None:
        # transactional DDL: inside the caller's transaction, readers see the old table or the new one
        con.execute(f"drop table if exists {qualified(target)}")
        con.execute(f"create table {qualified(target)} as {select_sql}")

    def insert_arrow(self, con: PostgresConnection, target: str, table: pa.Table) -> int:
        if table.num_rows:
            # Arrow's CSV quotes every string and leaves nulls unquoted and empty: exactly PostgreSQL's CSV
            buffer = io.BytesIO()
            pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
            buffer.seek(0)
            columns = ", ".join(quoted(name) for name in table.column_names)
            con.cursor.copy_expert(f"copy {qualified(target)} ({columns}) from stdin with (format csv)", buffer)
        return table.num_rows

    def _columns(self, con: PostgresConnection, query: str) -> list[tuple[str, int]]:
        con.cursor.execute(f"select * from ({query}) as q limit 0")
        return [(column.name, column.type_code) for column in con.cursor.description]

    def _schema(self, columns: list[tuple[str, int]], query: str) -> pa.Schema:
        unknown = [f"{name} (type oid {oid})" for name, oid in columns if oid not in ARROW_TYPES]
        if unknown:
            raise ValueError(f"no Arrow type for {', '.join(unknown)} in: {query[:200]}")
        return pa.schema([(name, ARROW_TYPES[oid]) for name, oid in columns])

    def _copy_out(self, con: PostgresConnection, query: str, columns: list[tuple[str, int]], handle) -> None:
        # timestamptz as UTC wall time: Arrow's CSV reader does not take PostgreSQL's `+00` offsets
        selected = ", ".join(f"q.{quoted(name)} at time zone 'UTC'" if oid == 1184 else f"q.{quoted(name)}"
                             for name, oid in columns)
        con.cursor.copy_expert(f"copy (select {selected} from ({query}) as q) to stdout with (format csv)", handle)

    def query_batches(self, con: PostgresConnection, query: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        columns = self._columns(con, query)
        yield from self._batches(con, query, columns, self._schema(columns, query), batch_rows)

    def _batches(self, con: PostgresConnection, query: str, columns: list[tuple[str, int]], schema: pa.Schema,
                 batch_rows: int) -> Iterator[pa.RecordBatch]:
        with tempfile.TemporaryFile() as spool:
            self._copy_out(con, query, columns, spool)
            if not spool.tell():  # no rows: Arrow's CSV reader refuses an empty file
                return
            spool.seek(0)
            reader = pacsv.open_csv(
                spool,
                read_options=pacsv.ReadOptions(column_names=schema.names, block_size=1 << 24),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={f.name: (pa.timestamp("us") if pa.types.is_timestamp(f.type) else f.type)
                                  for f in schema},
                    true_values=["t"], false_values=["f"], null_values=[""], strings_can_be_null=True,
                    quoted_strings_can_be_null=False),
            )
            pending: list[pa.RecordBatch] = []
            rows = 0
            for batch in reader:
                batch = pa.RecordBatch.from_arrays(
                    [column.cast(field.type) for column, field in zip(batch.columns, schema, strict=True)],
                    schema=schema)
                pending.append(batch)
                rows += batch.num_rows
                if rows >= batch_rows:
                    yield from pa.Table.from_batches(pending, schema).to_batches(max_chunksize=batch_rows)
                    pending, rows = [], 0
            if pending:
                yield from pa.Table.from_batches(pending, schema).to_batches(max_chunksize=batch_rows)

    def _empty(self, con: PostgresConnection, query: str) -> pa.Table:
        return self._schema(self._columns(con, query), query).empty_table()

    def export_parquet(self, con: PostgresConnection, query: str, path: Path) -> int:
        columns = self._columns(con, query)
        schema = self._schema(columns, query)
        rows = 0
        with pq.ParquetWriter(path, schema) as writer:
            for batch in self._batches(con, query, columns, schema, 1 << 18):
                writer.write_batch(batch)
                rows += batch.num_rows
        return rows

    def create_table_from_arrow(self, con: PostgresConnection, target: str, schema: pa.Schema) -> None:
        def pg_type(field: pa.Field) -> str:
            if pa.types.is_timestamp(field.type):
                return "timestamptz" if field.type.tz else "timestamp"
            if field.type not in PG_TYPES:
                raise ValueError(f"{target}.{field.name}: no PostgreSQL type for Arrow type {field.type}")
            return PG_TYPES[field.type]

        con.execute(f"drop table if exists {qualified(target)}")
        con.execute(f"create table {qualified(target)} ("
                    + ", ".join(f"{quoted(f.name)} {pg_type(f)}" for f in schema) + ")")

    def expose_lake(self, lake_dir: Path) -> dict[str, int]:
        """Copy each committed lake table into `weather.<table>`, all in one transaction (readers see the previous
        run's tables or this one's), with the indexes the as-of joins use; returns rows per table."""
        from flightdelay.warehouse.lake_exposure import LAKE_TABLES, committed_lake_table

        counts: dict[str, int] = {}
        with self.connect() as con:
            con.execute("begin transaction")
            try:
                con.execute("create schema if not exists weather")
                for table, index_columns in LAKE_TABLES.items():
                    rows = committed_lake_table(lake_dir, table)
                    target = f"weather.{table}"
                    self.create_table_from_arrow(con, target, rows.schema)
                    for start in range(0, rows.num_rows, 1 << 18):
                        self.insert_arrow(con, target, rows.slice(start, 1 << 18))
                    con.execute(f"create index on {qualified(target)} ("
                                + ", ".join(quoted(c) for c in index_columns) + ")")
                    copied = con.execute(f"select count(*) from {qualified(target)}").fetchone()[0]
                    if copied != rows.num_rows:
                        raise RuntimeError(f"{target}: copied {copied} rows, the lake has {rows.num_rows}")
                    counts[target] = copied
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
            for table in counts:
                con.execute(f"analyze {qualified(table)}")
        return counts
