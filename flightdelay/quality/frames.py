"""The pandas frames each boundary's suites validate: the raw files (the loader's audit against the landed
files), the weather lake, a mart in the audit schema, and the training channel.

GX's SQL datasource cannot read DuckDB here (it closes the connection before fetching), so each asset is
read into pandas by DuckDB and validated through GX's pandas dataframe datasource (gates.py).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from flightdelay.raw.load import count_lines
from flightdelay.settings import Settings
from raw_contracts.records import CsvRecords
from spark_prep import lake_snapshots

# What the training-channel gate reads; the wide feature columns stay on disk for ml/train.py.
TRAINING_GATE_COLUMNS = ["flight_id", "flight_date", "is_dep_delayed_15"]


def _count_data_lines(path) -> int | None:
    if not path.exists():
        return None
    with path.open("rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
        handle.seek(max(path.stat().st_size - 1, 0))
        ends_with_newline = handle.read(1) == b"\n"
    return lines + (0 if ends_with_newline else 1) - 1  # minus the header


def _count_records(path: Path) -> int | None:
    """Records and blank lines after the header as the LCD reader splits them (a quoted line break joins two
    lines into one record), read again from the landed file."""
    if not path.exists():
        return None
    with path.open("rb") as handle:
        reader = CsvRecords(handle)
        for _ in reader:
            pass
    return reader.counts.rows_read


def raw_files_frame(settings: Settings, warehouse) -> pd.DataFrame:
    """The loader's audit and reconciliation (one row per file, read from whichever warehouse holds them),
    joined in an in-memory DuckDB, beside the landed files counted again."""
    con = duckdb.connect(":memory:")
    con.execute("set TimeZone = 'UTC'")
    con.execute("create schema raw")
    with warehouse.connect(read_only=True) as source:
        for table in ("load_audit", "data_quality_summary"):
            con.register("copied", warehouse.query_arrow(source, f"select * from raw.{table}"))
            con.execute(f"create table raw.{table} as select * from copied")
            con.unregister("copied")
    frame = con.execute("""
        with loads as (
            select source_file, file_sha256, rows_read, lines_read, loaded_at
            from raw.load_audit where status = 'loaded'
        ),
        latest as (
            select source_file, arg_max(file_sha256, loaded_at) as file_sha256, max(loaded_at) as loaded_at,
                   arg_max(lines_read, loaded_at) as lines_read
            from loads group by source_file
        ),
        previous as (
            -- the last load of an earlier version (other bytes) of the same file
            select loads.source_file, arg_max(loads.rows_read, loads.loaded_at) as previous_rows_read
            from loads join latest using (source_file)
            where loads.file_sha256 <> latest.file_sha256
            group by loads.source_file
        )
        select s.source_kind, s.source_file, s.rows_read, s.rows_loaded, s.rows_quarantined,
               s.rows_loaded + s.rows_quarantined + coalesce(s.blank_lines, 0) as rows_accounted_for,
               l.lines_read,
               s.rows_quarantined / greatest(s.rows_read, 1) as quarantined_share,
               case when s.source_kind = 'flights' and p.previous_rows_read > 0
                    then s.rows_read / p.previous_rows_read else 1.0 end as rows_vs_previous_load,
               date_diff('minute', s.checked_at, now()::timestamp) / 60.0 as hours_since_checked
        from raw.data_quality_summary as s
        left join previous as p on s.source_kind = 'flights' and s.source_file = p.source_file
        left join latest as l on s.source_kind = 'flights' and s.source_file = l.source_file
        order by s.source_kind, s.source_file""").df()
    folders = {"flights": settings.flights_raw_dir, "weather": settings.weather_raw_dir,
               "weather_daily": settings.cdo_daily_raw_dir}
    # The loader recorded how many physical lines the file had when it read it (a quoted line break makes two
    # lines one record); recounting the landed file checks it was read to the end and is the file loaded.
    frame["file_data_lines"] = [
        (_count_records(folders[kind] / name) if kind == "weather" else _count_data_lines(folders[kind] / name))
        if pd.isna(lines)
        else count_lines(folders[kind] / name) - int(lines - rows) if (folders[kind] / name).exists() else None
        for kind, name, lines, rows in zip(frame.source_kind, frame.source_file, frame.lines_read, frame.rows_read,
                                           strict=True)
    ]
    # A file no longer on disk cannot be recounted: compare it with itself rather than fail.
    frame["file_data_lines"] = frame["file_data_lines"].fillna(frame["rows_read"]).astype("int64")
    return frame.drop(columns=["lines_read"])


def humidity_from_temperatures(temp_f: pd.Series, dew_point_f: pd.Series) -> pd.Series:
    """Relative humidity (%) from temperature and dew point (Magnus formula, Alduchov & Eskridge)."""
    t = (temp_f - 32) * 5 / 9
    td = (dew_point_f - 32) * 5 / 9
    return 100 * np.exp(17.625 * td / (243.04 + td)) / np.exp(17.625 * t / (243.04 + t))


def lake_weather_frame(settings: Settings) -> pd.DataFrame:
    """The committed hourly observations, read from the lake's Parquet (whichever warehouse the flow uses)."""
    files = lake_snapshots.parquet_files(settings.lake_dir / "weather", "hourly_observations")
    con = duckdb.connect(":memory:")
    con.execute("set TimeZone = 'UTC'")
    frame = con.execute("""
        select *, count(*) over (partition by station_id, cast(observed_at_lst as date)) as reports_that_day
        from read_parquet($files, hive_partitioning = true, hive_types_autocast = false)
        """, {"files": files}).df()
    computed = humidity_from_temperatures(frame["temp_f"], frame["dew_point_f"])
    frame["humidity_consistency_error_pct"] = (computed - frame["relative_humidity_pct"]).abs()
    frame["station_month_humidity_error_pct"] = frame.groupby(
        ["station_id", "observation_month"])["humidity_consistency_error_pct"].transform("median").fillna(0.0)
    return frame


def arrow_backed_frame(table: pa.Table) -> pd.DataFrame:
    """Strings stay in Arrow buffers (pandas' pyarrow string dtype): millions of ids as Python str objects
    take ten times the memory, and the allocator keeps it after the frame is gone."""
    strings = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}
    return table.to_pandas(types_mapper=strings.get, self_destruct=True, split_blocks=True)


def mart_frame(con: duckdb.DuckDBPyConnection, marts_schema: str, mart: str, columns: list[str]) -> pd.DataFrame:
    """Only `columns` of the mart: pandas holds every loaded column in memory, and the marts are wide."""
    table = con.execute(f"select {', '.join(columns)} from {marts_schema}.{mart}")
    return arrow_backed_frame(table.fetch_arrow_table())


def training_frame(train: pd.DataFrame, validation_start: date) -> pd.DataFrame:
    """The training rows with the channel they are in and their distance in days from the validation period."""
    return train.assign(
        channel="train",
        days_before_validation_start=(pd.Timestamp(validation_start) - pd.to_datetime(train["flight_date"])).dt.days,
    )


def training_channel_frame(channel: Path) -> pd.DataFrame:
    """The columns the training-frame gate reads from the channel folder ml/train.py will read."""
    import pyarrow.parquet as pq

    return arrow_backed_frame(pq.read_table(channel, columns=TRAINING_GATE_COLUMNS))
