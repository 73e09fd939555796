"""The lake's tables, defined once: each table's columns in order with their types, and the partition keys.

What uses it: the Spark job writes each table in exactly these columns and types (lake_tables.stage_table
conforms the frame to it), the aws home registers the same tables in Glue (flightdelay/aws/lake.py), and
tests/test_lake_schema.py fails when the dbt sources (models/staging/noaa/_noaa__sources.yml) say otherwise.
Pure Python, no pyspark at import: it ships to EMR in the job's spark_prep.zip and flightdelay
imports it without Spark.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LakeColumn:
    name: str
    type: str  # Hive / Glue / Spark SQL type: string, double, boolean, bigint, date, timestamp
    length: int | None = None  # strings: the longest value, as the warehouses declare it (varchar(n))

    @property
    def warehouse_type(self) -> str:
        """The type dbt's sources and Spectrum's external tables declare."""
        if self.type == "string":
            return f"varchar({self.length})"
        return {"double": "double precision"}.get(self.type, self.type)


PARTITION_KEYS = (LakeColumn("station_id", "string", 11), LakeColumn("observation_month", "string", 7))


def _doubles(*names: str) -> tuple[LakeColumn, ...]:
    return tuple(LakeColumn(name, "double") for name in names)


TABLES: dict[str, tuple[LakeColumn, ...]] = {
    "hourly_observations": (
        LakeColumn("wban_id", "string", 5),
        LakeColumn("airport_code", "string", 3),
        *_doubles("temp_f", "dew_point_f", "relative_humidity_pct", "wind_direction_deg", "wind_speed_mph",
                  "wind_gust_mph", "precip_in", "sea_level_pressure_inhg", "visibility_mi"),
        LakeColumn("is_variable_wind", "boolean"),
        LakeColumn("has_trace_precip", "boolean"),
        LakeColumn("has_suspect_value", "boolean"),
        LakeColumn("unparsed_fields", "string", 512),
        LakeColumn("implausible_fields", "string", 512),
        LakeColumn("observed_at_lst", "timestamp"),
        LakeColumn("observed_at_utc", "timestamp"),
        LakeColumn("source_file", "string", 256),
        LakeColumn("source_line", "bigint"),
    ),
    "daily_summaries": (
        LakeColumn("wban_id", "string", 5),
        LakeColumn("airport_code", "string", 3),
        *_doubles("tmax_f", "tmin_f", "precip_in", "avg_wind_speed_mph", "max_wind_gust_mph", "min_visibility_mi"),
        LakeColumn("observation_count", "bigint"),
        LakeColumn("summary_date", "date"),
    ),
    # NOAA's own daily summaries (CDO exports, GHCN-Daily files; spark_prep/cdo_daily.py). Every committed run
    # has this table, empty until daily files are given, so every warehouse can read it without asking.
    "cdo_daily_summaries": (
        LakeColumn("wban_id", "string", 5),
        LakeColumn("airport_code", "string", 3),
        LakeColumn("ghcnd_station_id", "string", 11),
        *_doubles("tmax_f", "tmin_f", "tavg_f", "precip_in", "snowfall_in", "avg_wind_speed_mph"),
        LakeColumn("qc_failed_elements", "string", 64),
        LakeColumn("summary_date", "date"),
        LakeColumn("source_file", "string", 256),
    ),
}


def column_names(table: str) -> tuple[str, ...]:
    """The table's data columns in order, without the partition keys."""
    return tuple(column.name for column in TABLES[table])


def conform(df, table: str):
    """`df` as the lake stores `table`: exactly its columns, in order, cast to their types, then the partition
    keys. A column the frame lacks is an error naming it, not a silent null column."""
    from pyspark.sql import functions as F

    wanted = (*TABLES[table], *PARTITION_KEYS)
    missing = [column.name for column in wanted if column.name not in df.columns]
    if missing:
        raise ValueError(f"lake table {table}: the frame lacks {missing}; it has {df.columns}")
    return df.select(*[F.col(column.name).cast(column.type).alias(column.name) for column in wanted])
