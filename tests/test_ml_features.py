"""The model's features are the feature mart's columns: a new numeric column is a new feature, and a column
training cannot type stops it, named."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from ml import train
from ml.features import CATEGORICAL_FEATURES, ID_COLUMN, FeatureSpec
from tests.conftest import PROJECT_ROOT
from tests.test_train import synthetic_features


def _channels(tmp_path: Path, **extra) -> dict[str, Path]:
    """Train and validation channels of the synthetic mart, with `extra` columns (name -> value per row)."""
    out = {}
    for name, n, seed, start in (("train", 300, 1, "2013-01-01"), ("validation", 120, 2, "2013-02-01")):
        frame = synthetic_features(n, seed, start)
        for column, value in extra.items():
            frame[column] = value(frame)
        (tmp_path / name).mkdir()
        frame.to_parquet(tmp_path / name / "part-0000.parquet")
        out[name] = tmp_path / name
    return out


def _train(tmp_path: Path, channels: dict[str, Path]) -> FeatureSpec:
    train.run(train.parse_args([
        "--model-dir", str(tmp_path / "model"), "--output-data-dir", str(tmp_path / "out"),
        "--train", str(channels["train"]), "--validation", str(channels["validation"]),
        "--test", str(tmp_path / "no-test-channel"), "--num_round", "10", "--nthread", "1",
    ]))
    return train.load_model(tmp_path / "model")[1]


def test_a_new_numeric_column_of_the_channel_is_a_feature(tmp_path):
    spec = _train(tmp_path, _channels(tmp_path, runway_queue_length=lambda f: f["precip_in"] * 3 + 1))
    assert spec.numeric == [*train.NUMERIC_FEATURES, "runway_queue_length"]  # in the channel's column order
    assert list(spec.categorical) == list(CATEGORICAL_FEATURES)


def test_dates_and_timestamps_are_not_features(tmp_path):
    spec = _train(tmp_path, _channels(tmp_path, as_of_at_utc=lambda f: pd.Timestamp("2013-01-01")))
    assert spec.numeric == list(train.NUMERIC_FEATURES)


def test_a_string_column_not_declared_categorical_fails_with_its_name(tmp_path):
    channels = _channels(tmp_path, tail_number=lambda f: "N" + f["flight_id"].str[-3:])
    with pytest.raises(ValueError, match=r"cannot type columns tail_number \(string\)"):
        _train(tmp_path, channels)


def test_the_declared_categoricals_are_the_marts_string_columns():
    """ml/features.py declares them (the container has no models/); the mart's contract must agree."""
    contract = yaml.safe_load((PROJECT_ROOT / "models" / "marts" / "ml" / "_ml__models.yml").read_text())
    mart = next(model for model in contract["models"] if model["name"] == "ml_flight_delay_features")
    strings = [column["name"] for column in mart["columns"] if column.get("data_type") == "varchar"]
    assert strings == [ID_COLUMN, *CATEGORICAL_FEATURES]
