"""Feed the PostgreSQL target: copy the raw layer and the weather lake into a PostgreSQL database with
COPY, so `dbt build --target postgres` runs the same models on the same inputs as the embedded DuckDB.

The BTS rows are the ones the loader accepted (its quarantine and reconciliation already ran); the lake
tables are read from their Parquet files, since PostgreSQL cannot read Parquet itself. Every table is
replaced in one transaction and its row count checked against the source.

    python -m flightdelay.warehouse.postgres_mirror        # settings from FLIGHTDELAY_* and FLIGHTDELAY_PG_*
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from flightdelay.settings import Settings, load_settings
from spark_prep import lake_snapshots

# DuckDB type -> PostgreSQL type; anything else is refused rather than guessed.
PG_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}


@dataclass(frozen=True)
class MirroredTable:
    target: str            # schema.table in PostgreSQL
    source_sql: str        # DuckDB query producing its rows
    index_columns: tuple[str, ...] = ()


def tables_to_mirror(settings: Settings) -> list[MirroredTable]:
    lake = settings.lake_dir / "weather"

    def parquet(table: str) -> str:
        files = lake_snapshots.parquet_files(lake, table).replace("'", "''")
        return (f"select * from read_parquet('{files}', hive_partitioning = true, "
                "hive_types_autocast = false)")

    return [
        MirroredTable("raw.flights", "select * from raw.flights"),
        MirroredTable("raw.load_audit", "select * from raw.load_audit"),
        MirroredTable("raw.flights_rejected", "select * from raw.flights_rejected"),
        MirroredTable("weather.hourly_observations", parquet("hourly_observations"),
                      ("station_id", "observed_at_utc")),
        MirroredTable("weather.daily_summaries", parquet("daily_summaries"), ("station_id", "summary_date")),
    ]


def pg_dsn_from_env() -> str:
    return " ".join([
        f"host={os.environ.get('FLIGHTDELAY_PG_HOST', '127.0.0.1')}",
        f"port={os.environ.get('FLIGHTDELAY_PG_PORT', '5432')}",
        f"user={os.environ.get('FLIGHTDELAY_PG_USER', 'postgres')}",
        f"dbname={os.environ.get('FLIGHTDELAY_PG_DATABASE', 'flight_delays')}",
        *([f"password={os.environ['FLIGHTDELAY_PG_PASSWORD']}"] if os.environ.get("FLIGHTDELAY_PG_PASSWORD") else []),
    ])


def _pg_type(duck_type: str, table: str, column: str) -> str:
    if duck_type not in PG_TYPES:
        raise ValueError(f"{table}.{column}: no PostgreSQL type for DuckDB type {duck_type}")
    return PG_TYPES[duck_type]


def mirror(settings: Settings, dsn: str) -> dict[str, int]:
    """Replace each mirrored table in PostgreSQL with the DuckDB/Parquet rows; returns rows per table."""
    import psycopg2

    counts: dict[str, int] = {}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as duck, psycopg2.connect(dsn) as pg:
        duck.execute("set TimeZone = 'UTC'")
        with pg.cursor() as cursor:
            cursor.execute("set time zone 'UTC'")
            for table in tables_to_mirror(settings):
                relation = duck.sql(table.source_sql)
                columns = [(name, _pg_type(str(dtype), table.target, name))
                           for name, dtype in zip(relation.columns, relation.types, strict=True)]
                schema = table.target.split(".")[0]
                cursor.execute(f"create schema if not exists {schema}")
                cursor.execute(f"drop table if exists {table.target} cascade")
                cursor.execute(f"create table {table.target} ("
                               + ", ".join(f'"{name}" {pg_type}' for name, pg_type in columns) + ")")
                # DuckDB writes the CSV itself: integers stay integers, nulls are empty, times ISO
                with tempfile.TemporaryDirectory() as scratch:
                    path = Path(scratch) / "rows.csv"
                    duck.execute(f"copy ({table.source_sql}) to '{path}' (format csv, header false)")
                    with path.open() as rows:
                        cursor.copy_expert(f"copy {table.target} from stdin with (format csv)", rows)
                if table.index_columns:
                    cursor.execute(f"create index on {table.target} ({', '.join(table.index_columns)})")
                cursor.execute(f"analyze {table.target}")
                cursor.execute(f"select count(*) from {table.target}")
                copied = cursor.fetchone()[0]
                expected = duck.sql(f"select count(*) from ({table.source_sql})").fetchone()[0]
                if copied != expected:
                    raise RuntimeError(f"{table.target}: copied {copied} rows, source has {expected}")
                counts[table.target] = copied
        pg.commit()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=None, help="libpq connection string (default: from FLIGHTDELAY_PG_*)")
    args = parser.parse_args(argv)
    counts = mirror(load_settings(), args.dsn or pg_dsn_from_env())
    for table, rows in counts.items():
        print(f"{table}: {rows:,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
