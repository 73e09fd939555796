"""Shared fixtures: one Spark session for the whole test run (Hive support, Derby in a temp dir)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from flightdelay.flow.feature_contract import feature_ranges, numeric_features

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REAL_SAMPLES = PROJECT_ROOT.parent / "shared" / "data" / "real-samples"

# The feature mart's numeric features and their plausible ranges, as its contract declares them
# (models/marts/ml/_ml__models.yml): what tests build synthetic channels and requests from.
NUMERIC_FEATURES = tuple(numeric_features(PROJECT_ROOT))
FEATURE_RANGES = feature_ranges(PROJECT_ROOT)


ENGINE_FIXTURES = {"spark", "spark_lake", "small_server"}  # Spark; the inference server in a process of its own


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that asks for the Spark session or a running inference server starts an engine: `make test-fast`
    leaves it out (the tiers are in pyproject.toml; tests that start dbt or the CLI carry the mark themselves)."""
    for item in items:
        if ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session")
def spark_lake(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("spark_lake")


@pytest.fixture(scope="session")
def spark(spark_lake):
    from spark_prep.weather_job import JobSettings, build_spark, to_uri

    settings = JobSettings(raw_weather_path="", stations_path="", lake_uri=to_uri(str(spark_lake)),
                           master="local[1]")
    session = build_spark(settings)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@dataclass
class FlowRun:
    root: Path
    env: dict[str, str]
    flight_rows: int
    first: subprocess.CompletedProcess

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"


RUN_TIME_COLUMNS = {"loaded_at", "source_loaded_at", "transformed_at_utc", "scored_at", "scored_at_utc"}


def differing_rows(left: str, right: str, schema: str) -> dict[str, tuple[int, int, int]]:
    """Per base table of `schema`: (rows, rows only in left, rows only in right), run-time columns left out."""
    out = {}
    with duckdb.connect() as con:
        for alias, path in (("l", left), ("r", right)):
            con.execute(f"attach '{path.replace(chr(39), chr(39) * 2)}' as {alias} (read_only)")
        tables = [row[0] for row in con.execute(
            "select table_name from duckdb_tables() where database_name = 'l' and schema_name = ? order by 1",
            [schema]).fetchall()]
        for table in tables:
            names = [row[0] for row in con.execute(
                "select column_name from duckdb_columns() where database_name = 'l' and schema_name = ? "
                "and table_name = ? order by column_index", [schema, table]).fetchall()]
            columns = ", ".join(f'"{name}"' for name in names if name not in RUN_TIME_COLUMNS)
            relation = f"{schema}.{table}"
            out[table] = tuple(con.execute(f"""
                select (select count(*) from l.{relation}),
                       (select count(*) from (select {columns} from l.{relation} except all
                                              select {columns} from r.{relation})),
                       (select count(*) from (select {columns} from r.{relation} except all
                                              select {columns} from l.{relation}))""").fetchone())
    return out


def copy_of(run: FlowRun, root: Path) -> FlowRun:
    """A copy of a finished flow run under `root`, its settings pointing at the copy, for a test to change."""
    import shutil

    assert run.first.returncode == 0, run.first.stderr[-2000:]
    shutil.copytree(run.root, root, ignore=shutil.ignore_patterns("screenshots"))
    env = {key: value.replace(str(run.root), str(root)) for key, value in run.env.items()}
    return FlowRun(root, env, run.flight_rows, run.first)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flightdelay.cli", *args],
        env={**os.environ, **env}, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900,
    )


@pytest.fixture(scope="session")
def january_run(tmp_path_factory) -> FlowRun:
    """`flightdelay run` on January 2013 of the bundled sample, in a temp folder, with the real engines."""
    from flightdelay.raw.sample import write_sample

    root = tmp_path_factory.mktemp("flow")
    sample = write_sample(root / "raw", PROJECT_ROOT / "seeds", months=[1])
    env = {
        "FLIGHTDELAY_RAW": str(root / "raw"),
        "FLIGHTDELAY_LAKE": str(root / "lake"),
        "FLIGHTDELAY_WAREHOUSE": str(root / "warehouse" / "flight_delays.duckdb"),
        "FLIGHTDELAY_ARTIFACTS": str(root / "artifacts"),
        "FLIGHTDELAY_TRAIN_START": "2013-01-01",
        "FLIGHTDELAY_VALIDATION_START": "2013-01-15",
        "FLIGHTDELAY_TEST_START": "2013-01-22",
        "FLIGHTDELAY_TEST_END": "2013-01-31",
    }
    return FlowRun(root, env, sample.flight_rows, run_cli(env, "run", "--skip-sample"))


@pytest.fixture(scope="session")
def postgres_server() -> dict[str, str]:
    """A real PostgreSQL server in a temp dir on a free port (scripts/local_postgres.py, as `make postgres`)."""
    import tempfile

    sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
    import local_postgres

    # Not under pytest's tmp base: its directories are 0700 and owned by root, so `postgres` cannot reach them.
    cluster_dir = Path(tempfile.mkdtemp(prefix="flightdelay-pg-"))
    try:
        env = local_postgres.start(cluster_dir)
    except (RuntimeError, SystemExit) as failure:
        local_postgres.stop(cluster_dir)
        pytest.fail(f"could not start PostgreSQL: {failure}")
    yield env
    local_postgres.stop(cluster_dir)
