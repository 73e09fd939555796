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

Runs with `spark-submit spark_prep/weather_job.py ...` (an EMR step in production; the package it imports
ships as spark_prep.zip, spark_prep.PY_PACKAGES) and with `python -m spark_prep.weather_job ...` locally. It
depends on nothing but its arguments: not on the working folder (tests/test_spark_cluster.py submits it to a
standalone cluster from an empty one), and the embedded metastore lives in the lake.

Load is idempotent and crash-safe (spark_prep/lake_tables.py): every table is staged in a folder of this
run, then all are committed at once by replacing one pointer file (spark_prep/lake_snapshots.py); the next
run deletes whatever a killed run left.

Longer than the 350 lines a module here aims at, on purpose: what is left is the job alone (its settings and
Spark session, extract, the run that decides which months to rewrite and checks every file's counts, load,
main), one sequence read top-down; the transforms, the reading and the lake's I/O are the modules above.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import reduce

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_prep import (
    cdo_daily,
    ghcn_daily,
    lake_inputs,
    lake_schema,
    lake_tables,
    lcd_hourly,
    lcd_quarantine,
    lcd_records,
)
from spark_prep.lake_snapshots import QUARANTINE, Snapshot

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
    full: bool = False  # recompute every table from every file, even if the committed snapshot could be built on

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
    parser.add_argument("--full", action="store_true",
                        help="recompute everything from every file instead of only what changed since the "
                             "committed snapshot")
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
        full=args.full,
    )


# A local job is over in seconds to minutes, too soon for HotSpot's optimising compiler (C2) to pay back the CPU its
# compile threads take from the job's two cores: with the quick compiler (C1) alone the sample's job used about 40%
# less CPU for the same result (BENCHMARKS.md, "The weather job's JIT"). A cluster's driver keeps the JVM's default.
LOCAL_DRIVER_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"
SESSION_OPTIONS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
}


def submit_options(settings: JobSettings, environ: Mapping[str, str]) -> str | None:
    """SPARK_SUBMIT_OPTS for the driver JVM a local session starts, or None to leave it as it is. Spark's launcher
    adds it to the driver's command line beside the user's own spark.driver.extraJavaOptions (spark-defaults.conf),
    so the user's options stay; setting that property here would replace them. Under spark-submit or on a cluster
    the JVM is already running or not ours to tune."""
    if not (settings.master and settings.master.startswith("local")):
        return None
    given = environ.get("SPARK_SUBMIT_OPTS", "")
    return given if LOCAL_DRIVER_JAVA_OPTIONS in given.split() else f"{given} {LOCAL_DRIVER_JAVA_OPTIONS}".strip()


def build_spark(settings: JobSettings) -> SparkSession:
    builder = SparkSession.builder.appName("flightdelay-weather-prep").enableHiveSupport()
    if settings.master:
        builder = builder.master(settings.master)
    for key, value in SESSION_OPTIONS.items():
        builder = builder.config(key, value)
    jvm_options = submit_options(settings, os.environ)
    if jvm_options is not None:  # read by the launcher PySpark starts the driver JVM with (the job's own process)
        os.environ["SPARK_SUBMIT_OPTS"] = jvm_options
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


# The job's own table: every parsed observation that competed for its station and hour (the ones loaded and the
# ones that lost to another report), partitioned like the hourly table. A later run recomputes a partition from
# it and the rows of new or changed files, exactly as a full run would, without reading the unchanged files.
OBSERVATIONS = "_observations"
PARTITIONS = list(lake_tables.PARTITION_COLUMNS)


@dataclass(frozen=True)
class Extracted:
    raw: DataFrame  # lcd_records rows of the files to parse: records, unreadable records, a `file` row per file
    stations: DataFrame
    files_with_report_type: list[str]  # the others are cut-down files without a REPORT_TYPE column
    left_out: list[str]  # entries of the input folder not read, with the reason
    manifest: list[dict] = field(default_factory=list)  # every LCD input file: name, size, sha256
    changes: lake_inputs.Changes | None = None  # against the committed manifest (all added on a full run)
    previous: Snapshot | None = None  # the committed snapshot, if any
    incremental: bool = False  # build on `previous`: parse only changes.to_read
    code_version: str = ""


def read_manifest(spark: SparkSession, files: list[str]) -> list[dict]:
    """Each file's manifest entry (exact name, size, sha256), hashed where the bytes are (executors)."""
    if not files:
        return []
    pattern = ",".join(lcd_records.literal_pattern(path) for path in files)
    entries = spark.sparkContext.binaryFiles(pattern).map(
        lambda item: lake_inputs.entry(lcd_records.file_name(item[0]), item[1])).collect()
    return sorted(entries, key=lambda e: e["file"])


def extract(spark: SparkSession, settings: JobSettings) -> Extracted:
    """Raw LCD rows with file and line (see lcd_records) of the files to parse, and the station reference table.

    The files to parse: all of them on a full run; on an incremental one (the lake's committed snapshot was
    built by the same code and stations seed, and `--full` is not given) only the files that are new or
    changed since it (spark_prep/lake_inputs.py). Of a file that only grew since (a month appended to the
    station's file for the year), only the records after its committed lines are taken (lcd_records.file_rows):
    its committed rows stand, as an unchanged file's do.

    A file that cannot be read at all (empty, no header, no STATION or DATE column) stops the job before
    anything is written: it is not an LCD file, and loading the others would hide that it was not loaded."""
    files: list[str] = []
    left_out: list[str] = []
    if settings.raw_weather_path:  # else daily files only: no LCD file this run, so the hourly table is empty
        files, left_out = lcd_records.list_input_files(spark, settings.raw_weather_path, "LCD input")
    previous = lake_tables.read_snapshot(spark, settings.weather_uri)
    stations_bytes = spark.sparkContext.binaryFiles(lcd_records.literal_pattern(settings.stations_path)).collect()
    version = lake_inputs.code_version(b"".join(content for _, content in stations_bytes))
    manifest = read_manifest(spark, files)
    inputs = previous.inputs if previous else None
    incremental = bool(not settings.full and inputs and inputs["code_version"] == version
                       and OBSERVATIONS in previous.tables)
    changes = lake_inputs.diff(inputs["lcd"] if incremental else [], manifest)
    to_read = [path for path in files if lcd_records.file_name(path) in set(changes.to_read)]
    committed = {e["file"]: (e["size"], e["sha256"]) for e in inputs["lcd"] if e["file"] in changes.changed} \
        if incremental else {}
    raw = lcd_records.read_records(spark, to_read, lcd_hourly.LCD_COLUMNS, lcd_hourly.REQUIRED_COLUMNS,
                                   committed).cache()
    read = raw.filter(F.col("row_kind") == lcd_records.FILE).select(
        "source_file", "problem", "file_columns", "resumed_after_line").collect()
    changes = changes.with_appended(row.source_file for row in read if row.resumed_after_line is not None)
    problems = [f"{row.source_file}: {row.problem}" for row in read if row.problem]
    if problems:
        raw.unpersist()
        raise InputError(
            f"LCD input {settings.raw_weather_path}: {len(problems)} file(s) cannot be read as NOAA LCD CSV: "
            + "; ".join(problems) + ". Expected a header line naming at least "
            f"{list(lcd_hourly.REQUIRED_COLUMNS)}, then one line per observation; fix or move these files, then rerun.")
    not_read = sorted({lcd_records.file_name(path) for path in to_read} - {row.source_file for row in read})
    if not_read:  # binaryFiles matched other files than the ones listed: a bug here, never to pass silently
        raise RuntimeError(f"LCD input {settings.raw_weather_path}: listed but not read: {not_read}")
    stations = (
        spark.read.option("header", True)
        .schema("airport_code string, station_id string, usaf_id string, wban_id string, "
                "station_name string, lst_utc_offset_hours int")
        .csv(lcd_records.literal_pattern(settings.stations_path))
    )
    return Extracted(raw, stations, sorted(row.source_file for row in read if "REPORT_TYPE" in row.file_columns),
                     left_out, manifest, changes, previous, incremental, version)


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
    files: list[dict]  # per LCD file of the lake: source_file, rows_read, rows_loaded, rows_quarantined, blank_lines
    cdo_daily_rows: int = 0
    cdo_files: list[dict] | None = None
    special_reports_superseded: int = 0
    observations_not_routine: int = 0  # of files without REPORT_TYPE: not the routine one of their hour
    rows_unreadable: int = 0
    blank_lines: int = 0
    files_left_out: list[str] = field(default_factory=list)
    mode: str = "full"  # or "incremental": built on the committed snapshot, parsing only new or changed files
    files_processed: list[str] = field(default_factory=list)  # the LCD files parsed by this run
    files_appended: list[str] = field(default_factory=list)  # of those, files that grew: only their new lines taken
    files_removed: list[str] = field(default_factory=list)  # LCD files of the previous snapshot no longer there
    files_recounted: list[str] = field(default_factory=list)  # LCD files whose counts are new (to be recorded)
    cdo_files_processed: bool = False  # the daily files were read (else their table is the committed one)
    changed_months: list[str] = field(default_factory=list)  # YYYY-MM whose rows differ from the previous snapshot
    snapshot: str = ""  # the run id of the snapshot this run committed


def _check_reconciled(files: list[dict], what: str) -> None:
    broken = [f for f in files if f["rows_read"] != f["rows_loaded"] + f["rows_quarantined"] + f["blank_lines"]]
    if broken:
        raise ReconciliationError(f"{what}: rows read != loaded + quarantined + blank lines, nothing was committed: "
                                  f"{broken}")


def _read_cdo_exports(spark: SparkSession, files: list[str]) -> DataFrame:
    """CDO exports, each by its own header: an export holds the elements its order selected, in the order chosen,
    so one header read for all files would put one file's TMIN under another's TMAX. Header names are matched
    without regard to case or a leading byte-order mark (a spreadsheet's re-save)."""
    exports = []
    for path in files:
        export = spark.read.option("header", True).option("inferSchema", False).csv(lcd_records.literal_pattern(path))
        export = export.toDF(*[name.lstrip("\ufeff").strip().upper() for name in export.columns])
        missing = [c for c in cdo_daily.REQUIRED_COLUMNS if c not in export.columns]
        if missing:
            raise InputError(f"CDO daily file {path}: its header lacks {missing} (it has {export.columns}); export "
                             "it again from Climate Data Online as CSV with station and date, or move it out of the "
                             "daily files' folder")
        exports.append(cdo_daily.transform_with_all_columns(export).withColumn(
            "source_file", lcd_records.file_name_column()))
    return reduce(DataFrame.unionByName, [export.select(*cdo_daily.LAYOUT_COLUMNS) for export in exports])


def _run_daily_files(spark: SparkSession, settings: JobSettings,
                     stations: DataFrame) -> tuple[list[dict], DataFrame, DataFrame]:
    """CDO daily exports and GHCN-Daily files -> rows of `cdo_daily_summaries`, per-file counts, quarantine."""
    daily_inputs = []  # (raw rows in the CDO layout, units)
    read_files = []
    if settings.raw_cdo_daily_path:
        files, _ = lcd_records.list_input_files(spark, settings.raw_cdo_daily_path, "CDO daily input")
        read_files += files
        daily_inputs.append((_read_cdo_exports(spark, files), settings.cdo_units))
    if settings.raw_ghcn_daily_path:
        files, _ = lcd_records.list_input_files(spark, settings.raw_ghcn_daily_path, "GHCN-Daily input", ".dly")
        read_files += files
        ghcn_raw = ghcn_daily.transform_to_cdo_layout(ghcn_daily.transform_day_values(ghcn_daily.extract(
            spark, [lcd_records.literal_pattern(path) for path in files])))
        daily_inputs.append((ghcn_raw, "metric"))
    # both layouts are the same GHCN-Daily data: parsed apart (units differ), ranked together, so a
    # station-day delivered in both is loaded once and the other copy quarantined as a duplicate
    columns = cdo_daily.LAYOUT_COLUMNS
    daily_raw = reduce(DataFrame.unionByName, [r.select(*columns) for r, _ in daily_inputs])
    cdo_parsed = reduce(DataFrame.unionByName, [cdo_daily.transform_parse_daily(r.select(*columns), stations, u)
                                                 for r, u in daily_inputs])
    cdo_ranked = cdo_daily.transform_rank_duplicates(cdo_parsed.filter(F.col("rejection_reason").isNull()))
    cdo_table = cdo_daily.transform_daily_table(cdo_ranked).cache()
    cdo_quarantine = cdo_daily.transform_quarantine(cdo_parsed, cdo_ranked).cache()
    # every file read, a header-only export too (it has no row to be counted from)
    every_file = spark.createDataFrame([(path.rsplit("/", 1)[-1],) for path in read_files], "source_file string")
    read_counts = every_file.join(daily_raw.groupBy("source_file").agg(F.count(F.lit(1)).alias("rows_read")),
                                  "source_file", "left").select(
        "source_file", F.coalesce("rows_read", F.lit(0)).cast("bigint").alias("rows_read"),
        F.lit(0).cast("bigint").alias("blank_lines"))  # the CSV and text readers skip blank lines unseen
    cdo_files = [row.asDict() for row in
                 lcd_quarantine.transform_file_reconciliation(read_counts, cdo_table, cdo_quarantine).collect()]
    _check_reconciled(cdo_files, "daily summaries")
    return cdo_files, cdo_table, cdo_quarantine


def _ddl(schema) -> str:
    """A frame's schema as DDL with the partition columns last (how a partitioned folder is read back)."""
    fields = [f for f in schema.fields if f.name not in PARTITIONS] + [
        next(f for f in schema.fields if f.name == name) for name in PARTITIONS]
    return ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in fields)


def _lake_ddl(table: str) -> str:
    return ", ".join(f"`{c.name}` {c.type}" for c in (*lake_schema.TABLES[table], *lake_schema.PARTITION_KEYS))


QUARANTINE_DDL = ", ".join(f"`{c}` {'bigint' if c == 'source_line' else 'string'}"
                           for c in lcd_quarantine.QUARANTINE_COLUMNS)


def _digests(spark: SparkSession, settings: JobSettings, snapshot: Snapshot | None, table: str) -> dict[str, str]:
    """A committed table's partition digests: from the snapshot, or (a snapshot from before digests) its rows."""
    if snapshot is None or table not in snapshot.tables:
        return {}
    if table in snapshot.partitions:
        return snapshot.partitions[table]
    try:
        rows = lake_tables.read_committed(spark, settings, snapshot.tables[table], _lake_ddl(table))
        return lake_tables.partition_digests(rows, lake_schema.column_names(table))
    except AnalysisException:  # an empty copy: no file
        return {}


def _changed_months(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {key.rsplit("=", 1)[1] for key in set(before) | set(after) if before.get(key) != after.get(key)}


def run(spark: SparkSession, settings: JobSettings) -> JobResult:
    """Parse the new or changed LCD files, recompute the partitions (station, month) their rows fall in or their
    old rows were in, carry every other partition over, and commit the tables with the input manifest.

    A partition's rows depend only on the observations of that station and month: a report is chosen among
    those of its station and UTC hour, duplicates are those of a station and instant, a daily summary is a
    local-standard-time day, and the partition month is the local-standard-time month, so each of these lies
    in one partition. Recomputing a partition from all its observations (the committed ones of unchanged
    files, kept in OBSERVATIONS, and those of the files parsed now) therefore gives the rows a full run gives.
    The CDO/GHCN daily table is recomputed whole whenever its files or the code changed."""
    if not settings.run_id:
        settings = JobSettings(**{**asdict(settings), "run_id": uuid.uuid4().hex[:12]})
    recovered = [f"deleted {folder}: no committed run uses it" for folder in lake_tables.tidy(spark, settings)]
    lake_tables.refuse_a_used_run_id(spark, settings)

    extracted = extract(spark, settings)
    raw, changes = extracted.raw, extracted.changes
    base = extracted.previous if extracted.incremental else None  # the snapshot whose rows this run builds on
    records = lcd_hourly.transform_records(raw, extracted.files_with_report_type)
    reports = lcd_hourly.transform_hourly_reports(records)
    parsed = lcd_hourly.transform_parse_observations(reports, extracted.stations).cache()
    fresh = parsed.filter(F.col("rejection_reason").isNull()).drop("rejection_reason").withColumn(
        "observation_month", F.date_format("observed_at_lst", "yyyy-MM"))
    observations_ddl = _ddl(fresh.schema)
    affected_keys = fresh.select(*PARTITIONS)
    committed_observations = None
    if base is not None:
        committed_observations = lake_tables.read_committed(spark, settings, base.folder(OBSERVATIONS),
                                                            observations_ddl)
        affected_keys = affected_keys.unionByName(
            committed_observations.filter(F.col("source_file").isin(changes.gone)).select(*PARTITIONS))
    affected_keys = affected_keys.distinct().cache()
    affected = {(row[0], row[1]) for row in affected_keys.collect()}
    candidates = fresh
    kept = None
    if committed_observations is not None:
        kept = committed_observations.filter(~F.col("source_file").isin(changes.gone)).join(
            F.broadcast(affected_keys), PARTITIONS, "left_semi")
        candidates = fresh.unionByName(kept)
    candidates = candidates.cache()
    chosen = lcd_hourly.transform_choose_hourly_reports(candidates)
    ranked = lcd_hourly.transform_rank_duplicates(chosen.filter(F.col("superseded_reason").isNull()))
    hourly = lcd_hourly.transform_hourly_table(ranked.filter(F.col("duplicate_rank") == 1)).cache()
    daily = lcd_hourly.transform_daily_summaries(hourly).cache()
    unreadable = lcd_quarantine.transform_unreadable(raw)
    quarantine = lcd_quarantine.transform_quarantine(records, parsed, ranked, chosen, unreadable)
    previous_quarantine = None
    if extracted.previous is not None and QUARANTINE in extracted.previous.tables:
        previous_quarantine = lake_tables.read_committed(spark, settings, extracted.previous.folder(QUARANTINE),
                                                         QUARANTINE_DDL)
    if base is not None and previous_quarantine is not None:
        # LCD rows (they have a line; daily rows do not) of unchanged files, less those recomputed above
        quarantine = quarantine.unionByName(
            previous_quarantine.filter(F.col("source_line").isNotNull() & ~F.col("source_file").isin(changes.gone))
            .join(kept.select("source_file", "source_line"), ["source_file", "source_line"], "left_anti"))

    daily_given = bool(settings.raw_cdo_daily_path or settings.raw_ghcn_daily_path)
    previous_daily = (extracted.previous.inputs or {}).get("daily") if extracted.previous else None
    daily_inputs = previous_daily
    cdo_files, cdo_table, cdo_quarantine = None, None, None
    if daily_given:
        daily_inputs = _daily_manifest(spark, settings)
        unchanged = (not settings.full and previous_daily is not None and extracted.previous.inputs
                     and extracted.previous.inputs["code_version"] == extracted.code_version
                     and "cdo_daily_summaries" in extracted.previous.tables
                     and previous_daily.get("cdo_units") == daily_inputs["cdo_units"]
                     and all(lake_inputs.identity(previous_daily[k]) == lake_inputs.identity(daily_inputs[k])
                             for k in ("cdo", "ghcn")))
        if unchanged:  # the committed table and its counts stand
            daily_inputs = previous_daily
            cdo_files = [{"source_file": e["file"], **{k: e[k] for k in lake_inputs.COUNTS}}
                         for k in ("cdo", "ghcn") for e in previous_daily[k]]
        else:  # recomputed whole: simpler than per partition, and daily files are small
            cdo_files, cdo_table, cdo_quarantine = _run_daily_files(spark, settings, extracted.stations)
            counts = {f["source_file"]: f for f in cdo_files}
            daily_inputs = {**daily_inputs, **{k: [{**e, **{c: counts.get(e["file"], {}).get(c, 0)
                                                            for c in lake_inputs.COUNTS}}
                                                   for e in daily_inputs[k]] for k in ("cdo", "ghcn")}}
            quarantine = quarantine.unionByName(cdo_quarantine, allowMissingColumns=True)
    if cdo_table is None and previous_quarantine is not None:  # the committed daily table's quarantined rows
        quarantine = quarantine.unionByName(previous_quarantine.filter(F.col("source_line").isNull()))
    quarantine = quarantine.select(*lcd_quarantine.QUARANTINE_COLUMNS)

    daily_files_table = cdo_table
    if cdo_table is None and "cdo_daily_summaries" not in (extracted.previous.tables if extracted.previous else {}):
        # no daily files yet: the table is committed empty, so it exists wherever the lake is read (dbt's source,
        # the PostgreSQL copy, Glue and Spectrum) and a model can read it before anyone has given such a file
        daily_files_table = spark.createDataFrame([], _lake_ddl("cdo_daily_summaries"))
    folders, digests = stage(spark, settings, base, affected, hourly, daily, candidates, quarantine,
                             daily_files_table)
    staged_hourly = lake_tables.read_committed(spark, settings, folders["hourly_observations"],
                                               _lake_ddl("hourly_observations"))
    staged_quarantine = lake_tables.read_committed(spark, settings, folders[QUARANTINE], QUARANTINE_DDL)
    lcd_quarantine_rows = staged_quarantine.filter(F.col("source_line").isNotNull())
    previous_counts = {e["file"]: e for e in ((extracted.previous.inputs or {}).get("lcd") or [])} \
        if extracted.previous else {}
    carried_counts = spark.createDataFrame(
        [(name, previous_counts[name]["rows_read"], previous_counts[name]["blank_lines"])
         for name in (changes.unchanged if base is not None else [])],
        "source_file string, rows_read bigint, blank_lines bigint")
    read_counts = lcd_quarantine.transform_read_counts(raw).unionByName(carried_counts)
    files = [row.asDict() for row in
             lcd_quarantine.transform_file_reconciliation(read_counts, staged_hourly, lcd_quarantine_rows).collect()]
    _check_reconciled(files, "LCD hourly files")
    kinds = {row.quarantine_kind: row.n for row in lcd_quarantine_rows.groupBy("quarantine_kind").agg(
        F.count(F.lit(1)).alias("n")).collect()}
    changed_months = set()
    for table, after in digests.items():
        changed_months |= _changed_months(_digests(spark, settings, extracted.previous, table), after)
    entries = {e["file"]: e for e in extracted.manifest}
    processed = set(changes.to_read)
    result = JobResult(
        rows_read=sum(f["rows_read"] for f in files),
        rows_quarantined=sum(f["rows_quarantined"] for f in files),
        rows_other_report_types=kinds.get("other_report_type", 0),
        special_reports_superseded=kinds.get("special_superseded", 0),
        observations_not_routine=kinds.get("not_routine", 0),
        rows_unreadable=kinds.get("unreadable", 0),
        rows_rejected=kinds.get("rejected", 0),
        duplicates_resolved=kinds.get("duplicate", 0),
        rows_with_implausible_values=staged_hourly.filter(F.col("implausible_fields") != "").count(),
        hourly_rows=sum(f["rows_loaded"] for f in files),
        blank_lines=sum(f["blank_lines"] for f in files),
        daily_rows=sum(int(d.split(":")[0]) for d in digests["daily_summaries"].values()),
        stations=len({key.split("/")[0] for key in digests["hourly_observations"]}),
        hourly_partitions=len(digests["hourly_observations"]),
        daily_partitions=len(digests["daily_summaries"]),
        recovered=recovered,
        files=files,
        cdo_daily_rows=sum(f["rows_loaded"] for f in cdo_files or []),
        cdo_files=cdo_files,
        files_left_out=extracted.left_out,
        mode="incremental" if base is not None else "full",
        files_processed=sorted(processed),
        files_appended=changes.appended,
        files_removed=changes.removed if base is not None else sorted(set(previous_counts) - set(entries)),
        files_recounted=sorted(f["source_file"] for f in files if f["source_file"] in processed or any(
            f[k] != previous_counts.get(f["source_file"], {}).get(k) for k in lake_inputs.COUNTS)),
        cdo_files_processed=cdo_table is not None,
        changed_months=sorted(changed_months),
        snapshot=settings.run_id,
    )
    inputs = {"code_version": extracted.code_version, "daily": daily_inputs,
              "lcd": [{**entries[f["source_file"]], **{k: f[k] for k in lake_inputs.COUNTS}} for f in files]}
    summary = {k: v for k, v in asdict(result).items() if isinstance(v, int) and not isinstance(v, bool)}
    snapshot = lake_tables.commit(spark, settings, folders, inputs, digests, summary)
    written = {"hourly_observations": hourly.schema, "daily_summaries": daily.schema}
    if daily_files_table is not None:
        written["cdo_daily_summaries"] = daily_files_table.schema
    lake_tables.register_tables(spark, settings, snapshot, written)
    # after the commit: the copies before the previous run, which no reader can be on now
    result.recovered += [f"deleted {folder}: no committed run uses it" for folder in lake_tables.tidy(spark, settings)]
    lake_tables.mark_finished(spark, settings, snapshot)
    # a cached frame left behind would stand in for a later read of the same files in this session
    for df in (raw, parsed, affected_keys, candidates, hourly, daily, cdo_table, cdo_quarantine):
        if df is not None:
            df.unpersist()
    return result


def _daily_manifest(spark: SparkSession, settings: JobSettings) -> dict:
    """The daily files' manifest entries (the files _run_daily_files reads) and the CDO units they are read in."""
    cdo = lcd_records.list_input_files(spark, settings.raw_cdo_daily_path, "CDO daily input")[0] \
        if settings.raw_cdo_daily_path else []
    ghcn = lcd_records.list_input_files(spark, settings.raw_ghcn_daily_path, "GHCN-Daily input", ".dly")[0] \
        if settings.raw_ghcn_daily_path else []
    return {"cdo_units": settings.cdo_units if cdo else None, "cdo": read_manifest(spark, cdo),
            "ghcn": read_manifest(spark, ghcn)}


# ---------------------------------------------------------------- load


def stage(spark: SparkSession, settings: JobSettings, base: Snapshot | None, affected: set[tuple[str, str]],
          hourly: DataFrame, daily: DataFrame, observations: DataFrame, quarantine: DataFrame,
          daily_files_table: DataFrame | None) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Stage every table this run writes in its own folder (spark_prep/lake_tables.py): the partitions it
    computed, and, building on `base`, every other partition of the committed copy carried over unchanged.
    Returns the folders and each table's partition digests."""
    folders: dict[str, str] = {}
    digests: dict[str, dict[str, str]] = {}
    for name, df, sort_column in (("hourly_observations", hourly, "observed_at_utc"),
                                  ("daily_summaries", daily, "summary_date"),
                                  (OBSERVATIONS, observations, "observed_at_utc")):
        folders[name] = lake_tables.stage_table(settings, name, df, sort_column)
        carried = {}
        if base is not None:
            lake_tables.carry_partitions(spark, settings, base.folder(name), folders[name], affected)
            carried = {key: digest for key, digest in base.months(name).items()
                       if tuple(part.split("=", 1)[1] for part in key.split("/")) not in affected}
        if name in lake_schema.TABLES:
            digests[name] = {**carried, **lake_tables.partition_digests(lake_schema.conform(df, name),
                                                                        lake_schema.column_names(name))}
    if daily_files_table is not None:
        folders["cdo_daily_summaries"] = lake_tables.stage_table(settings, "cdo_daily_summaries",
                                                                 daily_files_table, "summary_date")
        digests["cdo_daily_summaries"] = lake_tables.partition_digests(
            lake_schema.conform(daily_files_table, "cdo_daily_summaries"),
            lake_schema.column_names("cdo_daily_summaries"))
    folders[QUARANTINE] = lake_tables.stage_quarantine(settings, quarantine)
    return folders, digests


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
