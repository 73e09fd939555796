"""dbt used directly, as a dbt user would, on a copy of the warehouse the January flow run built.

A fresh clone of the dbt project (its files only, with the warehouse and the lake where the profile
expects them) shows: `dbt build` with no flags and no environment goes to the dev target and leaves the
published `marts` as they were; `dbt source freshness` checks every source that has a load time; dbt runs
from another working directory with the lake elsewhere, and moving the lake changes no source for
`state:modified`; the slim-CI recipe (`--defer` to the prod manifest, over the prod warehouse) builds a
changed mart; the weather-lift analysis measures visibility against its clearest bucket.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from spark_prep import lake_snapshots
from tests.conftest import PROJECT_ROOT, FlowRun

pytestmark = pytest.mark.integration

DBT = str(Path(sys.executable).with_name("dbt"))
PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "selectors.yml", "macros", "models", "seeds", "analyses")
MARTS = ("fct_flights", "dim_airports", "dim_carriers", "dim_dates", "ml_flight_delay_features",
         "fct_flight_delay_predictions", "delay_rates_by_carrier_month", "delay_rates_by_scheduled_hour",
         "delay_rates_by_weather_condition", "delay_rates_by_route")


def bare_env(**extra: str) -> dict[str, str]:
    """The environment of a user who set nothing for this project (telemetry stays off)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTDELAY_", "DBT_"))}
    return {**env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **extra}


def dbt(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    completed = subprocess.run([DBT, *args], cwd=cwd, env=env or bare_env(), capture_output=True, text=True,
                               timeout=600)
    assert completed.returncode == 0, f"dbt {' '.join(args)}:\n{completed.stdout[-4000:]}{completed.stderr[-2000:]}"
    return completed


def copy_project(destination: Path) -> Path:
    destination.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name)
        else:
            shutil.copy2(source, destination / name)
    return destination


def checksums(warehouse: Path, schema: str) -> dict[str, tuple]:
    """Rows and a hash of every value, per mart of `schema`."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        sums = {}
        for mart in MARTS:
            columns = [row[0] for row in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "order by ordinal_position", [schema, mart]).fetchall()]
            if columns:
                hashed = ", ".join(f'"{column}"' for column in columns)
                sums[mart] = con.execute(f"select count(*), sum(hash({hashed})) from {schema}.{mart}").fetchone()
        return sums


@dataclass
class Clone:
    """A fresh clone of the dbt project holding a copy of the prod warehouse and lake the flow built."""

    root: Path
    prod_state: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "flight_delays.duckdb"


def clone_with_prod(january_run: FlowRun, destination: Path) -> Clone:
    root = copy_project(destination)
    (root / "warehouse").mkdir()
    shutil.copy2(january_run.env["FLIGHTDELAY_WAREHOUSE"], root / "warehouse" / "flight_delays.duckdb")
    shutil.copytree(Path(january_run.env["FLIGHTDELAY_LAKE"]) / "weather", root / "lake" / "weather")
    # The prod manifest to compare and defer to: what `flightdelay` builds, parsed where it runs.
    prod_state = destination.parent / f"{destination.name}_prod_state"
    dbt(root, "parse", "--target", "prod", "--target-path", str(prod_state))
    return Clone(root, prod_state)


@pytest.fixture(scope="module")
def clone(january_run: FlowRun, tmp_path_factory) -> Clone:
    assert january_run.first.returncode == 0, "the flow run failed; see tests/test_flow.py"
    return clone_with_prod(january_run, tmp_path_factory.mktemp("dbt") / "flight_delays")


@pytest.fixture(scope="module")
def plain_build(clone: Clone) -> dict[str, dict[str, tuple]]:
    """`dbt build` in the clone, no flags, no environment: checksums of marts before and after, and of dev."""
    before = checksums(clone.warehouse, "marts")
    dbt(clone.root, "build")
    return {"before": before, "after": checksums(clone.warehouse, "marts"),
            "dev": checksums(clone.warehouse, "dev_marts")}


def test_plain_dbt_build_goes_to_dev_and_leaves_marts_untouched(clone: Clone, plain_build):
    assert set(plain_build["before"]) == set(MARTS)
    assert plain_build["after"] == plain_build["before"]

    # the dev marts hold the same values (predictions are the score step's: left out by the default selector)
    expected = {mart: sums for mart, sums in plain_build["before"].items()
                if mart not in ("fct_flights", "fct_flight_delay_predictions")}
    dev = {mart: sums for mart, sums in plain_build["dev"].items() if mart != "fct_flights"}
    assert dev == expected
    assert plain_build["dev"]["fct_flights"][0] == plain_build["before"]["fct_flights"][0]

    results = json.loads((clone.root / "target" / "run_results.json").read_text())
    manifest = json.loads((clone.root / "target" / "manifest.json").read_text())
    built = {result["unique_id"] for result in results["results"]
             if result["unique_id"].split(".")[0] in ("model", "seed")}
    assert built and all(result["status"] in ("success", "pass") for result in results["results"]
                         if result["unique_id"] in built)
    schemas = {manifest["nodes"][unique_id]["schema"] for unique_id in built}
    assert {"dev_reference", "dev_staging", "dev_intermediate", "dev_marts"} <= schemas
    assert all(schema == "dev" or schema.startswith("dev_") for schema in schemas), schemas


def test_source_freshness_checks_every_source_with_a_load_time(clone: Clone):
    dbt(clone.root, "source", "freshness")
    freshness = json.loads((clone.root / "target" / "sources.json").read_text())
    manifest = json.loads((clone.root / "target" / "manifest.json").read_text())

    sources = manifest["sources"]
    with_load_time = {unique_id for unique_id, source in sources.items() if source["loaded_at_field"]}
    assert with_load_time == {"source.flight_delays.bts.flights", "source.flight_delays.ml.flight_delay_predictions"}
    checked = {result["unique_id"]: result["status"] for result in freshness["results"]}
    # loaded (and scored) minutes ago: fresh, although the flights are from January 2013
    assert checked == dict.fromkeys(with_load_time, "pass")
    # the lake's tables have no load time (they carry when the weather happened, not when it was loaded), nor
    # the model registry (a model is refit when its window moves, not monthly)
    assert set(sources) - with_load_time == {"source.flight_delays.weather_lake.hourly_observations",
                                             "source.flight_delays.weather_lake.daily_summaries",
                                             "source.flight_delays.weather_lake.cdo_daily_summaries",
                                             "source.flight_delays.ml.model_registry"}

    listed = dbt(clone.root, "ls", "--resource-type", "source", "--quiet").stdout.split()
    assert sorted(listed) == sorted(f"source:{unique_id.removeprefix('source.')}" for unique_id in sources)

    dbt(clone.root, "docs", "generate", "--no-compile", "--target-path", str(clone.root / "docs"))
    catalog = json.loads((clone.root / "docs" / "catalog.json").read_text())
    assert set(catalog["sources"]) == {"source.flight_delays.bts.flights",
                                       "source.flight_delays.ml.flight_delay_predictions",
                                       "source.flight_delays.ml.model_registry"}


def test_dbt_from_another_directory_with_the_lake_elsewhere(clone: Clone, tmp_path):
    """dbt from any folder, the lake moved by FLIGHTDELAY_LAKE; sources read the lake's committed copy only."""
    # a smaller lake somewhere else: one station's hourly files
    weather = clone.root / "lake" / "weather"
    snapshot = lake_snapshots.read_local(weather)
    hourly = weather / snapshot.folder("hourly_observations")
    station = sorted(hourly.glob("station_id=*"))[0]
    elsewhere = tmp_path / "elsewhere" / "lake"
    shutil.copytree(station, elsewhere / "weather" / snapshot.folder("hourly_observations") / station.name)
    for table in ("daily_summaries", "cdo_daily_summaries"):
        shutil.copytree(weather / snapshot.folder(table), elsewhere / "weather" / snapshot.folder(table))
    shutil.copyfile(weather / lake_snapshots.POINTER, elsewhere / "weather" / lake_snapshots.POINTER)
    # what a killed `prep` leaves beside the committed copy: no reader may list it (it names no rows, and
    # DuckDB would fail on these bytes)
    half = elsewhere / "weather" / "hourly_observations" / "run-killed" / station.name / "observation_month=2013-01"
    half.mkdir(parents=True)
    (half / "part-00000.parquet").write_bytes(b"half-written")
    with duckdb.connect() as con:
        def observations(folder: Path) -> int:
            return con.execute(f"select count(*) from read_parquet('{folder}/*/*/*.parquet')").fetchone()[0]

        expected = observations(elsewhere / "weather" / snapshot.folder("hourly_observations"))
        everywhere = observations(hourly)
    assert 0 < expected < everywhere

    somewhere = tmp_path / "somewhere"
    somewhere.mkdir()
    env = bare_env(FLIGHTDELAY_LAKE=str(elsewhere))
    where = ["--project-dir", str(clone.root), "--profiles-dir", str(clone.root)]
    # the warehouse is the profile's default, next to profiles.yml, not in the working directory
    shown = dbt(somewhere, "show", *where, "--quiet", "--output", "json", "--inline",
                "select count(*) as observations from {{ source('weather_lake', 'hourly_observations') }}",
                env=env)
    assert json.loads(shown.stdout)["show"] == [{"observations": expected}]

    modified = dbt(somewhere, "ls", *where, "--select", "state:modified", "--state", str(clone.prod_state),
                   "--quiet", env=env)
    assert modified.stdout.split() == []
    assert not list(somewhere.iterdir()), "dbt wrote into the working directory"

    manifest = (clone.root / "target" / "manifest.json").read_text()
    assert str(elsewhere) not in manifest


def test_slim_ci_defers_to_the_prod_manifest_over_the_prod_warehouse(clone: Clone, tmp_path):
    """The recipe in README.md: build what changed, in a dev schema of its own, reading everything else from
    prod. It needs the prod warehouse (or a copy) to defer to: on a fresh DuckDB file the prod relations the
    manifest names do not exist."""
    branch = copy_project(tmp_path / "flight_delays")
    mart = branch / "models" / "marts" / "analytics" / "delay_rates_by_route.sql"
    mart.write_text(mart.read_text().replace("select * from final", "select * from final -- a change under review"))
    env = bare_env(FLIGHTDELAY_WAREHOUSE=str(clone.warehouse), FLIGHTDELAY_LAKE=str(clone.root / "lake"),
                   FLIGHTDELAY_DBT_DEV_SCHEMA="ci_pr_1")

    dbt(branch, "build", "--select", "state:modified+", "--defer", "--state", str(clone.prod_state), env=env)

    results = json.loads((branch / "target" / "run_results.json").read_text())
    statuses = {result["unique_id"]: result["status"] for result in results["results"]}
    assert statuses["model.flight_delays.delay_rates_by_route"] == "success"
    assert [unique_id for unique_id in statuses if unique_id.startswith(("model.", "seed."))] == [
        "model.flight_delays.delay_rates_by_route"]
    compiled = (branch / "target" / "compiled" / "flight_delays" / "models" / "marts" / "analytics"
                / "delay_rates_by_route.sql").read_text()
    assert '"marts"."fct_flights"' in compiled
    with duckdb.connect(str(clone.warehouse), read_only=True) as con:
        built = con.execute("select count(*) from ci_pr_1_marts.delay_rates_by_route").fetchone()[0]
        published = con.execute("select count(*) from marts.delay_rates_by_route").fetchone()[0]
    assert built == published > 0


def test_weather_lift_is_measured_from_each_factors_calmest_bucket(clone: Clone):
    dbt(clone.root, "compile", "--target", "prod", "--select", "delay_rate_lift_by_weather")
    compiled = (clone.root / "target" / "compiled" / "flight_delays" / "analyses"
                / "delay_rate_lift_by_weather.sql").read_text()
    with duckdb.connect(str(clone.warehouse), read_only=True) as con:
        rows = con.execute(compiled).fetchall()
        columns = [description[0] for description in con.description]
        buckets = dict(con.execute(
            "select weather_factor, list(bucket order by bucket_order) from marts.delay_rates_by_weather_condition "
            "where bucket != 'unknown' group by weather_factor").fetchall())
    lifts = [dict(zip(columns, row, strict=True)) for row in rows]

    baselines = {lift["weather_factor"]: lift["calmest_bucket"] for lift in lifts}
    assert baselines == {"precipitation": buckets["precipitation"][0], "wind": buckets["wind"][0],
                         "visibility": buckets["visibility"][-1]}
    assert baselines["visibility"] == ">= 5 mi"
    for lift in lifts:
        if lift["bucket"] == lift["calmest_bucket"]:
            assert lift["lift_over_calmest"] == pytest.approx(1.0)
