"""The lake's committed tables as a warehouse that cannot read Parquet gets them: the rows of the run the lake
pointer (`weather/_current.json`) names, with the partition columns Hive adds (station_id, observation_month).
DuckDB reads the Parquet itself (macros/lake_sources.sql); PostgreSQL gets these rows copied in."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from spark_prep import lake_schema, lake_snapshots

# lake table -> the columns the as-of joins look rows up by
LAKE_TABLES = {
    "hourly_observations": ("station_id", "observed_at_utc"),
    "daily_summaries": ("station_id", "summary_date"),
    "cdo_daily_summaries": ("station_id", "summary_date"),
}
_ARROW_TYPES = {"string": pa.string(), "double": pa.float64(), "boolean": pa.bool_(), "bigint": pa.int64(),
                "date": pa.date32(), "timestamp": pa.timestamp("us")}


def committed_lake_table(lake_dir: Path, table: str) -> pa.Table:
    """The committed copy's rows in the lake schema's columns, the partition keys last; a copy committed empty
    (no file) is no rows in the same columns."""
    weather = Path(lake_dir) / "weather"
    columns = (*lake_schema.TABLES[table], *lake_schema.PARTITION_KEYS)
    if not lake_snapshots.has_parquet_files(weather, table):
        return pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in columns]).empty_table()
    names = ", ".join(f'"{c.name}"' for c in columns)
    with duckdb.connect(":memory:") as con:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(
            f"select {names} from read_parquet(?, hive_partitioning = true, hive_types_autocast = false)",
            [lake_snapshots.parquet_files(weather, table)]
        ).fetch_arrow_table()
