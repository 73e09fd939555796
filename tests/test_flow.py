"""The whole flow on one month of the bundled sample, with the real engines (Spark, DuckDB, dbt, GX,
XGBoost), through the CLI; then dbt's unit tests against the warehouse it built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from spark_prep import lake_snapshots
from tests.conftest import PROJECT_ROOT, FlowRun, run_cli

pytestmark = pytest.mark.integration


def counts(warehouse: str) -> dict[str, int]:
    with duckdb.connect(warehouse, read_only=True) as con:
        return {
            table: con.execute(f"select count(*) from {table}").fetchone()[0]
            for table in ("raw.flights", "marts.fct_flights", "marts.ml_flight_delay_features",
                          "ml.flight_delay_predictions")
        }


def test_run_on_one_month_then_rerun_changes_nothing(january_run: FlowRun):
    root, env, first = january_run.root, january_run.env, january_run.first
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "flightdelay run summary" in first.stdout

    warehouse = env["FLIGHTDELAY_WAREHOUSE"]
    after_first = counts(warehouse)
    assert after_first["raw.flights"] == january_run.flight_rows == 27004
    assert after_first["marts.fct_flights"] == 27004
    with duckdb.connect(warehouse, read_only=True) as con:
        departed = con.execute("select count(*) from marts.fct_flights where has_departed").fetchone()[0]
        with_weather = con.execute(
            "select count(*) from marts.ml_flight_delay_features where temp_f is not null").fetchone()[0]
    assert after_first["marts.ml_flight_delay_features"] == departed
    assert with_weather / departed > 0.95

    hourly = lake_snapshots.table_dir(root / "lake" / "weather", "hourly_observations")
    stations = sorted(p.name for p in hourly.glob("station_id=*"))
    assert stations == ["station_id=72502014734", "station_id=72503014732", "station_id=74486094789"]

    evaluation = json.loads((root / "artifacts" / "ml" / "evaluation.json").read_text())
    metrics = evaluation["binary_classification_metrics"]
    assert 0.5 < metrics["auc"]["value"] <= 1.0
    assert set(metrics) >= {"auc", "pr_auc", "log_loss", "confusion_matrix", "precision", "recall"}
    assert evaluation["baseline"]["binary_classification_metrics"]["auc"]["value"] > 0.5
    assert evaluation["dataset"]["test"]["first_date"] == "2013-01-22"
    assert (root / "artifacts" / "ml" / "model" / "model.json").exists()
    assert (root / "artifacts" / "data_docs" / "index.html").exists()

    second = run_cli(env, "run", "--skip-sample")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert counts(warehouse) == after_first


def test_train_and_score_refuse_features_of_another_horizon(january_run: FlowRun):
    """The published mart is at 2 h: training or scoring it as 30 minutes would record the model under the wrong
    horizon. Both refuse before writing anything, and say the two commands that would be right."""
    evaluation = (january_run.artifacts / "ml" / "evaluation.json").read_bytes()
    with duckdb.connect(january_run.env["FLIGHTDELAY_WAREHOUSE"], read_only=True) as con:
        registry = con.execute("select * from ml.model_registry").fetchall()
    for command in ("train", "score"):
        refused = run_cli(january_run.env, "--horizon-hours", "0.5", command)
        assert refused.returncode == 1, refused.stdout[-2000:] + refused.stderr[-2000:]
        assert ("the published feature mart was built at a 2 h horizon and this command asks for 30 min: run "
                f"`flightdelay --horizon-hours 2 {command}` for the mart as it is, or `flightdelay --horizon-hours "
                "0.5 run`") in " ".join(refused.stderr.split())
    assert (january_run.artifacts / "ml" / "evaluation.json").read_bytes() == evaluation
    with duckdb.connect(january_run.env["FLIGHTDELAY_WAREHOUSE"], read_only=True) as con:
        assert con.execute("select * from ml.model_registry").fetchall() == registry


def test_dbt_unit_tests_pass_against_the_built_warehouse(january_run: FlowRun):
    env = january_run.env
    assert january_run.first.returncode == 0, "the flow run failed; see test_run_on_one_month"

    dbt = Path(sys.executable).with_name("dbt")
    completed = subprocess.run(
        [str(dbt), "test", "--select", "test_type:unit", "--project-dir", str(PROJECT_ROOT),
         "--profiles-dir", str(PROJECT_ROOT)],
        env={**os.environ, **env}, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-4000:]
    assert "PASS=" in completed.stdout and "ERROR=0" in completed.stdout


def test_every_model_and_column_is_documented(january_run: FlowRun, tmp_path):
    """Against the catalog of the built warehouse: every model, seed and real column has a description."""
    assert january_run.first.returncode == 0
    dbt = Path(sys.executable).with_name("dbt")
    completed = subprocess.run(
        [str(dbt), "docs", "generate", "--project-dir", str(PROJECT_ROOT), "--profiles-dir", str(PROJECT_ROOT),
         "--target-path", str(tmp_path / "target"), "--target", "prod"],
        env={**os.environ, **january_run.env}, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    assert len(catalog["nodes"]) > 20, "the catalog is of an unbuilt target: nothing would be checked"
    undocumented = []
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] not in ("model", "seed"):
            continue
        if not node["description"].strip():
            undocumented.append(unique_id)
        documented = {name.lower() for name, column in node["columns"].items() if column["description"].strip()}
        built = catalog["nodes"].get(unique_id, {}).get("columns", {})
        undocumented += [f"{unique_id}.{name}" for name in built if name.lower() not in documented]
    assert undocumented == []
