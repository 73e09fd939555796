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

from spark_prep import lake_snapshots
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.engine  # runs dbt

DBT = str(Path(sys.executable).with_name("dbt"))


def make_lake(root: Path, committed: str, runs: dict[str, int]) -> Path:
    """A lake with one row per run in `runs` times its count, in the layout prep writes; `committed` is the
    run its pointer names."""
    weather = root / "weather"
    with duckdb.connect() as con:
        for run, rows in runs.items():
            for table in ("hourly_observations", "daily_summaries"):
                folder = weather / table / f"run-{run}" / "station_id=74486094789" / "observation_month=2013-01"
                folder.mkdir(parents=True)
                target = str(folder / "part-0.parquet").replace("'", "''")
                con.execute(f"copy (select '{run}' as run_id from range({rows})) to '{target}' (format parquet)")
    snapshot = lake_snapshots.Snapshot(committed, "", {t: f"{t}/run-{committed}"
                                                       for t in ("hourly_observations", "daily_summaries")})
    (weather / lake_snapshots.POINTER).write_text(snapshot.dumps())
    return root


def show(lake: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTDELAY_", "DBT_"))}
    env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", FLIGHTDELAY_LAKE=str(lake),
               FLIGHTDELAY_WAREHOUSE=str(tmp_path / "warehouse.duckdb"))
    return subprocess.run([DBT, "show", "--quiet", "--output", "json", "--project-dir", str(PROJECT_ROOT),
                           "--profiles-dir", str(PROJECT_ROOT), "--target-path", str(tmp_path / "target"),
                           "--log-path", str(tmp_path / "logs"), "--inline",
                           "select run_id, count(*) as n from {{ source('weather_lake', 'hourly_observations') }} "
                           "group by run_id"], env=env, capture_output=True, text=True, timeout=600)


def test_a_lake_path_with_glob_characters_and_quotes_is_read_as_itself(tmp_path):
    lake = make_lake(tmp_path / "it's [1]*?" / "lake", "a", {"a": 1, "b": 3})
    # a neighbour the unescaped pattern `it's [1]*?` would match instead, with a pointer of its own
    make_lake(tmp_path / "it's 1xx" / "lake", "b", {"b": 3})
    shown = show(lake, tmp_path)
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr[-2000:]
    rows = json.loads(shown.stdout[shown.stdout.index("{"):])["show"]
    assert rows == [{"run_id": "a", "n": 1}]  # the committed run only; the other run's folder is not read


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
