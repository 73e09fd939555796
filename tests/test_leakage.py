"""Leakage guard: changing any data timestamped after a flight's as-of time must not change that flight's
features. For a few cutoffs T, every weather observation made after T, every daily summary of a day that
ended after T, every departure delay of a flight that left after T and every arrival delay of a flight that
landed after T is altered; the feature mart is
rebuilt, and each flight whose as-of time is at or before T must have exactly the features it had.
Flights with later as-of times must change (else the alteration proved nothing)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from spark_prep import lake_snapshots
from tests.conftest import PROJECT_ROOT, FlowRun

pytestmark = pytest.mark.integration

CUTOFFS_UTC = ("2013-01-09 13:30:00", "2013-01-21 23:00:00")
NOT_FEATURES = {"is_dep_delayed_15", "flight_id"}  # the label may (and must) come from after the as-of time


def alter_lake_after(lake: Path, cutoff: str) -> None:
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        later = f"observed_at_utc > timestamptz '{cutoff}+00'"
        for path in sorted(lake_snapshots.table_dir(lake / "weather", "hourly_observations").rglob("*.parquet")):
            altered = path.with_suffix(".altered")
            con.execute(f"""
                copy (
                    select * replace (
                        case when {later} then temp_f + 40 else temp_f end as temp_f,
                        case when {later} then coalesce(precip_in, 0) + 1 else precip_in end as precip_in,
                        case when {later} then 0.25 else visibility_mi end as visibility_mi,
                        case when {later} then sea_level_pressure_inhg - 1 else sea_level_pressure_inhg end
                            as sea_level_pressure_inhg,
                        case when {later} then coalesce(wind_gust_mph, 0) + 30 else wind_gust_mph end
                            as wind_gust_mph)
                    from read_parquet('{path}')
                ) to '{altered}' (format parquet)""")
            altered.replace(path)
        for path in sorted(lake_snapshots.table_dir(lake / "weather", "daily_summaries").rglob("*.parquet")):
            altered = path.with_suffix(".altered")
            # the NYC stations keep UTC-5 standard time: day D ends at D+1 05:00 UTC
            ended_later = f"summary_date + interval 29 hour > timestamp '{cutoff}'"
            con.execute(f"""
                copy (
                    select * replace (
                        case when {ended_later} then tmax_f + 40 else tmax_f end as tmax_f,
                        case when {ended_later} then coalesce(precip_in, 0) + 1 else precip_in end as precip_in)
                    from read_parquet('{path}')
                ) to '{altered}' (format parquet)""")
            altered.replace(path)


def alter_outcomes_after(warehouse: str, cutoff: str) -> int:
    with duckdb.connect(warehouse) as con:
        # an arrival is known once the aircraft landed: scheduled arrival (UTC) plus the arrival delay
        con.execute(f"""
            create temp table landed_later as
            select source_file, source_line
            from intermediate.int_flights_converted_to_utc
            where arr_delay_minutes is not null
              and scheduled_arrival_at_utc + to_minutes(cast(arr_delay_minutes as bigint)) > timestamp '{cutoff}'""")
        landed_later = con.execute("""
            update raw.flights set arr_delay = arr_delay + 120
            from landed_later
            where raw.flights.source_file = landed_later.source_file
              and raw.flights.source_line = landed_later.source_line""").fetchone()[0]
        assert landed_later > 1000
        # NYC origins, January: local standard time is UTC-5; a departure is known once it happened
        return con.execute(f"""
            update raw.flights set dep_delay = dep_delay + 120
            where dep_delay is not null
              and cast(fl_date as timestamp)
                  + to_minutes(cast(floor(crs_dep_time / 100) * 60 + crs_dep_time % 100 + dep_delay as bigint))
                  + interval 5 hour > timestamp '{cutoff}'""").fetchone()[0]


def features(warehouse: str, schema: str) -> dict[str, tuple]:
    with duckdb.connect(warehouse, read_only=True) as con:
        frame = con.execute(f"select * from {schema}.ml_flight_delay_features").df()
    columns = [c for c in frame.columns if c not in NOT_FEATURES]
    return {row.flight_id: tuple(None if pd.isna(v) else v for v in (getattr(row, c) for c in columns))
            for row in frame.itertuples()}, frame.set_index("flight_id")["as_of_at_utc"].astype(str).to_dict()


@pytest.mark.parametrize("cutoff", CUTOFFS_UTC)
def test_data_after_the_as_of_time_does_not_change_features(january_run: FlowRun, tmp_path, cutoff):
    assert january_run.first.returncode == 0
    root = tmp_path / "flow"
    shutil.copytree(january_run.root, root, ignore=shutil.ignore_patterns("screenshots", "artifacts"))
    env = {key: value.replace(str(january_run.root), str(root)) for key, value in january_run.env.items()}
    warehouse = env["FLIGHTDELAY_WAREHOUSE"]

    alter_lake_after(root / "lake", cutoff)
    assert alter_outcomes_after(warehouse, cutoff) > 1000
    dbt = Path(sys.executable).with_name("dbt")
    rebuilt = subprocess.run(
        [str(dbt), "run", "--select", "+ml_flight_delay_features", "--vars", '{"marts_schema": "marts_leak"}',
         "--project-dir", str(PROJECT_ROOT), "--profiles-dir", str(PROJECT_ROOT), "--target-path",
         str(tmp_path / "target"), "--target", "prod"],
        env={**os.environ, **env}, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]

    before, as_of = features(warehouse, "marts")
    after, _ = features(warehouse, "marts_leak")
    known = [f for f, t in as_of.items() if t <= cutoff and f in after]
    later = [f for f, t in as_of.items() if t > cutoff and f in after]
    assert len(known) > 1000 and len(later) > 1000
    changed_known = [f for f in known if before[f] != after[f]]
    assert changed_known == [], f"{len(changed_known)} flights' features changed; first {changed_known[:3]}"
    changed_later = sum(before[f] != after[f] for f in later)
    assert changed_later > 0.5 * len(later)
