"""The same dbt project on a real PostgreSQL server: mirror the raw layer and the lake with COPY, run
`dbt build --target postgres` (models, data tests, unit tests), and compare every mart with DuckDB's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psycopg2
import pytest

from tests.conftest import PROJECT_ROOT, FlowRun

pytestmark = pytest.mark.integration

MARTS = ("fct_flights", "dim_airports", "dim_carriers", "dim_dates", "ml_flight_delay_features",
         "delay_rates_by_carrier_month", "delay_rates_by_scheduled_hour", "delay_rates_by_weather_condition",
         "delay_rates_by_route")


def test_dbt_build_on_postgres_matches_duckdb(january_run: FlowRun, postgres_server: dict[str, str], tmp_path):
    assert january_run.first.returncode == 0, january_run.first.stderr[-2000:]
    env = {**os.environ, **january_run.env, **postgres_server, "FLIGHTDELAY_DBT_TARGET": "postgres",
           "DBT_PROFILES_DIR": str(PROJECT_ROOT)}

    mirrored = subprocess.run([sys.executable, "-m", "flightdelay.warehouse.postgres_mirror"], env=env,
                              cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert mirrored.returncode == 0, mirrored.stdout + mirrored.stderr
    assert f"raw.flights: {january_run.flight_rows:,} rows" in mirrored.stdout

    dbt = Path(sys.executable).with_name("dbt")
    started = time.monotonic()
    built = subprocess.run([str(dbt), "build", "--target", "postgres", "--target-path", str(tmp_path / "target"),
                            "--project-dir", str(PROJECT_ROOT), "--profiles-dir", str(PROJECT_ROOT)],
                           env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1200)
    print(f"dbt build on PostgreSQL: {time.monotonic() - started:.1f} s")
    assert built.returncode == 0, built.stdout[-6000:]
    assert "ERROR=0" in built.stdout and "SKIP=0" in built.stdout

    dsn = {"host": "127.0.0.1", "port": int(postgres_server["FLIGHTDELAY_PG_PORT"]), "user": "postgres",
           "dbname": "flight_delays"}
    warehouse = january_run.env["FLIGHTDELAY_WAREHOUSE"]
    with psycopg2.connect(**dsn) as pg, duckdb.connect(warehouse, read_only=True) as duck:
        cursor = pg.cursor()
        for mart in MARTS:
            cursor.execute(f"select count(*) from marts.{mart}")
            pg_rows = cursor.fetchone()[0]
            duck_rows = duck.execute(f"select count(*) from marts.{mart}").fetchone()[0]
            assert pg_rows == duck_rows, f"marts.{mart}: PostgreSQL {pg_rows} rows, DuckDB {duck_rows}"

        # beyond counts: the same flights get the same label and the same as-of weather on both engines
        probe = ("select flight_id, is_dep_delayed_15, temp_f, weather_age_minutes, precip_3h_in, "
                 "route_carrier_departures_28d from marts.ml_flight_delay_features order by flight_id")
        cursor.execute(probe)
        pg_features = cursor.fetchall()
        duck_features = duck.execute(probe).fetchall()
    assert len(pg_features) == len(duck_features)
    mismatched = [(p, d) for p, d in zip(pg_features, duck_features, strict=True)
                  if p[:2] != d[:2] or p[3] != d[3] or p[5] != d[5]
                  or (p[2] is None) != (d[2] is None) or (p[2] is not None and abs(p[2] - d[2]) > 1e-9)]
    assert mismatched[:5] == []
