"""The model registry (ml.model_registry): one row per model id, with the horizon in minutes; a registry written
while horizons were whole hours is brought up to date by the next row, its hours made minutes."""

from __future__ import annotations

from datetime import date

import duckdb

from flightdelay.flow.modeling import (
    MODEL_REGISTRY_DDL,
    MODEL_REGISTRY_TABLE,
    migrate_registry,
    register_model,
    registry_row,
)
from flightdelay.settings import Settings
from tests.conftest import PROJECT_ROOT


def evaluation(model_id: str) -> dict:
    """The parts of an evaluation.json (ml/train.py) the registry row reads."""
    part = {"first_date": "2013-01-01", "last_date": "2013-09-30", "rows": 1000}
    return {
        "model_id": model_id,
        "model": {"algorithm": "xgboost", "num_boosted_rounds": 40},
        "dataset": {"train": part, "validation": {**part, "first_date": "2013-10-01", "last_date": "2013-10-31"},
                    "evaluated_on": "test", "test": {**part, "first_date": "2013-11-01", "last_date": "2013-12-31"}},
        "binary_classification_metrics": {"auc": {"value": 0.77}, "pr_auc": {"value": 0.55},
                                          "log_loss": {"value": 0.43}},
        "baseline": {"binary_classification_metrics": {"auc": {"value": 0.63}}},
    }


def registry_in_hours(warehouse) -> None:
    """The table as `flightdelay train` wrote it before horizons were minutes, with one model at 2 hours."""
    row = ["old", *registry_row(evaluation("old"), 2)[1:]]
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema ml")
        con.execute(MODEL_REGISTRY_DDL.replace("prediction_horizon_minutes", "prediction_horizon_hours"))
        con.execute(f"insert into {MODEL_REGISTRY_TABLE} values ({', '.join('?' * len(row))})", row)


def registry(warehouse) -> tuple[list[tuple[str, int]], list[str]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(f"select model_id, prediction_horizon_minutes from {MODEL_REGISTRY_TABLE} "
                           "order by prediction_horizon_minutes").fetchall()
        columns = [name for (name,) in con.execute(
            "select column_name from information_schema.columns where table_name = 'model_registry'").fetchall()]
    return rows, columns


def settings_for(tmp_path) -> Settings:
    return Settings(project_root=PROJECT_ROOT, raw_dir=tmp_path, lake_dir=tmp_path,
                    warehouse_path=tmp_path / "flight_delays.duckdb", artifacts_dir=tmp_path,
                    train_start=date(2013, 1, 1), prediction_horizon_minutes=30)


def test_a_registry_in_hours_is_migrated_to_minutes_by_the_next_row(tmp_path):
    settings = settings_for(tmp_path)
    registry_in_hours(settings.warehouse_path)
    register_model(settings, evaluation("at-30-minutes"))
    register_model(settings, evaluation("at-30-minutes"))  # once per model id
    register_model(settings.with_overrides(prediction_horizon_minutes=1440), evaluation("a-day-out"))
    rows, columns = registry(settings.warehouse_path)
    assert rows == [("at-30-minutes", 30), ("old", 120), ("a-day-out", 1440)]
    assert "prediction_horizon_hours" not in columns and "prediction_horizon_minutes" in columns


def test_scoring_migrates_a_registry_in_hours_before_the_models_over_it_read_it(tmp_path):
    settings = settings_for(tmp_path)
    migrate_registry(settings)  # no registry yet: nothing to do
    registry_in_hours(settings.warehouse_path)
    migrate_registry(settings)  # as `flightdelay score` does before the models over the registry
    migrate_registry(settings)  # and again: nothing to do
    assert registry(settings.warehouse_path)[0] == [("old", 120)]
