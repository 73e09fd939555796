"""NOAA LCD hourly files -> Hive external Parquet tables `weather.hourly_observations` and
`weather.daily_summaries`; optionally NOAA daily summaries (CDO CSV exports and GHCN-Daily `.dly`
files) -> `weather.cdo_daily_summaries`.

LCD report types: routine hourly reports (FM-15) are used; a special report (FM-16) stands in for an
hour without a routine one; daily and monthly summaries (SOD, SOM) and anything else are quarantined.
Files cut down to STATION, DATE and some Hourly* columns have no REPORT_TYPE: of their observations, the
one nearest to the hour's 51st minute is taken as the routine one (see transform_choose_hourly_reports).

Reading (spark_prep/lcd_records.py): input paths are taken literally (never as glob patterns), every
record keeps its file's exact name and the physical line it starts on, and every line after a header is
loaded, quarantined (`_quarantine`, with file, line and a reason naming the field and value) or counted
as blank: per file, read = loaded + quarantined + blank is checked before anything is written.

extract -> pure transforms -> load. Runs with `spark-submit spark_prep/weather_job.py ...` (an EMR step
in production) and with `python -m spark_prep.weather_job ...` locally.

Load is idempotent and crash-safe (spark_prep/lake_tables.py): a complete new copy of the partitions a run
produces is staged outside the table, then swapped in partition by partition; the next run finishes or
discards whatever a killed run left.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from dataclasses import asdict, dataclass, field
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from raw_contracts.ranges import WEATHER_RANGES

try:  # package import (python -m spark_prep.weather_job, tests) or a file next to it (spark-submit --py-files)
    from spark_prep import cdo_daily, ghcn_daily, lcd_records
    from spark_prep.lake_tables import (
        commit,
        partition_count,
        refuse_a_used_run_id,
        register_tables,
        stage_quarantine,
        stage_table,
        tidy,
    )
except ImportError:  # pragma: no cover - spark-submit without the package on the path
    import cdo_daily
    import ghcn_daily
    import lcd_records
    from lake_tables import (
        commit,
        partition_count,
        refuse_a_used_run_id,
        register_tables,
        stage_quarantine,
        stage_table,
        tidy,
    )

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
# A measured value outside its plausible range (raw_contracts.ranges, in the units above) or not a finite
# number is an encoding or sensor error: nulled and named in `implausible_fields` rather than passed on.
REQUIRED_COLUMNS = ("STATION", "DATE")  # REPORT_TYPE and the Hourly* columns are optional
LCD_COLUMNS = (*REQUIRED_COLUMNS, "REPORT_TYPE", *MEASUREMENTS)  # the columns read; the rest are ignored
HOURLY_REPORT_TYPE = "FM-15"  # routine hourly METAR
SPECIAL_REPORT_TYPE = "FM-16"  # special report (SPECI), used only for hours without a routine one
HOURLY_REPORT_TYPES = (HOURLY_REPORT_TYPE, SPECIAL_REPORT_TYPE)
# Routine METARs are issued at minute 51 of the hour at most US ASOS stations.
ROUTINE_MINUTE = 51

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
    "source_line",
)
QUARANTINE_COLUMNS = (
    "source_file",
    "source_line",
    "station_id",
    "raw_date",
    "report_type",
    "quarantine_kind",  # unreadable | other_report_type | rejected | special_superseded | not_routine | duplicate
    "quarantine_reason",  # names the field and shows its value
    "raw_text",  # the record as read, for unreadable records (the others are at source_file, source_line)
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
    def weather_uri(self) -> str:
        """The weather lake: a folder per table, and the pointer to each table's committed copy."""
        return f"{self.lake_uri.rstrip('/')}/weather"


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


class InputError(ValueError):
    """An input the job cannot read (a file that is not LCD, a CSV without its required columns)."""


@dataclass(frozen=True)
class Extracted:
    raw: DataFrame  # lcd_records rows: records, unreadable records, one `file` row per file (cached)
    stations: DataFrame
    files_with_report_type: list[str]  # the others are cut-down files without a REPORT_TYPE column
    left_out: list[str]  # entries of the input folder not read, with the reason


def extract(spark: SparkSession, settings: JobSettings) -> Extracted:
    """Raw LCD rows with file and line (see lcd_records) and the station reference table.

    A file that cannot be read at all (empty, no header, no STATION or DATE column) stops the job before
    anything is written: it is not an LCD file, and loading the others would hide that it was not loaded."""
    files: list[str] = []
    left_out: list[str] = []
    if settings.raw_weather_path:  # else daily files only: no hourly rows this run; the hourly table keeps its own
        files, left_out = lcd_records.list_input_files(spark, settings.raw_weather_path, "LCD input")
    raw = lcd_records.read_records(spark, files, LCD_COLUMNS, REQUIRED_COLUMNS).cache()
    read = raw.filter(F.col("row_kind") == lcd_records.FILE).select("source_file", "problem", "file_columns").collect()
    problems = [f"{row.source_file}: {row.problem}" for row in read if row.problem]
    if problems:
        raw.unpersist()
        raise InputError(
            f"LCD input {settings.raw_weather_path}: {len(problems)} file(s) cannot be read as NOAA LCD CSV: "
            + "; ".join(problems) + f". Expected a header line naming at least {list(REQUIRED_COLUMNS)}, then one "
            "line per observation; fix or move these files, then rerun.")
    not_read = sorted({lcd_records.file_name(path) for path in files} - {row.source_file for row in read})
    if not_read:  # binaryFiles matched other files than the ones listed: a bug here, never to pass silently
        raise RuntimeError(f"LCD input {settings.raw_weather_path}: listed but not read: {not_read}")
    stations = (
        spark.read.option("header", True)
        .schema("airport_code string, station_id string, usaf_id string, wban_id string, "
                "station_name string, lst_utc_offset_hours int")
        .csv(lcd_records.literal_pattern(settings.stations_path))
    )
    return Extracted(raw, stations, sorted(row.source_file for row in read if "REPORT_TYPE" in row.file_columns),
                     left_out)


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


def _is_implausible(value: Column, bounds: tuple[float, float]) -> Column:
    # try_cast gives a number, not null, for 'NaN', 'Infinity' and '1e309': a non-finite value is named too.
    # (`between` alone would catch them only because Spark orders NaN above every number.)
    finite = ~F.isnan(value) & (F.abs(value) != F.lit(float("inf")))
    return value.isNotNull() & ~(finite & value.between(*bounds))


def _completeness() -> Column:
    """How many measurements an observation has."""
    return reduce(lambda a, b: a + b, [F.col(name).isNotNull().cast("int") for name in MEASUREMENTS.values()])


def transform_records(raw: DataFrame, files_with_report_type: list[str]) -> DataFrame:
    """The readable LCD records of the raw rows (see lcd_records), each marked with whether its file has a
    REPORT_TYPE column (a cut-down file without one is chosen from by transform_choose_hourly_reports)."""
    return raw.filter(F.col("row_kind") == lcd_records.RECORD).select(
        "source_file", "source_line", *LCD_COLUMNS,
        F.col("source_file").isin(list(files_with_report_type)).alias("has_report_type"),
    )


def transform_unreadable(raw: DataFrame) -> DataFrame:
    """Records that cannot be read (broken quoting, wrong number of fields, invalid UTF-8 in a used field,
    an overlong value), as quarantine rows."""
    return raw.filter(F.col("row_kind") == lcd_records.BAD).select(
        "source_file", "source_line",
        *[F.lit(None).cast("string").alias(c) for c in ("station_id", "raw_date", "report_type")],
        F.lit("unreadable").alias("quarantine_kind"), F.col("problem").alias("quarantine_reason"), "raw_text",
    )


def transform_read_counts(raw: DataFrame) -> DataFrame:
    """Per file, the reader's own counts: records read (readable or not, blank lines included) and blank lines."""
    return raw.filter(F.col("row_kind") == lcd_records.FILE).select("source_file", "rows_read", "blank_lines")


def transform_hourly_reports(records: DataFrame) -> DataFrame:
    """Routine hourly (FM-15) and special (FM-16) reports, and every observation of a file without a
    REPORT_TYPE column; daily/monthly summaries (SOD, SOM) and other types are out of scope (see
    transform_quarantine)."""
    return records.filter(F.trim(F.col("REPORT_TYPE")).isin(*HOURLY_REPORT_TYPES) | ~F.col("has_report_type"))


def transform_choose_hourly_reports(parsed: DataFrame) -> DataFrame:
    """`superseded_reason` null for the observations to keep, per station and UTC hour:

    - every routine report (FM-15);
    - in an hour without one, the routine observation of the files without REPORT_TYPE (`report_type`
      null): the one nearest to minute 51 (ROUTINE_MINUTE: routine METARs are issued at :51 at most US
      ASOS stations), a tie broken by the most measurements, then the latest, then file and line;
    - in an hour with neither, the latest special report (FM-16).

    Every other observation of the hour gets the reason instead (field and value named)."""
    hour_key = ["station_id", F.date_trunc("hour", "observed_at_utc")]
    hour = Window.partitionBy(*hour_key)

    def hour_has(condition: Column) -> Column:
        return F.max(F.coalesce(condition, F.lit(False)).cast("int")).over(hour) == 1

    is_routine = F.col("report_type") == HOURLY_REPORT_TYPE
    is_untyped = F.col("report_type").isNull()
    same_kind = Window.partitionBy(*hour_key, F.coalesce(F.col("report_type"), F.lit("")))
    seconds_from_routine = F.abs(F.minute("observed_at_utc") * 60 + F.second("observed_at_utc") - ROUTINE_MINUTE * 60)
    untyped_order = same_kind.orderBy(seconds_from_routine.asc(), _completeness().desc(),
                                      F.col("observed_at_utc").desc(), F.col("source_file").desc(),
                                      F.col("source_line").desc())
    special_order = same_kind.orderBy(F.col("observed_at_utc").desc(), F.col("source_file").desc(),
                                      F.col("source_line").desc())
    shown_type = F.when(is_untyped, F.concat(F.lit("REPORT_TYPE absent (DATE '"), F.col("raw_date"), F.lit("')"))
                        ).otherwise(F.concat(F.lit("REPORT_TYPE '"), F.col("report_type"), F.lit("'")))
    kept_untyped = F.format_string("DATE '%s' (%s line %d)", *[F.first(c).over(untyped_order)
                                                                for c in ("raw_date", "source_file", "source_line")])
    return parsed.withColumn(
        "superseded_reason",
        F.when(is_routine, F.lit(None))
        .when(hour_has(is_routine), F.concat(shown_type, F.lit(": not used, a routine FM-15 report exists for this "
                                                               "station and hour")))
        .when(is_untyped & (F.row_number().over(untyped_order) > 1),
              F.concat(shown_type, F.lit(f": not used, the routine observation of this station and hour is taken "
                                         f"to be the one nearest to minute {ROUTINE_MINUTE}, then the most complete, "
                                         "then the latest: "), kept_untyped))
        .when(is_untyped, F.lit(None))
        .when(hour_has(is_untyped), F.concat(shown_type, F.lit(": not used, an observation of a file without "
                                                               "REPORT_TYPE is the routine one of this hour")))
        .when(F.row_number().over(special_order) > 1,
              F.concat(shown_type, F.lit(": not used, a later special report of the same hour is used"))),
    )


def transform_parse_observations(reports: DataFrame, stations: DataFrame) -> DataFrame:
    """Typed observations with units in the names and UTC timestamps.

    Rows whose DATE does not parse or whose station is unknown get a `rejection_reason`; the caller
    routes them to the quarantine rather than dropping them. `report_type` is null for the observations
    of a file without a REPORT_TYPE column.
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

    # a value that parsed but is implausible is named as that, not also as unparsed
    unparsed = F.array_compact(
        F.array(*[F.when(_is_unparsed(F.col(c), parsed[n]), F.lit(c)) for c, n in MEASUREMENTS.items()])
    )
    implausible = {}
    for name, bounds in WEATHER_RANGES.items():
        implausible[name] = _is_implausible(parsed[name], bounds)
        parsed[name] = F.when(implausible[name], F.lit(None)).otherwise(parsed[name])
    implausible_names = F.array_compact(
        F.array(*[F.when(bad, F.lit(name)) for name, bad in implausible.items()])
    )
    suspect = reduce(
        lambda a, b: a | b, [F.trim(F.col(c)).endswith("s") for c in MEASUREMENTS]
    )
    observed_at_lst = F.try_to_timestamp(F.trim(F.col("DATE")), F.lit("yyyy-MM-dd'T'HH:mm:ss"))

    typed = joined.select(
        F.trim(F.col("STATION")).alias("station_id"),
        "wban_id",
        "airport_code",
        F.when(F.col("has_report_type"), F.trim(F.col("REPORT_TYPE"))).alias("report_type"),
        *[parsed[name].alias(name) for name in MEASUREMENTS.values()],
        (direction_raw == "VRB").alias("is_variable_wind"),
        (precip_raw == "T").alias("has_trace_precip"),
        F.coalesce(suspect, F.lit(False)).alias("has_suspect_value"),
        F.array_join(unparsed, ",").alias("unparsed_fields"),
        F.array_join(implausible_names, ",").alias("implausible_fields"),
        observed_at_lst.alias("observed_at_lst"),
        F.expr("timestampadd(HOUR, -lst_utc_offset_hours, observed_at_lst)").alias("observed_at_utc"),
        "source_file",
        "source_line",
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
    """`duplicate_rank` per station and UTC instant: 1 for the report to keep, and where it is
    (`kept_file`, `kept_line`).

    The row with the most measured values wins; a tie is broken on the values themselves, then on the
    file and line, so the outcome does not depend on file order or partitioning.
    """
    fingerprint = F.concat_ws(
        "|", *[F.coalesce(F.col(n).cast("string"), F.lit("")) for n in MEASUREMENTS.values()],
        F.col("source_file"),
    )
    window = Window.partitionBy("station_id", "observed_at_utc").orderBy(
        _completeness().desc(), fingerprint.desc(), F.col("source_line").asc()
    )
    return observations.select(
        "*",
        F.row_number().over(window).alias("duplicate_rank"),
        F.first("source_file").over(window).alias("kept_file"),
        F.first("source_line").over(window).alias("kept_line"),
    )


def transform_deduplicate(observations: DataFrame) -> DataFrame:
    """One row per station and UTC instant (see transform_rank_duplicates)."""
    ranked = transform_rank_duplicates(observations)
    return ranked.filter(F.col("duplicate_rank") == 1).drop("duplicate_rank", "kept_file", "kept_line")


def transform_quarantine(records: DataFrame, parsed: DataFrame, ranked: DataFrame,
                         chosen: DataFrame | None = None, unreadable: DataFrame | None = None) -> DataFrame:
    """Every raw record that is not loaded, with the reason: records that cannot be read, other report
    types (SOD, SOM, ...), unparseable or unknown rows, observations not chosen for their hour, and
    duplicates that lost to a more complete report for the same station and time."""
    typed_file = F.col("has_report_type")
    common = ["source_file", "source_line", F.trim(F.col("STATION")).alias("station_id"),
              F.col("DATE").alias("raw_date")]
    other_types = records.filter(typed_file & ~F.trim(F.col("REPORT_TYPE")).isin(*HOURLY_REPORT_TYPES)).select(
        *common,
        F.trim(F.col("REPORT_TYPE")).alias("report_type"),
        F.lit("other_report_type").alias("quarantine_kind"),
        F.concat(F.lit("REPORT_TYPE: '"), F.trim(F.col("REPORT_TYPE")),
                 F.lit(f"' is not an hourly report ({' or '.join(HOURLY_REPORT_TYPES)})")).alias("quarantine_reason"),
    )
    missing_type = records.filter(typed_file & F.col("REPORT_TYPE").isNull()).select(
        *common,
        F.lit(None).cast("string").alias("report_type"),
        F.lit("other_report_type").alias("quarantine_kind"),
        F.lit(f"REPORT_TYPE: empty (expected {' or '.join(HOURLY_REPORT_TYPES)})").alias("quarantine_reason"),
    )
    kept = ["source_file", "source_line", "station_id", "raw_date", "report_type"]
    unparsed = parsed.filter(F.col("rejection_reason").isNotNull()).select(
        *kept, F.lit("rejected").alias("quarantine_kind"), F.col("rejection_reason").alias("quarantine_reason"),
    )
    parts = [other_types, missing_type, unparsed]
    if chosen is not None:
        parts.append(chosen.filter(F.col("superseded_reason").isNotNull()).select(
            *kept,
            F.when(F.col("report_type").isNull(), "not_routine").otherwise("special_superseded")
            .alias("quarantine_kind"),
            F.col("superseded_reason").alias("quarantine_reason"),
        ))
    parts.append(ranked.filter(F.col("duplicate_rank") > 1).select(
        *kept,
        F.lit("duplicate").alias("quarantine_kind"),
        F.format_string("duplicate: STATION '%s' DATE '%s' (%s UTC) is also at %s line %d, which is loaded "
                        "(at least as complete)", F.col("station_id"), F.col("raw_date"),
                        F.date_format("observed_at_utc", "yyyy-MM-dd HH:mm"), F.col("kept_file"),
                        F.col("kept_line")).alias("quarantine_reason"),
    ))
    parts = [part.withColumn("raw_text", F.lit(None).cast("string")) for part in parts]
    if unreadable is not None:
        parts.append(unreadable)
    return reduce(DataFrame.unionByName, parts).select(*QUARANTINE_COLUMNS)


def transform_file_reconciliation(read_counts: DataFrame, loaded: DataFrame, quarantine: DataFrame) -> DataFrame:
    """Per file: rows read = rows loaded + rows quarantined + blank lines (checked by the caller).

    `read_counts` (source_file, rows_read, blank_lines) is what the reader counted, independently of what
    the transforms made of the records, so a record lost on the way shows up here."""
    counted_loaded = loaded.groupBy("source_file").agg(F.count(F.lit(1)).alias("rows_loaded"))
    quarantined = quarantine.groupBy("source_file").agg(F.count(F.lit(1)).alias("rows_quarantined"))
    return (
        read_counts.join(counted_loaded, "source_file", "full").join(quarantined, "source_file", "full")
        .fillna(0, ["rows_read", "blank_lines", "rows_loaded", "rows_quarantined"])
        .select("source_file", "rows_read", "rows_loaded", "rows_quarantined", "blank_lines")
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


def load(spark: SparkSession, settings: JobSettings, hourly: DataFrame, daily: DataFrame,
         quarantine: DataFrame, daily_files_table: DataFrame | None) -> dict[str, int]:
    """Stage every table, commit them in one step, then register them (spark_prep/lake_tables.py)."""
    folders = {
        "hourly_observations": stage_table(settings, "hourly_observations", hourly, "observed_at_utc"),
        "daily_summaries": stage_table(settings, "daily_summaries", daily, "summary_date"),
    }
    if daily_files_table is not None:
        folders["cdo_daily_summaries"] = stage_table(settings, "cdo_daily_summaries", daily_files_table,
                                                     "summary_date")
    folders["_quarantine"] = stage_quarantine(settings, quarantine)
    snapshot = commit(spark, settings, folders)
    written = {"hourly_observations": hourly.schema, "daily_summaries": daily.schema}
    if daily_files_table is not None:
        written["cdo_daily_summaries"] = daily_files_table.schema
    register_tables(spark, settings, snapshot, written)
    return {"hourly_partitions": partition_count(spark, settings, folders["hourly_observations"]),
            "daily_partitions": partition_count(spark, settings, folders["daily_summaries"])}


# ---------------------------------------------------------------- job


class ReconciliationError(RuntimeError):
    """Some raw rows were neither loaded nor quarantined."""


@dataclass
class JobResult:
    rows_read: int  # records read, readable or not, and blank lines: = hourly_rows + rows_quarantined + blank_lines
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
    files: list[dict]  # per file: source_file, rows_read, rows_loaded, rows_quarantined, blank_lines
    cdo_daily_rows: int = 0
    cdo_files: list[dict] | None = None
    special_reports_superseded: int = 0
    observations_not_routine: int = 0  # of files without REPORT_TYPE: not the routine one of their hour
    rows_unreadable: int = 0
    blank_lines: int = 0
    files_left_out: list[str] = field(default_factory=list)


def _check_reconciled(files: list[dict], what: str) -> None:
    broken = [f for f in files if f["rows_read"] != f["rows_loaded"] + f["rows_quarantined"] + f["blank_lines"]]
    if broken:
        raise ReconciliationError(f"{what}: rows read != loaded + quarantined + blank lines, nothing was written: "
                                  f"{broken}")


def _run_daily_files(spark: SparkSession, settings: JobSettings,
                     stations: DataFrame) -> tuple[list[dict], DataFrame, DataFrame]:
    """CDO daily exports and GHCN-Daily files -> rows of `cdo_daily_summaries`, per-file counts, quarantine."""
    daily_inputs = []  # (raw rows in the CDO layout, units)
    if settings.raw_cdo_daily_path:
        files, _ = lcd_records.list_input_files(spark, settings.raw_cdo_daily_path, "CDO daily input")
        cdo_raw = cdo_daily.transform_with_all_columns(
            spark.read.option("header", True).option("inferSchema", False)
            .csv([lcd_records.literal_pattern(path) for path in files])
            .withColumn("source_file", lcd_records.file_name_column())
        )
        missing = [c for c in cdo_daily.REQUIRED_COLUMNS if c not in cdo_raw.columns]
        if missing:
            raise InputError(f"CDO daily input {settings.raw_cdo_daily_path}: required columns {missing} not found; "
                             f"found {sorted(cdo_raw.columns)}")
        daily_inputs.append((cdo_raw, settings.cdo_units))
    if settings.raw_ghcn_daily_path:
        files, _ = lcd_records.list_input_files(spark, settings.raw_ghcn_daily_path, "GHCN-Daily input", ".dly")
        ghcn_raw = ghcn_daily.transform_to_cdo_layout(ghcn_daily.transform_day_values(ghcn_daily.extract(
            spark, [lcd_records.literal_pattern(path) for path in files])))
        daily_inputs.append((ghcn_raw, "metric"))
    # both layouts are the same GHCN-Daily data: parsed apart (units differ), ranked together, so a
    # station-day delivered in both is loaded once and the other copy quarantined as a duplicate
    columns = ["source_file", "STATION", "DATE", *[c for e in cdo_daily.ELEMENTS for c in (e, f"{e}_ATTRIBUTES")]]
    daily_raw = reduce(DataFrame.unionByName, [r.select(*columns) for r, _ in daily_inputs])
    cdo_parsed = reduce(DataFrame.unionByName, [cdo_daily.transform_parse_daily(r.select(*columns), stations, u)
                                                 for r, u in daily_inputs])
    cdo_ranked = cdo_daily.transform_rank_duplicates(cdo_parsed.filter(F.col("rejection_reason").isNull()))
    cdo_table = cdo_daily.transform_daily_table(cdo_ranked).cache()
    cdo_quarantine = cdo_daily.transform_quarantine(cdo_parsed, cdo_ranked).cache()
    read_counts = daily_raw.groupBy("source_file").agg(F.count(F.lit(1)).alias("rows_read")).withColumn(
        "blank_lines", F.lit(0).cast("bigint"))  # the CSV and text readers skip blank lines unseen
    cdo_files = [row.asDict() for row in
                 transform_file_reconciliation(read_counts, cdo_table, cdo_quarantine).collect()]
    _check_reconciled(cdo_files, "daily summaries")
    return cdo_files, cdo_table, cdo_quarantine


def run(spark: SparkSession, settings: JobSettings) -> JobResult:
    if not settings.run_id:
        settings = JobSettings(**{**asdict(settings), "run_id": uuid.uuid4().hex[:12]})
    recovered = [f"deleted {folder}: no committed run uses it" for folder in tidy(spark, settings)]
    refuse_a_used_run_id(spark, settings)

    extracted = extract(spark, settings)
    raw = extracted.raw
    records = transform_records(raw, extracted.files_with_report_type)
    parsed = transform_parse_observations(transform_hourly_reports(records), extracted.stations).cache()
    chosen = transform_choose_hourly_reports(parsed.filter(F.col("rejection_reason").isNull()))
    ranked = transform_rank_duplicates(chosen.filter(F.col("superseded_reason").isNull()))
    hourly = transform_hourly_table(ranked.filter(F.col("duplicate_rank") == 1)).cache()
    daily = transform_daily_summaries(hourly).cache()
    quarantine = transform_quarantine(records, parsed, ranked, chosen, transform_unreadable(raw)).cache()

    files = [row.asDict() for row in
             transform_file_reconciliation(transform_read_counts(raw), hourly, quarantine).collect()]
    _check_reconciled(files, "LCD hourly files")
    kinds = {row.quarantine_kind: row.n for row in quarantine.groupBy("quarantine_kind").agg(
        F.count(F.lit(1)).alias("n")).collect()}
    cdo_files, cdo_table = None, None
    if settings.raw_cdo_daily_path or settings.raw_ghcn_daily_path:
        cdo_files, cdo_table, cdo_quarantine = _run_daily_files(spark, settings, extracted.stations)
        quarantine = quarantine.unionByName(cdo_quarantine, allowMissingColumns=True)
    partitions = load(spark, settings, hourly, daily, quarantine, cdo_table)
    # after the commit: the copies before the previous run, which no reader can be on now
    recovered += [f"deleted {folder}: no committed run uses it" for folder in tidy(spark, settings)]
    result = JobResult(
        rows_read=sum(f["rows_read"] for f in files),
        rows_quarantined=sum(f["rows_quarantined"] for f in files),
        rows_other_report_types=kinds.get("other_report_type", 0),
        special_reports_superseded=kinds.get("special_superseded", 0),
        observations_not_routine=kinds.get("not_routine", 0),
        rows_unreadable=kinds.get("unreadable", 0),
        rows_rejected=kinds.get("rejected", 0),
        duplicates_resolved=kinds.get("duplicate", 0),
        rows_with_implausible_values=hourly.filter(F.col("implausible_fields") != "").count(),
        hourly_rows=sum(f["rows_loaded"] for f in files),
        blank_lines=sum(f["blank_lines"] for f in files),
        daily_rows=daily.count(),
        stations=hourly.select("station_id").distinct().count(),
        recovered=recovered,
        files=files,
        cdo_daily_rows=sum(f["rows_loaded"] for f in cdo_files or []),
        cdo_files=cdo_files,
        files_left_out=extracted.left_out,
        **partitions,
    )
    for df in (raw, parsed, hourly, daily, quarantine, cdo_table):
        if df is not None:
            df.unpersist()
    return result


def parse_args(argv: list[str] | None = None) -> JobSettings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw-weather", default="",
                        help="LCD CSV file or folder (local or s3://; taken literally, not as a glob pattern); "
                             "empty: daily files only")
    parser.add_argument("--stations", required=True, help="airport_weather_stations.csv seed")
    parser.add_argument("--lake", required=True, help="lake root (local folder or s3:// prefix)")
    parser.add_argument("--database", default="weather")
    parser.add_argument("--metastore", choices=["derby", "external"], default="derby",
                        help="derby: embedded local metastore; external: the cluster's (Glue on EMR)")
    parser.add_argument("--master", default=None, help="Spark master, e.g. local[2]; unset under spark-submit")
    parser.add_argument("--raw-cdo-daily", default="", help="optional NOAA CDO daily CSV file or folder")
    parser.add_argument("--raw-ghcn-daily", default="", help="optional GHCN-Daily .dly file or folder (its .dly files)")
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
    except (InputError, FileNotFoundError) as refused:  # the input is wrong, not the job: the message says how
        print(f"weather job: {refused}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
