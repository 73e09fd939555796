"""NOAA LCD hourly files -> Hive external Parquet tables `weather.hourly_observations` and
`weather.daily_summaries`; optionally NOAA daily summaries (CDO CSV exports and GHCN-Daily `.dly`
files) -> `weather.cdo_daily_summaries`.

LCD report types: routine hourly reports (FM-15) are used; a special report (FM-16) stands in for an
hour without a routine one; daily and monthly summaries (SOD, SOM) and anything else are quarantined.

extract -> pure transforms -> load. Runs with `spark-submit spark_prep/weather_job.py ...` (an EMR step
in production) and with `python -m spark_prep.weather_job ...` locally.

Load is idempotent and crash-safe: the job writes a complete new copy of the partitions it
produces into a staging folder outside the table, marks it ready, then swaps each partition into the
table with two renames. A run killed while writing leaves the table untouched (its staging folder is
deleted by the next run); a run killed while swapping is rolled forward by the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from dataclasses import asdict, dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

try:  # package import (python -m spark_prep.weather_job, tests) or a file next to it (spark-submit --py-files)
    from spark_prep import cdo_daily, ghcn_daily
except ImportError:  # pragma: no cover - spark-submit without the package on the path
    import cdo_daily
    import ghcn_daily

# LCD columns this job reads, mapped to the names (with units) it writes.
MEASUREMENTS: dict[str, str] = {
    "HourlyDryBulbTemperature": "temp_f",
    "HourlyDewPointTemperature": "dew_point_f",
    "HourlyRelativeHumidity": "relative_humidity_pct",
    "HourlyWindDirection": "wind_direction_deg",
    "HourlyWindSpeed": "wind_speed_mph",
    "HourlyWindGustSpeed": "wind_gust_mph",
    "HourlyPrecipitation": "precip_in",
    "HourlySeaLevelPressure": "sea_level_pressure_inhg",
    "HourlyVisibility": "visibility_mi",
}
# Physically plausible ranges (in the units above); a value outside is an encoding or sensor error,
# nulled and named in `implausible_fields` rather than passed on.
PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    "temp_f": (-80.0, 140.0),
    "dew_point_f": (-100.0, 100.0),
    "relative_humidity_pct": (0.0, 100.0),
    "wind_direction_deg": (0.0, 360.0),
    "wind_speed_mph": (0.0, 200.0),
    "wind_gust_mph": (0.0, 250.0),
    "precip_in": (0.0, 20.0),
    "sea_level_pressure_inhg": (25.0, 33.0),
    "visibility_mi": (0.0, 100.0),
}
REQUIRED_COLUMNS = ("STATION", "DATE", "REPORT_TYPE")
HOURLY_REPORT_TYPE = "FM-15"  # routine hourly METAR
SPECIAL_REPORT_TYPE = "FM-16"  # special report (SPECI), used only for hours without a routine one
HOURLY_REPORT_TYPES = (HOURLY_REPORT_TYPE, SPECIAL_REPORT_TYPE)
PARTITION_COLUMNS = ("station_id", "observation_month")

HOURLY_COLUMNS = (
    "wban_id",
    "airport_code",
    "temp_f",
    "dew_point_f",
    "relative_humidity_pct",
    "wind_direction_deg",
    "wind_speed_mph",
    "wind_gust_mph",
    "precip_in",
    "sea_level_pressure_inhg",
    "visibility_mi",
    "is_variable_wind",
    "has_trace_precip",
    "has_suspect_value",
    "unparsed_fields",
    "implausible_fields",
    "observed_at_lst",
    "observed_at_utc",
    "source_file",
)
DAILY_COLUMNS = (
    "wban_id",
    "airport_code",
    "tmax_f",
    "tmin_f",
    "precip_in",
    "avg_wind_speed_mph",
    "max_wind_gust_mph",
    "min_visibility_mi",
    "observation_count",
    "summary_date",
)
HIVE_TYPES = {
    "string": "STRING",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "bigint": "BIGINT",
    "int": "INT",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}


@dataclass(frozen=True)
class JobSettings:
    raw_weather_path: str
    stations_path: str
    lake_uri: str
    database: str = "weather"
    metastore: str = "derby"  # "derby" (embedded, local) or "external" (Glue / cluster's hive-site)
    master: str | None = None
    run_id: str = ""
    raw_cdo_daily_path: str = ""  # optional NOAA CDO daily CSV exports
    raw_ghcn_daily_path: str = ""  # optional GHCN-Daily .dly files
    cdo_units: str = "standard"

    @property
    def cdo_table_uri(self) -> str:
        return f"{self.lake_uri.rstrip('/')}/weather/cdo_daily_summaries"

    @property
    def hourly_table_uri(self) -> str:
        return f"{self.lake_uri.rstrip('/')}/weather/hourly_observations"

    @property
    def daily_table_uri(self) -> str:
        return f"{self.lake_uri.rstrip('/')}/weather/daily_summaries"

    @property
    def quarantine_uri(self) -> str:
        return f"{self.lake_uri.rstrip('/')}/weather/_quarantine"

    @property
    def staging_uri(self) -> str:
        return f"{self.lake_uri.rstrip('/')}/weather/_staging"


def to_uri(path: str) -> str:
    """Absolute file: URI for local paths; URIs with a scheme (s3://, file:) pass through."""
    if "://" in path or path.startswith("file:"):
        return path
    return "file:" + os.path.abspath(path)


def build_spark(settings: JobSettings) -> SparkSession:
    builder = SparkSession.builder.appName("flightdelay-weather-prep").enableHiveSupport()
    if settings.master:
        builder = builder.master(settings.master)
    builder = (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
    )
    if settings.metastore == "derby":
        lake_path = settings.lake_uri.removeprefix("file:")
        metastore = os.path.join(lake_path, "_metastore")
        builder = (
            builder.config(
                "spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={metastore}/metastore_db;create=true",
            )
            .config("spark.sql.warehouse.dir", f"file:{metastore}/warehouse")
            .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={metastore}")
        )
    return builder.getOrCreate()


# ---------------------------------------------------------------- extract


def extract(spark: SparkSession, settings: JobSettings) -> tuple[DataFrame, DataFrame]:
    """Raw LCD rows (every column a string, plus the file name) and the station reference table."""
    if settings.raw_weather_path:
        raw = (
            spark.read.option("header", True)
            .option("inferSchema", False)
            .option("mode", "PERMISSIVE")
            .csv(settings.raw_weather_path)
            .withColumn("source_file", F.element_at(F.split(F.input_file_name(), "/"), -1))
        )
    else:  # daily files only: no hourly rows this run; the hourly table keeps what it has
        raw = spark.createDataFrame(
            [], ", ".join(f"{c} string" for c in (*REQUIRED_COLUMNS, *MEASUREMENTS, "source_file")))
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(
            f"LCD input {settings.raw_weather_path}: required columns {missing} not found; "
            f"found {sorted(raw.columns)}"
        )
    stations = (
        spark.read.option("header", True)
        .schema("airport_code string, station_id string, usaf_id string, wban_id string, "
                "station_name string, lst_utc_offset_hours int")
        .csv(settings.stations_path)
    )
    return raw, stations


# ---------------------------------------------------------------- transforms (pure)


def _clean(column: Column) -> Column:
    """LCD value with its quality suffixes removed: 's' marks a suspect value, '*' an amended one."""
    return F.regexp_replace(F.trim(column), r"[s*]+$", "")


def _number(column: Column) -> Column:
    cleaned = _clean(column)
    return F.when(cleaned.isin("", "M"), F.lit(None)).otherwise(cleaned.try_cast("double"))


def _is_unparsed(raw_value: Column, parsed: Column) -> Column:
    cleaned = _clean(raw_value)
    return raw_value.isNotNull() & ~cleaned.isin("", "M", "T", "VRB") & parsed.isNull()


def transform_with_all_columns(raw: DataFrame) -> DataFrame:
    """Add the optional LCD columns a file's selection left out, as nulls."""
    for column in MEASUREMENTS:
        if column not in raw.columns:
            raw = raw.withColumn(column, F.lit(None).cast("string"))
    return raw


def transform_hourly_reports(raw: DataFrame) -> DataFrame:
    """Routine hourly (FM-15) and special (FM-16) reports; daily/monthly summaries (SOD, SOM) and other
    types are out of scope (see transform_quarantine)."""
    return raw.filter(F.trim(F.col("REPORT_TYPE")).isin(*HOURLY_REPORT_TYPES))


def transform_choose_hourly_reports(parsed: DataFrame) -> DataFrame:
    """`superseded_reason` null for the reports to keep: every FM-15, and for a station-hour (UTC)
    without any FM-15, its latest FM-16; the other FM-16 of such an hour, and every FM-16 of an hour
    that has an FM-15, get the reason instead."""
    hour = Window.partitionBy("station_id", F.date_trunc("hour", "observed_at_utc"))
    has_routine = F.max((F.col("report_type") == HOURLY_REPORT_TYPE).cast("int")).over(hour) == 1
    specials = Window.partitionBy("station_id", F.date_trunc("hour", "observed_at_utc"), "report_type").orderBy(
        F.col("observed_at_utc").desc(), F.col("source_file").desc(), F.col("raw_date").desc())
    special_rank = F.row_number().over(specials)
    return parsed.withColumn(
        "superseded_reason",
        F.when(F.col("report_type") == HOURLY_REPORT_TYPE, F.lit(None))
        .when(has_routine, F.lit("FM-16: a routine FM-15 report exists for this station and hour"))
        .when(special_rank > 1, F.lit("FM-16: a later special report of the same hour is used")),
    )


def transform_parse_observations(reports: DataFrame, stations: DataFrame) -> DataFrame:
    """Typed observations with units in the names and UTC timestamps.

    Rows whose DATE does not parse or whose station is unknown get a `rejection_reason`; the caller
    routes them to the quarantine rather than dropping them.
    """
    station_ref = stations.select(
        F.col("station_id").alias("_station_id"), "wban_id", "airport_code", "lst_utc_offset_hours"
    )
    joined = reports.join(station_ref, F.trim(reports["STATION"]) == station_ref["_station_id"], "left")

    direction_raw = _clean(F.col("HourlyWindDirection"))
    precip_raw = _clean(F.col("HourlyPrecipitation"))
    parsed = {
        name: _number(F.col(column)) for column, name in MEASUREMENTS.items()
    }
    parsed["wind_direction_deg"] = F.when(direction_raw == "VRB", F.lit(None)).otherwise(
        parsed["wind_direction_deg"]
    )
    parsed["precip_in"] = F.when(precip_raw == "T", F.lit(0.0)).otherwise(parsed["precip_in"])

    implausible = {}
    for name, (low, high) in PLAUSIBLE_RANGES.items():
        implausible[name] = parsed[name].isNotNull() & ~parsed[name].between(low, high)
        parsed[name] = F.when(implausible[name], F.lit(None)).otherwise(parsed[name])
    implausible_names = F.array_compact(
        F.array(*[F.when(bad, F.lit(name)) for name, bad in implausible.items()])
    )
    unparsed = F.array_compact(
        F.array(*[F.when(_is_unparsed(F.col(c), parsed[n]), F.lit(c)) for c, n in MEASUREMENTS.items()])
    )
    suspect = reduce(
        lambda a, b: a | b, [F.trim(F.col(c)).endswith("s") for c in MEASUREMENTS]
    )
    observed_at_lst = F.try_to_timestamp(F.trim(F.col("DATE")), F.lit("yyyy-MM-dd'T'HH:mm:ss"))

    typed = joined.select(
        F.trim(F.col("STATION")).alias("station_id"),
        "wban_id",
        "airport_code",
        F.trim(F.col("REPORT_TYPE")).alias("report_type"),
        *[parsed[name].alias(name) for name in MEASUREMENTS.values()],
        (direction_raw == "VRB").alias("is_variable_wind"),
        (precip_raw == "T").alias("has_trace_precip"),
        F.coalesce(suspect, F.lit(False)).alias("has_suspect_value"),
        F.array_join(unparsed, ",").alias("unparsed_fields"),
        F.array_join(implausible_names, ",").alias("implausible_fields"),
        observed_at_lst.alias("observed_at_lst"),
        F.expr("timestampadd(HOUR, -lst_utc_offset_hours, observed_at_lst)").alias("observed_at_utc"),
        "source_file",
        F.col("DATE").alias("raw_date"),
    )
    reason = (
        F.when(F.col("station_id").isNull() | (F.col("station_id") == ""), F.lit("STATION: missing"))
        .when(F.col("airport_code").isNull(), F.concat(F.lit("STATION: unknown station id '"),
                                                      F.col("station_id"), F.lit("'")))
        .when(F.col("observed_at_lst").isNull(), F.concat(F.lit("DATE: cannot parse '"),
                                                          F.coalesce(F.col("raw_date"), F.lit("")),
                                                          F.lit("' as yyyy-MM-ddTHH:mm:ss")))
    )
    return typed.withColumn("rejection_reason", reason)


def transform_rank_duplicates(observations: DataFrame) -> DataFrame:
    """`duplicate_rank` per station and UTC instant: 1 for the report to keep.

    The row with the most measured values wins; a tie is broken on the values themselves, so the
    outcome does not depend on file order or partitioning.
    """
    measured = [F.col(name).isNotNull().cast("int") for name in MEASUREMENTS.values()]
    completeness = reduce(lambda a, b: a + b, measured)
    fingerprint = F.concat_ws(
        "|", *[F.coalesce(F.col(n).cast("string"), F.lit("")) for n in MEASUREMENTS.values()],
        F.col("source_file"),
    )
    window = Window.partitionBy("station_id", "observed_at_utc").orderBy(
        completeness.desc(), fingerprint.desc()
    )
    return observations.withColumn("duplicate_rank", F.row_number().over(window))


def transform_deduplicate(observations: DataFrame) -> DataFrame:
    """One row per station and UTC instant (see transform_rank_duplicates)."""
    ranked = transform_rank_duplicates(observations)
    return ranked.filter(F.col("duplicate_rank") == 1).drop("duplicate_rank")


def transform_quarantine(raw: DataFrame, parsed: DataFrame, ranked: DataFrame,
                         chosen: DataFrame | None = None) -> DataFrame:
    """Every raw row that is not loaded, with the reason: other report types (SOD, SOM, ...),
    unparseable or unknown rows, special reports not used for their hour, and duplicates that lost to
    a more complete report for the same station and time."""
    columns = ["source_file", "station_id", "raw_date", "report_type", "quarantine_reason"]
    other_types = raw.filter(~F.trim(F.col("REPORT_TYPE")).isin(*HOURLY_REPORT_TYPES)).select(
        "source_file",
        F.trim(F.col("STATION")).alias("station_id"),
        F.col("DATE").alias("raw_date"),
        F.trim(F.col("REPORT_TYPE")).alias("report_type"),
        F.concat(F.lit("REPORT_TYPE: '"), F.trim(F.col("REPORT_TYPE")),
                 F.lit(f"' is not an hourly report ({' or '.join(HOURLY_REPORT_TYPES)})")).alias("quarantine_reason"),
    )
    missing_type = raw.filter(F.col("REPORT_TYPE").isNull()).select(
        "source_file", F.trim(F.col("STATION")).alias("station_id"), F.col("DATE").alias("raw_date"),
        F.lit(None).cast("string").alias("report_type"),
        F.lit("REPORT_TYPE: missing").alias("quarantine_reason"),
    )
    unparsed = parsed.filter(F.col("rejection_reason").isNotNull()).select(
        "source_file", "station_id", "raw_date", "report_type",
        F.col("rejection_reason").alias("quarantine_reason"),
    )
    parts = [other_types, missing_type, unparsed]
    if chosen is not None:
        parts.append(chosen.filter(F.col("superseded_reason").isNotNull()).select(
            "source_file", "station_id", "raw_date", "report_type",
            F.col("superseded_reason").alias("quarantine_reason"),
        ))
    parts.append(ranked.filter(F.col("duplicate_rank") > 1).select(
        "source_file", "station_id", "raw_date", "report_type",
        F.lit("duplicate: a more complete report exists for this station and time").alias("quarantine_reason"),
    ))
    return reduce(DataFrame.unionByName, parts).select(*columns)


def transform_file_reconciliation(raw: DataFrame, hourly: DataFrame, quarantine: DataFrame) -> DataFrame:
    """Per file: rows read = rows loaded + rows quarantined (checked by the caller)."""
    read = raw.groupBy("source_file").agg(F.count(F.lit(1)).alias("rows_read"))
    loaded = hourly.groupBy("source_file").agg(F.count(F.lit(1)).alias("rows_loaded"))
    quarantined = quarantine.groupBy("source_file").agg(F.count(F.lit(1)).alias("rows_quarantined"))
    return (
        read.join(loaded, "source_file", "left").join(quarantined, "source_file", "left")
        .fillna(0, ["rows_loaded", "rows_quarantined"])
        .orderBy("source_file")
    )


def transform_hourly_table(observations: DataFrame) -> DataFrame:
    return observations.select(
        *HOURLY_COLUMNS,
        F.date_format("observed_at_lst", "yyyy-MM").alias("observation_month"),
        "station_id",
    )


def transform_daily_summaries(hourly: DataFrame) -> DataFrame:
    """The blog's daily features per station and local-standard-time day."""
    daily = hourly.groupBy("station_id", "wban_id", "airport_code",
                           F.to_date("observed_at_lst").alias("summary_date")).agg(
        F.max("temp_f").alias("tmax_f"),
        F.min("temp_f").alias("tmin_f"),
        F.sum("precip_in").alias("precip_in"),
        F.round(F.avg("wind_speed_mph"), 2).alias("avg_wind_speed_mph"),
        F.max("wind_gust_mph").alias("max_wind_gust_mph"),
        F.min("visibility_mi").alias("min_visibility_mi"),
        F.count(F.lit(1)).alias("observation_count"),
    )
    return daily.select(
        *DAILY_COLUMNS,
        F.date_format("summary_date", "yyyy-MM").alias("observation_month"),
        "station_id",
    )


# ---------------------------------------------------------------- load


class _FileSystem:
    """The Hadoop FileSystem behind a URI (local disk, S3 on EMR), through the JVM Spark already runs."""

    def __init__(self, spark: SparkSession, uri: str):
        jvm = spark.sparkContext._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._fs = self._Path(uri).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def exists(self, uri: str) -> bool:
        return self._fs.exists(self._Path(uri))

    def listdir(self, uri: str) -> list[str]:
        if not self.exists(uri):
            return []
        return [s.getPath().getName() for s in self._fs.listStatus(self._Path(uri))]

    def rename(self, src: str, dst: str) -> None:
        parent = self._Path(dst).getParent()
        self._fs.mkdirs(parent)
        if not self._fs.rename(self._Path(src), self._Path(dst)):
            raise OSError(f"rename {src} -> {dst} failed")

    def delete(self, uri: str) -> None:
        self._fs.delete(self._Path(uri), True)

    def touch(self, uri: str) -> None:
        self._fs.create(self._Path(uri), True).close()


READY_MARKER = "_READY_TO_SWAP"


def _partition_dirs(fs: _FileSystem, root: str) -> list[str]:
    out = []
    for station in sorted(fs.listdir(root)):
        if not station.startswith(f"{PARTITION_COLUMNS[0]}="):
            continue
        for month in sorted(fs.listdir(f"{root}/{station}")):
            if month.startswith(f"{PARTITION_COLUMNS[1]}="):
                out.append(f"{station}/{month}")
    return out


def swap_partitions(fs: _FileSystem, staged_root: str, table_root: str, trash_root: str) -> int:
    """Move every partition of a complete staged copy into the table, replacing the same partition."""
    swapped = 0
    for partition in _partition_dirs(fs, staged_root):
        target = f"{table_root}/{partition}"
        if fs.exists(target):
            fs.rename(target, f"{trash_root}/{partition}")
        fs.rename(f"{staged_root}/{partition}", target)
        swapped += 1
    fs.delete(trash_root)
    fs.delete(staged_root)
    return swapped


def recover_interrupted_runs(fs: _FileSystem, staging_uri: str, table_uri: str) -> list[str]:
    """Finish swaps a killed run had started; discard writes a killed run had not finished."""
    table = table_uri.rsplit("/", 1)[-1]
    actions = []
    for run_id in sorted(fs.listdir(f"{staging_uri}/{table}")):
        staged = f"{staging_uri}/{table}/{run_id}"
        trash = f"{staging_uri}/_trash/{table}/{run_id}"
        if fs.exists(f"{staged}/{READY_MARKER}"):
            # Partitions the killed swap had already moved to the trash but not replaced go back first.
            for partition in _partition_dirs(fs, trash):
                if not fs.exists(f"{table_uri}/{partition}") and not fs.exists(f"{staged}/{partition}"):
                    fs.rename(f"{trash}/{partition}", f"{table_uri}/{partition}")
            swap_partitions(fs, staged, table_uri, trash)
            actions.append(f"rolled forward {table} run {run_id}")
        else:
            fs.delete(staged)
            actions.append(f"discarded incomplete {table} run {run_id}")
    return actions


def _hive_columns(df: DataFrame, exclude: tuple[str, ...]) -> str:
    cols = []
    for field in df.schema.fields:
        if field.name in exclude:
            continue
        cols.append(f"`{field.name}` {HIVE_TYPES[field.dataType.simpleString()]}")
    return ",\n  ".join(cols)


def register_external_table(spark: SparkSession, settings: JobSettings, name: str, df: DataFrame,
                            location: str) -> None:
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {settings.database}")
    qualified = f"{settings.database}.{name}"
    if spark.catalog.tableExists(qualified):
        existing = [f.name for f in spark.table(qualified).schema.fields]
        if existing != df.columns:
            # External table: dropping it forgets the schema, never the files.
            spark.sql(f"DROP TABLE {qualified}")
    partitions = ", ".join(f"`{c}` STRING" for c in PARTITION_COLUMNS)
    spark.sql(
        f"""CREATE EXTERNAL TABLE IF NOT EXISTS {settings.database}.{name} (
  {_hive_columns(df, PARTITION_COLUMNS)}
)
PARTITIONED BY ({partitions})
STORED AS PARQUET
LOCATION '{location}'"""
    )
    spark.sql(f"MSCK REPAIR TABLE {settings.database}.{name} SYNC PARTITIONS")


def write_table(spark: SparkSession, settings: JobSettings, name: str, df: DataFrame, table_uri: str,
                sort_column: str) -> int:
    fs = _FileSystem(spark, table_uri)
    staged = f"{settings.staging_uri}/{name}/{settings.run_id}"
    (
        df.repartition(*PARTITION_COLUMNS)
        .sortWithinPartitions(*PARTITION_COLUMNS, sort_column)
        .write.mode("errorifexists")
        .partitionBy(*PARTITION_COLUMNS)
        .parquet(staged)
    )
    fs.touch(f"{staged}/{READY_MARKER}")
    swapped = swap_partitions(fs, staged, table_uri, f"{settings.staging_uri}/_trash/{name}/{settings.run_id}")
    register_external_table(spark, settings, name, df, table_uri)
    return swapped


def load(spark: SparkSession, settings: JobSettings, hourly: DataFrame, daily: DataFrame,
         quarantine: DataFrame) -> dict[str, int]:
    hourly_partitions = write_table(
        spark, settings, "hourly_observations", hourly, settings.hourly_table_uri, "observed_at_utc"
    )
    daily_partitions = write_table(
        spark, settings, "daily_summaries", daily, settings.daily_table_uri, "summary_date"
    )
    quarantine.coalesce(1).write.mode("overwrite").parquet(settings.quarantine_uri)
    return {"hourly_partitions": hourly_partitions, "daily_partitions": daily_partitions}


# ---------------------------------------------------------------- job


class ReconciliationError(RuntimeError):
    """Some raw rows were neither loaded nor quarantined."""


@dataclass
class JobResult:
    rows_read: int
    rows_quarantined: int
    rows_other_report_types: int
    rows_rejected: int
    duplicates_resolved: int
    rows_with_implausible_values: int
    hourly_rows: int
    daily_rows: int
    stations: int
    hourly_partitions: int
    daily_partitions: int
    recovered: list[str]
    files: list[dict]
    cdo_daily_rows: int = 0
    cdo_files: list[dict] | None = None
    special_reports_superseded: int = 0


def run(spark: SparkSession, settings: JobSettings) -> JobResult:
    if not settings.run_id:
        settings = JobSettings(**{**asdict(settings), "run_id": uuid.uuid4().hex[:12]})
    fs = _FileSystem(spark, settings.hourly_table_uri)
    recovered = []
    for table_uri in (settings.hourly_table_uri, settings.daily_table_uri, settings.cdo_table_uri):
        recovered += recover_interrupted_runs(fs, settings.staging_uri, table_uri)

    raw, stations = extract(spark, settings)
    raw = transform_with_all_columns(raw).cache()
    parsed = transform_parse_observations(transform_hourly_reports(raw), stations).cache()
    chosen = transform_choose_hourly_reports(parsed.filter(F.col("rejection_reason").isNull()))
    ranked = transform_rank_duplicates(chosen.filter(F.col("superseded_reason").isNull()))
    hourly = transform_hourly_table(ranked.filter(F.col("duplicate_rank") == 1)).cache()
    daily = transform_daily_summaries(hourly).cache()
    quarantine = transform_quarantine(raw, parsed, ranked, chosen).cache()

    files = [row.asDict() for row in transform_file_reconciliation(raw, hourly, quarantine).collect()]
    unreconciled = [f for f in files if f["rows_read"] != f["rows_loaded"] + f["rows_quarantined"]]
    if unreconciled:
        raise ReconciliationError(f"rows read != loaded + quarantined: {unreconciled}")
    reasons = {row["kind"]: row["n"] for row in quarantine.groupBy(
        F.when(F.col("quarantine_reason").startswith("REPORT_TYPE"), "other_type")
        .when(F.col("quarantine_reason").startswith("FM-16"), "special_superseded")
        .when(F.col("quarantine_reason").startswith("duplicate"), "duplicate")
        .otherwise("rejected").alias("kind")
    ).agg(F.count(F.lit(1)).alias("n")).collect()}
    cdo_files, cdo_rows = None, 0
    daily_inputs = []  # (raw rows in the CDO layout, units, label)
    if settings.raw_cdo_daily_path:
        cdo_raw = cdo_daily.transform_with_all_columns(
            spark.read.option("header", True).option("inferSchema", False).csv(settings.raw_cdo_daily_path)
            .withColumn("source_file", F.element_at(F.split(F.input_file_name(), "/"), -1))
        )
        missing = [c for c in cdo_daily.REQUIRED_COLUMNS if c not in cdo_raw.columns]
        if missing:
            raise ValueError(f"CDO daily input {settings.raw_cdo_daily_path}: required columns {missing} not found; "
                             f"found {sorted(cdo_raw.columns)}")
        daily_inputs.append((cdo_raw, settings.cdo_units))
    if settings.raw_ghcn_daily_path:
        ghcn_raw = ghcn_daily.transform_to_cdo_layout(
            ghcn_daily.transform_day_values(ghcn_daily.extract(spark, settings.raw_ghcn_daily_path)))
        daily_inputs.append((ghcn_raw, "metric"))
    if daily_inputs:
        # both layouts are the same GHCN-Daily data: parsed apart (units differ), ranked together, so a
        # station-day delivered in both is loaded once and the other copy quarantined as a duplicate
        columns = ["source_file", "STATION", "DATE", *[c for e in cdo_daily.ELEMENTS for c in (e, f"{e}_ATTRIBUTES")]]
        daily_raw = reduce(DataFrame.unionByName, [r.select(*columns) for r, _ in daily_inputs]).cache()
        cdo_parsed = reduce(DataFrame.unionByName, [cdo_daily.transform_parse_daily(r.select(*columns), stations, u)
                                                     for r, u in daily_inputs])
        cdo_ranked = cdo_daily.transform_rank_duplicates(cdo_parsed.filter(F.col("rejection_reason").isNull()))
        cdo_table = cdo_daily.transform_daily_table(cdo_ranked).cache()
        cdo_quarantine = cdo_daily.transform_quarantine(cdo_parsed, cdo_ranked).cache()
        cdo_files = [row.asDict() for row in
                     transform_file_reconciliation(daily_raw, cdo_table, cdo_quarantine).collect()]
        broken = [f for f in cdo_files if f["rows_read"] != f["rows_loaded"] + f["rows_quarantined"]]
        if broken:
            raise ReconciliationError(f"daily summary rows read != loaded + quarantined: {broken}")
        write_table(spark, settings, "cdo_daily_summaries", cdo_table, settings.cdo_table_uri, "summary_date")
        cdo_rows = sum(f["rows_loaded"] for f in cdo_files)
        quarantine = quarantine.unionByName(cdo_quarantine)
    partitions = load(spark, settings, hourly, daily, quarantine)
    result = JobResult(
        rows_read=sum(f["rows_read"] for f in files),
        rows_quarantined=sum(f["rows_quarantined"] for f in files),
        rows_other_report_types=reasons.get("other_type", 0),
        special_reports_superseded=reasons.get("special_superseded", 0),
        rows_rejected=reasons.get("rejected", 0),
        duplicates_resolved=reasons.get("duplicate", 0),
        rows_with_implausible_values=hourly.filter(F.col("implausible_fields") != "").count(),
        hourly_rows=sum(f["rows_loaded"] for f in files),
        daily_rows=daily.count(),
        stations=hourly.select("station_id").distinct().count(),
        recovered=recovered,
        files=files,
        cdo_daily_rows=cdo_rows,
        cdo_files=cdo_files,
        **partitions,
    )
    for df in (raw, parsed, hourly, daily, quarantine):
        df.unpersist()
    return result


def parse_args(argv: list[str] | None = None) -> JobSettings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw-weather", default="",
                        help="LCD CSV file, folder or glob (local or s3://); empty: daily files only")
    parser.add_argument("--stations", required=True, help="airport_weather_stations.csv seed")
    parser.add_argument("--lake", required=True, help="lake root (local folder or s3:// prefix)")
    parser.add_argument("--database", default="weather")
    parser.add_argument("--metastore", choices=["derby", "external"], default="derby",
                        help="derby: embedded local metastore; external: the cluster's (Glue on EMR)")
    parser.add_argument("--master", default=None, help="Spark master, e.g. local[2]; unset under spark-submit")
    parser.add_argument("--raw-cdo-daily", default="", help="optional NOAA CDO daily CSV file, folder or glob")
    parser.add_argument("--raw-ghcn-daily", default="", help="optional GHCN-Daily .dly file, folder or glob")
    parser.add_argument("--cdo-units", choices=list(cdo_daily.UNITS), default="standard",
                        help="units the CDO export was ordered in (the file does not say)")
    args = parser.parse_args(argv)
    return JobSettings(
        raw_weather_path=to_uri(args.raw_weather) if args.raw_weather else "",
        stations_path=to_uri(args.stations),
        lake_uri=to_uri(args.lake),
        database=args.database,
        metastore=args.metastore,
        master=args.master,
        raw_cdo_daily_path=to_uri(args.raw_cdo_daily) if args.raw_cdo_daily else "",
        raw_ghcn_daily_path=to_uri(args.raw_ghcn_daily) if args.raw_ghcn_daily else "",
        cdo_units=args.cdo_units,
    )


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    spark = build_spark(settings)
    try:
        result = run(spark, settings)
    finally:
        spark.stop()
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
