"""The lake's tables: partitioned Parquet committed all at once, registered as Hive external tables.

A run stages a complete copy of every table it produces in a folder of its own, then commits them together
by replacing the lake's pointer file (spark_prep/lake_snapshots.py), then points the metastore at them.
Readers resolve tables through the pointer, so a run killed at any moment leaves them seeing every table
of the previous run, or, once the pointer is replaced, every table of the new one; the next run deletes
what the killed one left (tidy). Works on any Hadoop FileSystem: local disk, S3 on EMR.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from spark_prep import lake_schema
from spark_prep.lake_snapshots import (
    FINISHED,
    POINTER,
    QUARANTINE,
    RUN_FOLDER,
    LakeNotCommitted,
    Snapshot,
    parse,
    read_local,
    run_folder,
)

if TYPE_CHECKING:  # only for the type hints: weather_job imports this module
    from spark_prep.weather_job import JobSettings

PARTITION_COLUMNS = ("station_id", "observation_month")
HIVE_TYPES = {
    "string": "STRING",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "bigint": "BIGINT",
    "int": "INT",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}


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

    def delete(self, uri: str) -> None:
        self._fs.delete(self._Path(uri), True)



LEGACY_STAGING = "_staging"  # where runs staged before the lake had a pointer
# What a job writes directly under a table folder: run folders, and in the layout before snapshots partition
# folders and Spark's commit markers. Anything else there is someone's own file, which tidy leaves alone.
JOB_WRITTEN = re.compile(RUN_FOLDER.pattern + r"|station_id=[^/]*|\.?_SUCCESS(\.crc)?|\.?part-[^/]*")
def _partition_dirs(fs: _FileSystem, root: str) -> list[str]:
    out = []
    for station in sorted(fs.listdir(root)):
        if not station.startswith(f"{PARTITION_COLUMNS[0]}="):
            continue
        for month in sorted(fs.listdir(f"{root}/{station}")):
            if month.startswith(f"{PARTITION_COLUMNS[1]}="):
                out.append(f"{station}/{month}")
    return out


def _local_path(uri: str) -> Path | None:
    """The local path behind a file: URI (as weather_job.to_uri writes them); None for other schemes."""
    if not uri.startswith("file:"):
        return None
    path = uri[len("file:"):]
    return Path("/" + path.lstrip("/")) if path.startswith("//") else Path(path)


def read_snapshot(spark: SparkSession, weather_uri: str) -> Snapshot | None:
    """The lake's committed snapshot; None before the first commit."""
    pointer = f"{weather_uri}/{POINTER}"
    local = _local_path(weather_uri)
    if local is not None:
        return read_local(local)
    if not _FileSystem(spark, weather_uri).exists(pointer):
        return None
    return parse(spark.read.text(pointer, wholetext=True).first()[0], pointer)


def _replace_file(spark: SparkSession, uri: str, text: str) -> None:
    """Replace a small file in one step: readers see the old bytes or the new, never a part."""
    local = _local_path(uri)
    if local is None:  # an object store: one PUT replaces the object atomically
        jvm = spark.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(uri)
        out = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).create(path, True)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()
        return
    temporary = local.with_name(f".{local.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, local)  # rename(2): atomic on one file system
    directory = os.open(local.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut, not only a kill
    finally:
        os.close(directory)


def stage_table(settings: JobSettings, name: str, df: DataFrame, sort_column: str) -> str:
    """Write `df` as a complete copy of table `name` into this run's own folder, which no reader sees
    until commit(). Returns the folder, relative to the weather lake."""
    folder = f"{name}/{run_folder(settings.run_id)}"
    if name in lake_schema.TABLES:  # exactly the columns and types Glue and the dbt sources declare
        df = lake_schema.conform(df, name)
    (
        df.repartition(*PARTITION_COLUMNS)
        .sortWithinPartitions(*PARTITION_COLUMNS, sort_column)
        .write.mode("errorifexists")
        .partitionBy(*PARTITION_COLUMNS)
        .parquet(f"{settings.weather_uri}/{folder}")
    )
    return folder


def stage_quarantine(settings: JobSettings, quarantine: DataFrame) -> str:
    folder = f"{QUARANTINE}/{run_folder(settings.run_id)}"
    quarantine.coalesce(1).write.mode("errorifexists").parquet(f"{settings.weather_uri}/{folder}")
    return folder


def commit(spark: SparkSession, settings: JobSettings, folders: dict[str, str], inputs: dict | None = None,
           partitions: dict[str, dict[str, str]] | None = None, summary: dict[str, int] | None = None) -> Snapshot:
    """Make this run's staged folders what every reader sees, all at once. Tables this run did not write
    (the daily summaries when no daily files were given) stay as the last run committed them. `inputs`,
    `partitions` and `summary` are recorded with it (see lake_snapshots.Snapshot)."""
    current = read_snapshot(spark, settings.weather_uri)
    snapshot = Snapshot(run_id=settings.run_id, committed_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        tables={**(current.tables if current else {}), **folders},
                        previous_run_id=current.run_id if current else None, inputs=inputs,
                        partitions={**(current.partitions if current else {}), **(partitions or {})},
                        summary=summary or {})
    _replace_file(spark, f"{settings.weather_uri}/{POINTER}", snapshot.dumps())
    return snapshot


def partition_key(station_id: str, observation_month: str) -> str:
    """A partition's folder, relative to its table's, as the snapshot's digests name it."""
    return f"{PARTITION_COLUMNS[0]}={station_id}/{PARTITION_COLUMNS[1]}={observation_month}"


def _partition_values(relative: str) -> tuple[str, str]:
    station, month = relative.split("/")
    return unquote(station.split("=", 1)[1]), unquote(month.split("=", 1)[1])


def partition_digests(df: DataFrame, columns: tuple[str, ...]) -> dict[str, str]:
    """Per partition of `df` (as stored: conformed), "<rows>:<sum of each row's xxhash64>". Each column goes
    into the hash with whether it is null, so a value moved to the neighbouring column changes the digest;
    the sum is a decimal, which does not overflow."""
    parts = [part for name in columns for part in (F.col(name).isNull(), F.col(name))]
    rows = df.groupBy(*PARTITION_COLUMNS).agg(
        F.count(F.lit(1)).alias("n"), F.sum(F.xxhash64(*parts).cast("decimal(38,0)")).alias("h")).collect()
    return {partition_key(row[0], row[1]): f"{row.n}:{row.h}" for row in rows}


def read_committed(spark: SparkSession, settings: JobSettings, folder: str, schema: str) -> DataFrame:
    """A committed table's rows; `schema` (DDL) names the partition columns as strings, so Spark does not
    guess their types from the folder names (a station id would become a number)."""
    return spark.read.schema(schema).parquet(f"{settings.weather_uri}/{folder}")


def carry_partitions(spark: SparkSession, settings: JobSettings, source: str, target: str,
                     leave_out: set[tuple[str, str]]) -> int:
    """Put every partition of the committed folder `source` except those in `leave_out` ((station_id,
    observation_month)) into this run's staged folder `target` unchanged: hard links on a local disk (no bytes
    copied, and tidy deleting `source` later leaves them), a copy elsewhere (S3). A staged partition is never
    overwritten: one already there is an error. Returns how many were carried."""
    source_uri, target_uri = f"{settings.weather_uri}/{source}", f"{settings.weather_uri}/{target}"
    fs = _FileSystem(spark, source_uri)
    carried = 0
    for relative in _partition_dirs(fs, source_uri):
        if _partition_values(relative) in leave_out:
            continue
        local_source, local_target = _local_path(f"{source_uri}/{relative}"), _local_path(f"{target_uri}/{relative}")
        if local_source is not None and local_target is not None:
            local_target.mkdir(parents=True, exist_ok=False)
            for path in sorted(local_source.iterdir()):
                if path.is_file():
                    try:
                        os.link(path, local_target / path.name)
                    except OSError:  # another file system, or one without hard links
                        shutil.copy2(path, local_target / path.name)
        else:
            jvm = spark.sparkContext._jvm
            conf = spark.sparkContext._jsc.hadoopConfiguration()
            destination = jvm.org.apache.hadoop.fs.Path(f"{target_uri}/{relative}")
            if fs.exists(f"{target_uri}/{relative}"):
                raise FileExistsError(f"{target_uri}/{relative}: staged already, not carried over")
            jvm.org.apache.hadoop.fs.FileUtil.copy(fs._fs, fs._Path(f"{source_uri}/{relative}"),
                                                   destination.getFileSystem(conf), destination, False, conf)
        carried += 1
    return carried


def refuse_a_used_run_id(spark: SparkSession, settings: JobSettings) -> None:
    """A run's folders must be its own: staging over the committed copy would change what readers see."""
    current = read_snapshot(spark, settings.weather_uri)
    if current and settings.run_id in (current.run_id, current.previous_run_id):
        raise ValueError(f"run id {settings.run_id!r} is one the lake still holds: a run needs an id of its own")


def tidy(spark: SparkSession, settings: JobSettings) -> list[str]:
    """Delete what no reader can see any more: a killed run's folders, copies older than the previous
    committed run, and the folders of the layout before snapshots (`_staging`, partitions directly under a
    table). Only inside tables the pointer names, so nothing else in the lake is touched."""
    snapshot = read_snapshot(spark, settings.weather_uri)
    fs = _FileSystem(spark, settings.weather_uri)
    removed = []
    if snapshot is None:  # nothing committed yet: only this job's own unfinished folders can go
        for table in fs.listdir(settings.weather_uri):
            for child in fs.listdir(f"{settings.weather_uri}/{table}"):
                if RUN_FOLDER.fullmatch(child):
                    fs.delete(f"{settings.weather_uri}/{table}/{child}")
                    removed.append(f"{table}/{child}")
        return removed
    kept = snapshot.kept_folders()
    for table in sorted(snapshot.tables):
        for child in fs.listdir(f"{settings.weather_uri}/{table}"):
            if JOB_WRITTEN.fullmatch(child) and f"{table}/{child}" not in kept:
                fs.delete(f"{settings.weather_uri}/{table}/{child}")
                removed.append(f"{table}/{child}")
    if fs.exists(f"{settings.weather_uri}/{LEGACY_STAGING}"):
        fs.delete(f"{settings.weather_uri}/{LEGACY_STAGING}")
        removed.append(LEGACY_STAGING)
    return removed


def mark_finished(spark: SparkSession, settings: JobSettings, snapshot: Snapshot) -> None:
    """Record that the run committing `snapshot` registered its tables and tidied the lake (FINISHED): a
    later `prep` with unchanged inputs may then skip the job (flightdelay/flow/raw_steps.py)."""
    local = _local_path(f"{settings.weather_uri}/{FINISHED}")
    if local is not None and (local.is_dir() and not local.is_symlink()):
        raise ValueError(f"{local} is a folder, where `prep` keeps a small file: move it away and run `flightdelay "
                         "prep` again (this run's tables are committed; only this record of it is missing)")
    _replace_file(spark, f"{settings.weather_uri}/{FINISHED}", json.dumps({"run_id": snapshot.run_id}) + "\n")


def _hive_columns(schema: StructType, exclude: tuple[str, ...]) -> str:
    cols = []
    for field in schema.fields:
        if field.name in exclude:
            continue
        cols.append(f"`{field.name}` {HIVE_TYPES[field.dataType.simpleString()]}")
    return ",\n  ".join(cols)


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def register_tables(spark: SparkSession, settings: JobSettings, snapshot: Snapshot,
                    written: dict[str, StructType]) -> None:
    """Point the metastore's external tables (embedded Derby; Glue on EMR) at the committed folders. A
    table's location changes with every run, and Hive keeps a location per partition, so each table is
    created anew (external: dropping it forgets the schema, never the files) and its partitions found.
    `written` has the schema of each table this run wrote (an empty table has no file to read one from);
    a table kept from an earlier run is registered again from its files, in case that run was killed
    between its commit and this step."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {settings.database}")
    for name, folder in sorted(snapshot.tables.items()):
        if name.startswith("_"):  # the quarantine and the job's own tables (weather_job.OBSERVATIONS)
            continue
        location = f"{settings.weather_uri}/{folder}"
        columns = written.get(name)
        if columns is None:
            try:
                columns = spark.read.parquet(location).schema
            except AnalysisException:  # kept from a run that wrote it empty: no file, so no row to point at
                continue
        qualified = f"{settings.database}.{name}"
        spark.sql(f"DROP TABLE IF EXISTS {qualified}")
        partitions = ", ".join(f"`{c}` STRING" for c in PARTITION_COLUMNS)
        spark.sql(
            f"""CREATE EXTERNAL TABLE {qualified} (
  {_hive_columns(columns, PARTITION_COLUMNS)}
)
PARTITIONED BY ({partitions})
STORED AS PARQUET
LOCATION {_sql_string(location)}"""
        )
        spark.sql(f"MSCK REPAIR TABLE {qualified} ADD PARTITIONS")


def committed_uri(spark: SparkSession, settings: JobSettings, table: str) -> str:
    """Where the committed copy of `table` (or of the quarantine, QUARANTINE) is."""
    snapshot = read_snapshot(spark, settings.weather_uri)
    if snapshot is None:
        raise LakeNotCommitted(f"no run has committed the lake at {settings.weather_uri}")
    return f"{settings.weather_uri}/{snapshot.folder(table)}"


def partition_count(spark: SparkSession, settings: JobSettings, folder: str) -> int:
    uri = f"{settings.weather_uri}/{folder}"
    return len(_partition_dirs(_FileSystem(spark, uri), uri))
