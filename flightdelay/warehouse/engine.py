"""What the flow needs from a warehouse, whichever engine holds it: a connection whose `execute(sql, params)`
takes `?` placeholders and explicit `begin transaction` / `commit` / `rollback` (DuckDB's own interface), and
the few operations whose SQL or client API differs per engine. Everything else the flow runs (the loader's
writes, the write-audit-publish ledger, the reconciliation, publish) is one SQL text for every engine.

The engines: `duckdb_warehouse.py` (the embedded default, a file), `postgres_warehouse.py` (a PostgreSQL
server); Redshift's statements are rendered for the aws home (flightdelay/aws/). `warehouse_for(settings)`
picks one from the backend setting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pyarrow as pa


class Warehouse(ABC):
    """One warehouse; connections are opened per step and closed after it."""

    #: what messages call it ("DuckDB file /x/y.duckdb", "PostgreSQL flight_delays on 127.0.0.1:5432")
    description: str

    @abstractmethod
    def connect(self, read_only: bool = False) -> AbstractContextManager[Any]:
        """A connection with DuckDB's interface: execute(sql, params) -> itself, fetchone, fetchall,
        executemany; autocommit outside explicit `begin transaction` ... `commit`."""

    @abstractmethod
    def row_hash_sum(self, relation: str) -> str:
        """SQL for `count(*), sum of one 60-bit hash per row` over `relation` (alias t): the fingerprint's
        per-table content; order does not matter, any changed value does."""

    @abstractmethod
    def replace_table(self, con: Any, target: str, select_sql: str) -> None:
        """Replace `target` by the rows of `select_sql`, inside the caller's transaction."""

    @abstractmethod
    def insert_arrow(self, con: Any, target: str, table: pa.Table) -> int:
        """Append the Arrow table's rows to `target` (columns by name), inside the caller's transaction."""

    @abstractmethod
    def query_batches(self, con: Any, query: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """The rows of `query`, a batch of at most `batch_rows` at a time, typed as the warehouse types them."""

    @abstractmethod
    def export_parquet(self, con: Any, query: str, path: Path) -> int:
        """Write the rows of `query` to one Parquet file, as the warehouse exports them; returns the rows."""

    def begin_snapshot(self, con: Any) -> None:
        """Begin a transaction in which every statement sees the same data: what publish fingerprints is what it
        copies, even if someone commits to the audit schema meanwhile (DuckDB's transactions always do)."""
        con.execute("begin transaction")

    def lock_source_file(self, con: Any, source_file: str) -> None:
        """Inside the caller's transaction: wait until no other load of `source_file` is in flight. The project
        lock covers one machine's DuckDB file; a server warehouse can be loaded from two machines at once."""

    @abstractmethod
    def binary_order(self, expression: str) -> str:
        """`expression` as an order-by term that sorts text by its bytes, as DuckDB always does (PostgreSQL
        sorts by the database's locale unless told): the training channels come out in one order everywhere."""

    @abstractmethod
    def expose_lake(self, lake_dir: Path) -> dict[str, int]:
        """Make the lake's committed tables readable by the dbt lake sources; returns rows per table copied."""

    def query_arrow(self, con: Any, query: str) -> pa.Table:
        batches = list(self.query_batches(con, query, 1 << 20))
        if batches:
            return pa.Table.from_batches(batches)
        return self._empty(con, query)

    @abstractmethod
    def _empty(self, con: Any, query: str) -> pa.Table:
        """The typed, empty result of `query`."""


def quoted(identifier: str) -> str:
    """A double-quoted identifier (the same rule in DuckDB, PostgreSQL and Redshift)."""
    return '"' + identifier.replace('"', '""') + '"'


def qualified(relation: str) -> str:
    """`schema.table` of our own fixed names, each part quoted."""
    return ".".join(quoted(part) for part in relation.split("."))


def warehouse_for(settings) -> Warehouse:
    """The warehouse of the configured backend: `local` -> the DuckDB file, `postgres` -> the PostgreSQL server."""
    if settings.backend == "postgres":
        from flightdelay.warehouse.postgres_warehouse import PostgresWarehouse

        return PostgresWarehouse(settings.postgres_dsn)
    from flightdelay.warehouse.duckdb_warehouse import DuckDBWarehouse

    return DuckDBWarehouse(settings.warehouse_path, settings.duckdb_memory_limit)
