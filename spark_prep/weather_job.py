"""NOAA LCD hourly files -> Hive external Parquet tables `weather.hourly_observations` and
`weather.daily_summaries`; optionally NOAA daily summaries (CDO CSV exports and GHCN-Daily `.dly`
files) -> `weather.cdo_daily_summaries`.

main -> extract -> pure transforms -> load, top-down in this file. The transforms live in modules of their
own, tested on tiny inline frames: spark_prep/lcd_hourly.py (report choice, parsing, units, UTC, dedup,
hourly table, daily summaries), spark_prep/lcd_quarantine.py (the records not loaded, with the reason, and
per-file reconciliation), spark_prep/cdo_daily.py and ghcn_daily.py (the daily files).

Reading (spark_prep/lcd_records.py): input paths are taken literally (never as glob patterns), every
record keeps its file's exact name and the physical line it starts on, and every line after a header is
loaded, quarantined (`_quarantine`, with file, line and a reason naming the field and value) or counted
as blank: per file, read = loaded + quarantined + blank is checked before anything is written.

Runs with `spark-submit spark_prep/weather_job.py ...` (an EMR step in production; every module imported
here ships next to it, spark_prep.PY_FILES) and with `python -m spark_prep.weather_job ...` locally. It
depends on nothing but its arguments: not on the working folder (tests/test_spark_cluster.py submits it to a
standalone cluster from an empty one), and the embedded metastore lives in the lake.

Load is idempotent and crash-safe (spark_prep/lake_tables.py): every table is staged in a folder of this
run, then all are committed at once by replacing one pointer file (spark_prep/lake_snapshots.py); the next
run deletes whatever a killed run left.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from dataclasses import asdict, dataclass, field
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

try:  # package import (python -m spark_prep.weather_job, tests) or a file next to it (spark-submit --py-files)
    from spark_prep import cdo_daily, ghcn_daily, lake_tables, lcd_hourly, lcd_quarantine, lcd_records
except ImportError:  # pragma: no cover - spark-submit without the package on the path
    import cdo_daily
    import ghcn_daily
    import lake_tables
    import lcd_hourly
    import lcd_quarantine
    import lcd_records

# ---------------------------------------------------------------- settings


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
    metastore = derby_metastore(settings)
    if metastore:
        builder = (
            builder.config(
                "spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={metastore}/metastore_db;create=true",
            )
            .config("spark.sql.warehouse.dir", f"file:{metastore}/warehouse")
            # Hive's own session folder, else a new /tmp/<uuid>_resources every run
            .config("spark.hadoop.hive.downloaded.resources.dir", f"{metastore}/resources")
        )
    spark = builder.getOrCreate()
    if metastore:
        # Derby's home (derby.log) is a JVM system property. Under spark-submit the driver JVM runs before this
        # code does, so spark.driver.extraJavaOptions would be ignored and derby.log land in the driver's working
        # folder. Derby reads the property when it boots, at the metastore's first use, which is after this.
        spark.sparkContext._jvm.java.lang.System.setProperty("derby.system.home", metastore)
    return spark


def derby_metastore(settings: JobSettings) -> str | None:
    """The embedded metastore's folder, inside the lake argument (never the working folder); None when the
    metastore is the cluster's."""
    if settings.metastore != "derby":
        return None
    return os.path.join(settings.lake_uri.removeprefix("file:"), "_metastore")


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
    raw = lcd_records.read_records(spark, files, lcd_hourly.LCD_COLUMNS, lcd_hourly.REQUIRED_COLUMNS).cache()
    read = raw.filter(F.col("row_kind") == lcd_records.FILE).select("source_file", "problem", "file_columns").collect()
    problems = [f"{row.source_file}: {row.problem}" for row in read if row.problem]
    if problems:
        raw.unpersist()
        raise InputError(
            f"LCD input {settings.raw_weather_path}: {len(problems)} file(s) cannot be read as NOAA LCD CSV: "
            + "; ".join(problems) + ". Expected a header line naming at least "
            f"{list(lcd_hourly.REQUIRED_COLUMNS)}, then one line per observation; fix or move these files, then rerun.")
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
                 lcd_quarantine.transform_file_reconciliation(read_counts, cdo_table, cdo_quarantine).collect()]
    _check_reconciled(cdo_files, "daily summaries")
    return cdo_files, cdo_table, cdo_quarantine


def run(spark: SparkSession, settings: JobSettings) -> JobResult:
    if not settings.run_id:
        settings = JobSettings(**{**asdict(settings), "run_id": uuid.uuid4().hex[:12]})
    recovered = [f"deleted {folder}: no committed run uses it" for folder in lake_tables.tidy(spark, settings)]
    lake_tables.refuse_a_used_run_id(spark, settings)

    extracted = extract(spark, settings)
    raw = extracted.raw
    records = lcd_hourly.transform_records(raw, extracted.files_with_report_type)
    reports = lcd_hourly.transform_hourly_reports(records)
    parsed = lcd_hourly.transform_parse_observations(reports, extracted.stations).cache()
    chosen = lcd_hourly.transform_choose_hourly_reports(parsed.filter(F.col("rejection_reason").isNull()))
    ranked = lcd_hourly.transform_rank_duplicates(chosen.filter(F.col("superseded_reason").isNull()))
    hourly = lcd_hourly.transform_hourly_table(ranked.filter(F.col("duplicate_rank") == 1)).cache()
    daily = lcd_hourly.transform_daily_summaries(hourly).cache()
    unreadable = lcd_quarantine.transform_unreadable(raw)
    quarantine = lcd_quarantine.transform_quarantine(records, parsed, ranked, chosen, unreadable).cache()

    read_counts = lcd_quarantine.transform_read_counts(raw)
    files = [row.asDict() for row in
             lcd_quarantine.transform_file_reconciliation(read_counts, hourly, quarantine).collect()]
    _check_reconciled(files, "LCD hourly files")
    kinds = {row.quarantine_kind: row.n for row in quarantine.groupBy("quarantine_kind").agg(
        F.count(F.lit(1)).alias("n")).collect()}
    cdo_files, cdo_table = None, None
    if settings.raw_cdo_daily_path or settings.raw_ghcn_daily_path:
        cdo_files, cdo_table, cdo_quarantine = _run_daily_files(spark, settings, extracted.stations)
        quarantine = quarantine.unionByName(cdo_quarantine, allowMissingColumns=True)
    partitions = load(spark, settings, hourly, daily, quarantine, cdo_table)
    # after the commit: the copies before the previous run, which no reader can be on now
    recovered += [f"deleted {folder}: no committed run uses it" for folder in lake_tables.tidy(spark, settings)]
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


# ---------------------------------------------------------------- load


def load(spark: SparkSession, settings: JobSettings, hourly: DataFrame, daily: DataFrame,
         quarantine: DataFrame, daily_files_table: DataFrame | None) -> dict[str, int]:
    """Stage every table, commit them in one step, then register them (spark_prep/lake_tables.py)."""
    folders = {
        "hourly_observations": lake_tables.stage_table(settings, "hourly_observations", hourly, "observed_at_utc"),
        "daily_summaries": lake_tables.stage_table(settings, "daily_summaries", daily, "summary_date"),
    }
    if daily_files_table is not None:
        folders["cdo_daily_summaries"] = lake_tables.stage_table(settings, "cdo_daily_summaries",
                                                                 daily_files_table, "summary_date")
    folders["_quarantine"] = lake_tables.stage_quarantine(settings, quarantine)
    snapshot = lake_tables.commit(spark, settings, folders)
    written = {"hourly_observations": hourly.schema, "daily_summaries": daily.schema}
    if daily_files_table is not None:
        written["cdo_daily_summaries"] = daily_files_table.schema
    lake_tables.register_tables(spark, settings, snapshot, written)
    return {"hourly_partitions": lake_tables.partition_count(spark, settings, folders["hourly_observations"]),
            "daily_partitions": lake_tables.partition_count(spark, settings, folders["daily_summaries"])}


# ---------------------------------------------------------------- main


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
