"""dbt's lake sources read the committed copy the lake's pointer names, and nothing else: the lake's path is
taken literally (glob characters, quotes, spaces), and a pointer the Python readers would refuse is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from spark_prep import lake_schema, lake_snapshots
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.engine  # runs dbt

DBT = str(Path(sys.executable).with_name("dbt"))


PARTITION = "station_id=74486094789/observation_month=2013-01"


def make_lake(root: Path, committed: str, runs: dict[str, int]) -> Path:
    """A lake with one row per run in `runs` times its count, in the layout prep writes; `committed` is the
    run its pointer names. The daily files' table is committed empty, as prep commits it without such files."""
    weather = root / "weather"
    with duckdb.connect() as con:
        for run, rows in runs.items():
            for table in ("hourly_observations", "daily_summaries"):
                folder = weather / table / f"run-{run}" / PARTITION
                folder.mkdir(parents=True)
                target = str(folder / "part-0.parquet").replace("'", "''")
                con.execute(f"copy (select '{run}' as run_id from range({rows})) to '{target}' (format parquet)")
    (weather / "cdo_daily_summaries" / f"run-{committed}").mkdir(parents=True)
    snapshot = lake_snapshots.Snapshot(committed, "", {t: f"{t}/run-{committed}" for t in lake_schema.TABLES})
    (weather / lake_snapshots.POINTER).write_text(snapshot.dumps())
    return root


def dbt_show(lake: Path, tmp_path: Path, *what: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTDELAY_", "DBT_"))}
    env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", FLIGHTDELAY_LAKE=str(lake),
               FLIGHTDELAY_WAREHOUSE=str(tmp_path / "warehouse.duckdb"))
    return subprocess.run([DBT, "show", "--quiet", "--output", "json", "--project-dir", str(PROJECT_ROOT),
                           "--profiles-dir", str(PROJECT_ROOT), "--target-path", str(tmp_path / "target"),
                           "--log-path", str(tmp_path / "logs"), *what],
                          env=env, capture_output=True, text=True, timeout=600)


def shown_rows(shown: subprocess.CompletedProcess) -> list[dict]:
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr[-2000:]
    return json.loads(shown.stdout[shown.stdout.index("{"):])["show"]


def show(lake: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    return dbt_show(lake, tmp_path, "--inline", "select run_id, count(*) as n from "
                    "{{ source('weather_lake', 'hourly_observations') }} group by run_id")


def test_a_lake_path_with_glob_characters_and_quotes_is_read_as_itself(tmp_path):
    lake = make_lake(tmp_path / "it's [1]*?" / "lake", "a", {"a": 1, "b": 3})
    # a neighbour the unescaped pattern `it's [1]*?` would match instead, with a pointer of its own
    make_lake(tmp_path / "it's 1xx" / "lake", "b", {"b": 3})
    # the committed run only; the other run's folder is not read
    assert shown_rows(show(lake, tmp_path)) == [{"run_id": "a", "n": 1}]


def test_a_pointer_giving_a_table_twice_is_refused_as_the_python_readers_refuse_it(tmp_path):
    lake = make_lake(tmp_path / "lake", "a", {"a": 1, "b": 3})
    pointer = lake / "weather" / lake_snapshots.POINTER
    text = pointer.read_text()
    doubled = text.replace('"hourly_observations": "hourly_observations/run-a"',
                           '"hourly_observations": "hourly_observations/run-a",\n'
                           '    "hourly_observations": "hourly_observations/run-b"')
    assert doubled != text
    pointer.write_text(doubled)
    with pytest.raises(lake_snapshots.LakeNotCommitted, match="is not a lake pointer"):
        lake_snapshots.read_local(lake / "weather")
    shown = show(lake, tmp_path)
    assert shown.returncode != 0 and "is not a lake pointer this version wrote" in shown.stdout, shown.stdout[-3000:]


def test_a_table_committed_empty_is_no_rows_in_its_declared_columns_and_its_files_are_read_once_given(tmp_path):
    lake = make_lake(tmp_path / "lake", "a", {"a": 1})
    columns = [c.name for c in (*lake_schema.PARTITION_KEYS, *lake_schema.TABLES["cdo_daily_summaries"])]
    counted = dbt_show(lake, tmp_path, "--inline", "select count(*) as n, "
                       "typeof(max(snowfall_in)) as snowfall_type, typeof(max(summary_date)) as date_type, "
                       + ", ".join(f"count({c}) as {c}_values" for c in columns)
                       + " from {{ source('weather_lake', 'cdo_daily_summaries') }}")
    assert shown_rows(counted) == [{"n": 0, "snowfall_type": "DOUBLE", "date_type": "DATE",
                                    **{f"{c}_values": 0 for c in columns}}]
    # the daily files arrive: the staging model reads the committed copy's rows
    folder = lake / "weather" / "cdo_daily_summaries" / "run-a" / PARTITION
    folder.mkdir(parents=True)
    target = str(folder / "part-0.parquet").replace("'", "''")
    with duckdb.connect() as con:
        con.execute("copy (select '94789' as wban_id, 'JFK' as airport_code, 'USW00094789' as ghcnd_station_id, "
                    "40.0 as tmax_f, 30.0 as tmin_f, null::double as tavg_f, 0.25 as precip_in, 1.5 as snowfall_in, "
                    "8.3 as avg_wind_speed_mph, 'TAVG' as qc_failed_elements, date '2013-01-14' as summary_date, "
                    f"'jfk.csv' as source_file) to '{target}' (format parquet)")
    staged = shown_rows(dbt_show(lake, tmp_path, "--select", "stg_noaa__cdo_daily_summaries",
                                 "--indirect-selection", "empty"))
    assert staged == [{"station_id": "74486094789", "wban_id": "94789", "airport_code": "JFK",
                       "ghcnd_station_id": "USW00094789", "tmax_f": 40.0, "tmin_f": 30.0, "tavg_f": None,
                       "precip_in": 0.25, "snowfall_in": 1.5, "avg_wind_speed_mph": 8.3, "qc_failed_elements": "TAVG",
                       "source_file": "jfk.csv", "summary_date_lst": "2013-01-14"}]
