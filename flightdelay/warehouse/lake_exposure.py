"""The lake's committed tables as a warehouse that cannot read Parquet gets them: the rows of the run the lake
pointer (`weather/_current.json`) names, with the partition columns Hive adds (station_id, observation_month).
DuckDB reads the Parquet itself (macros/lake_sources.sql); PostgreSQL gets these rows copied in."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from spark_prep import lake_snapshots

# lake table -> the columns the as-of joins look rows up by
LAKE_TABLES = {
    "hourly_observations": ("station_id", "observed_at_utc"),
    "daily_summaries": ("station_id", "summary_date"),
}


def committed_lake_table(lake_dir: Path, table: str) -> pa.Table:
    files = lake_snapshots.parquet_files(Path(lake_dir) / "weather", table)
    with duckdb.connect(":memory:") as con:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(
            "select * from read_parquet(?, hive_partitioning = true, hive_types_autocast = false)", [files]
        ).fetch_arrow_table()
