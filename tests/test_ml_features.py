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


def test_every_feature_of_the_mart_says_in_words_what_it_means():
    """The report tells a prediction's reasons with the sentence beside each feature's definition (config.meta.reason);
    a feature added to the mart without one would be shown by its column name."""
    from flightdelay.report.explained_flights import feature_meta, in_words, reason_labels
    from ml.feature_ranges import FEATURE_RANGES
    from ml.features import DATE_COLUMN, LABEL, NUMERIC_FEATURES

    labels = reason_labels(PROJECT_ROOT)
    contract = yaml.safe_load((PROJECT_ROOT / "models" / "marts" / "ml" / "_ml__models.yml").read_text())
    mart = next(model for model in contract["models"] if model["name"] == "ml_flight_delay_features")
    features = [column["name"] for column in mart["columns"] if column["name"] not in (ID_COLUMN, LABEL, DATE_COLUMN)
                and column.get("data_type") not in ("timestamp", "date")]
    assert sorted(labels) == sorted(features) == sorted([*CATEGORICAL_FEATURES, *NUMERIC_FEATURES])
    meta = feature_meta(PROJECT_ROOT)  # and its family, which bench/feature_families.py leaves out as one
    assert [name for name in features if not meta[name].get("family")] == []
    for name in NUMERIC_FEATURES:  # every sentence formats a value of its feature's range, and says something
        low, high = FEATURE_RANGES[name]
        for value in (low, high, (low + high) / 2, 0.0 if low <= 0 <= high else low):
            sentence = in_words(labels[name], name, float(value))
            assert name not in sentence and len(sentence) > 10, sentence
    never_null = {column["name"] for column in mart["columns"]
                  if {"type": "not_null"} in (column.get("constraints") or [])}
    for name in set(NUMERIC_FEATURES) - never_null:
        assert labels[name].reason_unknown, f"{name} can be null: say what a missing value means"
    assert in_words(labels["origin_airport_code"], "origin_airport_code", "EWR") == "it departs from EWR"
    for name in NUMERIC_FEATURES:  # "-26 minutes late" is said as "26 minutes early"
        if name.endswith("_minutes") or name.endswith("_minutes_28d") or "_late_so_far_" in name:
            low = FEATURE_RANGES[name][0]
            assert low >= 0 or "-" not in in_words(labels[name], name, -26.0), name
    assert in_words(labels["previous_leg_known_arr_delay_minutes"], "previous_leg_known_arr_delay_minutes", -26.0) \
        == "the aircraft's previous flight arrived 26 minutes early"
    assert in_words(labels["previous_leg_late_so_far_minutes"], "previous_leg_late_so_far_minutes", 40.0) == \
        "the aircraft's previous flight is 40 minutes late"
    # the sentence follows the number it shows: a value that rounds to 0 is neither "-0" nor "0 minutes early",
    # and one of a thing is singular
    avg_30m = "origin_avg_late_so_far_minutes_30m"
    for value in (-0.4, -0.0, 0.4):
        assert in_words(labels[avg_30m], avg_30m, value) == \
            "the airport's departures in the last 30 minutes are 0 minutes late on average"
    assert in_words(labels[avg_30m], avg_30m, -0.6) == \
        "the airport's departures in the last 30 minutes are 1 minute early on average"
    assert in_words(labels["carrier_origin_on_ground_3h"], "carrier_origin_on_ground_3h", 1.0) == \
        "the carrier has 1 departure from this airport in the last 3 hours still on the ground"
    assert in_words(labels["origin_max_late_so_far_minutes_3h"], "origin_max_late_so_far_minutes_3h", -3.0) == \
        "every departure at the airport in the last 3 hours left at least 3 minutes early"
    assert in_words(labels["origin_late_15_share_1h"], "origin_late_15_share_1h", -0.001) == \
        "0% of the airport's departures in the last hour are 15+ minutes late"
