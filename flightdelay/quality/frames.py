"""The pandas frames each boundary's suites validate: the raw files (the loader's audit against the landed
files), the weather lake, a mart in the audit schema, and the training channel.

GX's SQL datasource cannot read DuckDB here (it closes the connection before fetching), so each asset is
read into pandas by DuckDB and validated through GX's pandas dataframe datasource (gates.py). The big tables
(the marts, the training channel) are read a chunk of whole months at a time (`plan_chunks`, `chunk_frame`),
so memory follows the chunk, not the table.
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


# The column big tables are chunked by, and the most rows a chunk of several months may hold: GX on pandas takes
# about 1 KiB a row of the feature mart's 22 checked columns (bench/results: 3.1 GiB at 3.2M rows), so a chunk
# costs about half a GiB, however many months the table has. A month larger than this is a chunk of its own.
MONTH_COLUMN = "flight_date"
CHUNK_ROWS = 500_000
# The month of each row in a chunk's frame, to name the month a failure is in.
CHUNK_MONTH = "validated_month"


def months_filter(months: list[str] | None, column: str = MONTH_COLUMN) -> str:
    """SQL keeping the rows of `months` ('YYYY-MM'; a None stands for rows without a date), all rows if None.
    Ranges of dates rather than a function of the column, so DuckDB skips row groups by their min and max."""
    if months is None:
        return "true"
    ranges = [f"{column} is null" if month is None else
              f"({column} >= date '{month}-01' and {column} < date '{month}-01' + interval 1 month)"
              for month in months]
    return "(" + " or ".join(ranges) + ")" if ranges else "false"


def month_rows(con: duckdb.DuckDBPyConnection, relation: str, months: list[str] | None = None,
               column: str = MONTH_COLUMN) -> list[tuple[str | None, int]]:
    """(month, rows) of the relation in month order, rows without a date last; only `months` if given."""
    return con.execute(f"""
        select strftime({column}, '%Y-%m') as month, count(*) from {relation}
        where {months_filter(months, column)} group by month order by month nulls last""").fetchall()


def plan_chunks(month_counts: list[tuple[str | None, int]], max_rows: int = CHUNK_ROWS) -> list[list[str | None]]:
    """Consecutive months packed into chunks of at most `max_rows` rows (a bigger month alone): on the bundled
    sample the whole table is one chunk, as before; at scale, memory follows `max_rows`, not the table."""
    chunks: list[list[str | None]] = []
    rows_in_last = 0
    for month, rows in month_counts:
        if chunks and rows_in_last + rows <= max_rows:
            chunks[-1].append(month)
            rows_in_last += rows
        else:
            chunks.append([month])
            rows_in_last = rows
    return chunks


def chunk_frame(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str], months: list[str | None],
                column: str = MONTH_COLUMN) -> pd.DataFrame:
    """Only `columns` of the rows of `months` (pandas holds every loaded column in memory, and the marts are
    wide), with the month of each row in CHUNK_MONTH."""
    table = con.execute(f"select {', '.join(columns)}, strftime({column}, '%Y-%m') as {CHUNK_MONTH} "
                        f"from {relation} where {months_filter(months, column)}")
    return arrow_backed_frame(table.fetch_arrow_table())


def channel_relation(channel: Path) -> str:
    """The channel folder's Parquet files (or one file) as a DuckDB table function."""
    files = [channel] if channel.is_file() else sorted(channel.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"channel {channel}: no .parquet files found")
    return "read_parquet([" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "])"


def training_frame(train: pd.DataFrame, validation_start: date) -> pd.DataFrame:
    """The training rows with the channel they are in and their distance in days from the validation period."""
    return train.assign(
        channel="train",
        days_before_validation_start=(pd.Timestamp(validation_start) - pd.to_datetime(train["flight_date"])).dt.days,
    )


