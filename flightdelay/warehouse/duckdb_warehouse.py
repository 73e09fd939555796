"""The embedded warehouse: one DuckDB file. Its connection is DuckDB's own; Parquet is written by `COPY ... TO`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from flightdelay.warehouse.engine import Warehouse, qualified, quoted


class DuckDBWarehouse(Warehouse):
    def __init__(self, path: Path, memory_limit: str = "4GB"):
        self.path = Path(path)
        self.memory_limit = memory_limit
        self.description = f"DuckDB file {self.path}"

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.path), read_only=read_only, config={"memory_limit": self.memory_limit})
        con.execute("set TimeZone = 'UTC'")
        return con

    def row_hash_sum(self, relation: str) -> str:
        return f"select count(*), coalesce(sum(hash(t)), 0) from {qualified(relation)} as t"

    def replace_table(self, con: duckdb.DuckDBPyConnection, target: str, select_sql: str) -> None:
        con.execute(f"create or replace table {qualified(target)} as {select_sql}")

    def insert_arrow(self, con: duckdb.DuckDBPyConnection, target: str, table: pa.Table) -> int:
        if table.num_rows:
            columns = ", ".join(quoted(name) for name in table.column_names)
            con.register("arrow_rows", table)
            try:
                con.execute(f"insert into {qualified(target)} ({columns}) select {columns} from arrow_rows")
            finally:
                con.unregister("arrow_rows")
        return table.num_rows

    def query_batches(self, con: duckdb.DuckDBPyConnection, query: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        yield from con.execute(query).fetch_record_batch(batch_rows)

    def _empty(self, con: duckdb.DuckDBPyConnection, query: str) -> pa.Table:
        return con.execute(query).fetch_arrow_table()

    def export_parquet(self, con: duckdb.DuckDBPyConnection, query: str, path: Path) -> int:
        con.execute(f"copy ({query}) to '{str(path).replace(chr(39), chr(39) * 2)}' (format parquet)")
        return pq.ParquetFile(path).metadata.num_rows  # not read_parquet: it would take the path as a glob

    def expose_lake(self, lake_dir: Path) -> dict[str, int]:
        """Nothing to copy: the dbt lake sources read the committed Parquet files themselves."""
        return {}

    def binary_order(self, expression: str) -> str:
        return expression
