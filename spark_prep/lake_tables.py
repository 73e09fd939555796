"""The lake's tables: partitioned Parquet written crash-safe, registered as Hive external tables.

A job writes a complete new copy of the partitions it produces into a staging folder outside the table,
marks it ready, then swaps each partition into the table with two renames. A run killed while writing
leaves the table untouched (its staging folder is deleted by the next run); a run killed while swapping is
rolled forward by the next run (recover_interrupted_runs). Works on any Hadoop FileSystem: local disk,
S3 on EMR.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession

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
