"""Leakage guard: changing any data timestamped after a flight's as-of time must not change that flight's
features. For a cutoff T, every weather observation made after T, every daily summary of a day that ended
after T, every departure delay of a flight that left after T and every arrival delay of a flight that landed
after T is altered; the feature mart is rebuilt, and each flight whose as-of time is at or before T must have
exactly the features it had. Flights with later as-of times must change (else the alteration proved nothing).

The guard is itself tested by mutation: for each intermediate model the mart reads, a copy of the project
with a planted leak in that model (it reads a value known only after the as-of time) must make the guard
fail, and the unmutated copy must pass it.

The as-of time moves with the horizon (dbt var prediction_horizon_minutes): the guard runs at the flow's default
(2 h) and at the shortest and longest horizons the product names (30 min, 24 h), whose look-backs differ."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from spark_prep import lake_snapshots
from tests.conftest import PROJECT_ROOT, FlowRun
from tests.leakage_mutations import MUTATIONS, plant

pytestmark = pytest.mark.integration

# 2013-01-09 08:30 EST: a weekday morning bank. 2013-01-25 20:00 EST (2013-01-26 01:00 UTC): the evening of
# a day of long delays, chosen so that every feature model has flights "in flight" at the cutoff - it is the
# half hour of January with the most aircraft whose previous leg was scheduled before the next flight's as-of
# time but left after the cutoff (3 flights; no other cutoff has more). The mutation cases use it.
CUTOFFS_UTC = ("2013-01-09 13:30:00", "2013-01-26 01:00:00")
MUTATION_CUTOFF_UTC = CUTOFFS_UTC[1]
NOT_FEATURES = {"is_dep_delayed_15", "flight_id"}  # the label may (and must) come from after the as-of time
MART = "ml_flight_delay_features"
DEFAULT_HORIZON_MINUTES = 120  # dbt_project.yml; the January flow is built at it
OTHER_HORIZONS_MINUTES = (30, 24 * 60)


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


def features(warehouse: str, schema: str) -> tuple[pd.DataFrame, dict[str, str]]:
    with duckdb.connect(warehouse, read_only=True) as con:
        frame = con.execute(f"select * from {schema}.{MART}").df()
    frame = frame.set_index("flight_id")
    return frame[[c for c in frame.columns if c not in NOT_FEATURES]], frame["as_of_at_utc"].astype(str).to_dict()


@dataclass
class GuardResult:
    known: int  # flights whose as-of time is at or before the cutoff
    later: int
    changed_known: list[str]  # must be empty: a leak
    changed_later: int
    changed_columns: dict[str, int]  # among the changed known flights, how many changed in each feature

    @property
    def passed(self) -> bool:
        return not self.changed_known


def guard(before: tuple[str, str], after: tuple[str, str], cutoff: str) -> GuardResult:
    """Features of the mart in `before` (warehouse, schema) against those in `after`, built from data altered
    after `cutoff`: which flights known at the cutoff changed. As-of times are read from `before`. A flight known at
    the cutoff in one mart and missing from the other changed too: a model that kept or dropped flights by what
    happened later (selection by the outcome) would otherwise leave every remaining row as it was."""
    old, as_of = features(*before)
    new, as_of_after = features(*after)
    known_before = {f for f in old.index if as_of[f] <= cutoff}
    known_in_one_only = sorted(known_before ^ {f for f in new.index if as_of_after[f] <= cutoff})
    shared = old.index.intersection(new.index)
    old, new = old.loc[shared], new.loc[shared]
    # nullable integer columns compare NULL to a value as NA, not False: a NULL that gained a value must count
    differs = ~(old.eq(new).fillna(False).astype(bool) | (old.isna() & new.isna()))
    is_known = pd.Series(shared.isin(list(known_before)), index=shared)
    changed = differs.any(axis=1)
    changed_known = list(shared[is_known & changed])
    counts = {c: int(n) for c, n in differs.loc[changed_known].sum().items() if n}
    if known_in_one_only:
        counts["(known flight in one mart only)"] = len(known_in_one_only)
    return GuardResult(int(is_known.sum()), int((~is_known).sum()), changed_known + known_in_one_only,
                       int((changed & ~is_known).sum()), counts)


def dbt_run(project: Path, env: dict[str, str], target_path: Path, select: str,
            marts_schema: str, horizon_minutes: int = DEFAULT_HORIZON_MINUTES) -> subprocess.Popen:
    """`dbt run` of `select`; at another horizon than the default every model is rebuilt whole (--full-refresh),
    as the flow does when the horizon changes."""
    dbt = Path(sys.executable).with_name("dbt")
    dbt_vars = json.dumps({"marts_schema": marts_schema, "prediction_horizon_minutes": horizon_minutes})
    refresh = ["--full-refresh"] if horizon_minutes != DEFAULT_HORIZON_MINUTES else []
    return subprocess.Popen(
        [str(dbt), "run", *refresh, "--select", select, "--vars", dbt_vars,
         "--project-dir", str(project), "--profiles-dir", str(project), "--target-path", str(target_path),
         "--log-path", str(target_path / "logs"), "--target", "prod"],
        env={**os.environ, **env}, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output[-3000:]


@pytest.fixture(scope="module")
def altered_flows(january_run: FlowRun, tmp_path_factory):
    """Per cutoff and horizon, once: a copy of the January flow with everything known after the cutoff altered
    and the models behind the mart rebuilt from it; the mart into `marts_leak`. At the default horizon the
    published `marts` (left as built) is the mart before; at another, the models are first rebuilt at that
    horizon from the unaltered data, the mart into `marts_before`."""
    assert january_run.first.returncode == 0
    built: dict[tuple[str, int], FlowRun] = {}

    def altered_flow(cutoff: str, horizon_minutes: int = DEFAULT_HORIZON_MINUTES) -> FlowRun:
        if (cutoff, horizon_minutes) not in built:
            root = tmp_path_factory.mktemp("altered")
            shutil.copytree(january_run.root, root, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("screenshots", "artifacts"))
            env = {key: value.replace(str(january_run.root), str(root)) for key, value in january_run.env.items()}
            if horizon_minutes != DEFAULT_HORIZON_MINUTES:
                finished(dbt_run(PROJECT_ROOT, env, root / "target", f"+{MART}", "marts_before", horizon_minutes))
            alter_lake_after(root / "lake", cutoff)
            assert alter_outcomes_after(env["FLIGHTDELAY_WAREHOUSE"], cutoff) > 1000
            finished(dbt_run(PROJECT_ROOT, env, root / "target", f"+{MART}", "marts_leak", horizon_minutes))
            built[cutoff, horizon_minutes] = FlowRun(root, env, january_run.flight_rows, january_run.first)
        return built[cutoff, horizon_minutes]

    return altered_flow


def test_the_guard_counts_a_known_flight_missing_from_one_mart(tmp_path):
    """Selection by the outcome: a flight known at the cutoff that one build kept and the other dropped is a leak,
    though every flight both kept is unchanged; a later flight dropped is not."""
    marts = []
    for name, flights in (("before", ("known", "kept", "later")), ("after", ("kept",))):
        warehouse = str(tmp_path / f"{name}.duckdb")
        with duckdb.connect(warehouse) as con:
            con.execute(f"create schema marts; create table marts.{MART} (flight_id varchar, as_of_at_utc timestamp, "
                        "temp_f double, is_dep_delayed_15 boolean)")
            for flight in flights:
                as_of = "2013-01-26 02:00:00" if flight == "later" else "2013-01-25 23:00:00"
                con.execute(f"insert into marts.{MART} values (?, ?, 40.0, false)", [flight, as_of])
        marts.append((warehouse, "marts"))
    result = guard(*marts, MUTATION_CUTOFF_UTC)
    assert not result.passed
    assert result.changed_known == ["known"]
    assert result.changed_columns == {"(known flight in one mart only)": 1}


GUARDED = [(cutoff, DEFAULT_HORIZON_MINUTES) for cutoff in CUTOFFS_UTC] + [
    (MUTATION_CUTOFF_UTC, horizon) for horizon in OTHER_HORIZONS_MINUTES]


@pytest.mark.parametrize(("cutoff", "horizon_minutes"), GUARDED, ids=[f"{c}-{h}min" for c, h in GUARDED])
def test_data_after_the_as_of_time_does_not_change_features(altered_flows, cutoff, horizon_minutes):
    warehouse = altered_flows(cutoff, horizon_minutes).env["FLIGHTDELAY_WAREHOUSE"]
    before = "marts" if horizon_minutes == DEFAULT_HORIZON_MINUTES else "marts_before"
    with duckdb.connect(warehouse, read_only=True) as con:  # the models were built at the horizon guarded
        at_horizon, rows = con.execute(f"""
            select count(*) filter (where as_of_at_utc = scheduled_departure_at_utc - to_minutes({horizon_minutes})),
                   count(*)
            from intermediate.int_flights_converted_to_utc""").fetchone()
    assert rows > 20_000 and at_horizon == rows
    result = guard((warehouse, before), (warehouse, "marts_leak"), cutoff)
    assert result.known > 1000 and result.later > 1000
    assert result.passed, (f"{len(result.changed_known)} flights' features changed; first {result.changed_known[:3]}; "
                           f"features changed: {result.changed_columns}")
    assert result.changed_later > 0.5 * result.later


def test_every_intermediate_model_the_mart_reads_has_a_planted_leak(january_run: FlowRun, tmp_path):
    """A new intermediate model behind the mart needs its case in MUTATIONS. The models behind it are dbt's own
    answer (`dbt ls`), not the folder: the drift monitor's intermediate models are not behind the mart."""
    listed = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "--quiet", "ls", "--select", f"+{MART}", "--resource-type",
         "model", "--output", "name", "--project-dir", str(PROJECT_ROOT), "--profiles-dir", str(PROJECT_ROOT),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"), "--target", "prod"],
        env={**os.environ, **january_run.env}, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    behind_the_mart = {name for name in listed.stdout.split() if name.startswith("int_")}
    assert "int_flights_converted_to_utc" in behind_the_mart
    assert behind_the_mart == {m.model for m in MUTATIONS if m.model}


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.model or "unmutated")
def test_the_guard_fails_on_a_planted_leak(january_run: FlowRun, altered_flows, tmp_path, mutation):
    cutoff = MUTATION_CUTOFF_UTC
    altered = altered_flows(cutoff)
    project = tmp_path / "project"
    project.mkdir()
    plant(project, mutation)
    select = f"{mutation.model}+,+{MART}" if mutation.model else MART
    # the mutated models and the mart, over a copy of the January warehouse and over a copy of the altered one
    # (each keeps its own intermediate tables, built by the real project from its own data)
    runs = []
    warehouses = []
    for name, flow in (("clean", january_run), ("altered", altered)):
        warehouse = tmp_path / name / "flight_delays.duckdb"
        warehouse.parent.mkdir()
        shutil.copy2(flow.env["FLIGHTDELAY_WAREHOUSE"], warehouse)
        warehouses.append(str(warehouse))
        runs.append(dbt_run(project, {**flow.env, "FLIGHTDELAY_WAREHOUSE": str(warehouse)}, tmp_path / name / "target",
                            select, "marts_mutant"))
    for run in runs:
        finished(run)

    result = guard((warehouses[0], "marts_mutant"), (warehouses[1], "marts_mutant"), cutoff)
    print(f"{mutation.model}: {len(result.changed_known)} of {result.known} known flights changed;",
          result.changed_columns)
    if mutation.model is None:
        assert result.passed, f"{len(result.changed_known)} flights changed: {result.changed_columns}"
    else:
        assert not result.passed, f"the guard did not notice: {mutation.leak}"
