"""The model's features are the feature mart's columns: a new numeric column is a new feature, and a column
training cannot type stops it, named."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from flightdelay.flow.feature_contract import (
    FEATURE_CONTRACT,
    FEATURE_MART_MODEL,
    FeatureContractError,
    feature_ranges,
    write_feature_ranges,
)
from ml import train
from ml.feature_ranges import read_ranges, served_ranges
from ml.features import CATEGORICAL_FEATURES, ID_COLUMN, RANGES_FILE, FeatureSpec
from ml.request_validation import BadRequest, validate
from tests.conftest import FEATURE_RANGES, NUMERIC_FEATURES, PROJECT_ROOT
from tests.test_train import synthetic_features

NEW_FEATURE = {"name": "runway_queue_length", "data_type": "integer", "description": "Departures queued.",
               "config": {"meta": {"family": "the origin departure board", "range": [0, 50],
                                   "reason": "{value:.0f} departures are queued for the runway"}}}


def _project(tmp_path: Path, *columns: dict) -> Path:
    """A project root whose feature mart contract is this project's with `columns` appended: a feature added the
    way issue 18 asks, in the mart's YAML only."""
    contract = yaml.safe_load((PROJECT_ROOT / FEATURE_CONTRACT).read_text())
    next(model for model in contract["models"] if model["name"] == FEATURE_MART_MODEL)["columns"] += columns
    (tmp_path / FEATURE_CONTRACT).parent.mkdir(parents=True)
    (tmp_path / FEATURE_CONTRACT).write_text(yaml.safe_dump(contract))
    return tmp_path


def _channels(tmp_path: Path, project_root: Path = PROJECT_ROOT, **extra) -> dict[str, Path]:
    """Train and validation channels of the synthetic mart, with `extra` columns (name -> value per row), and the
    ranges file `project_root`'s contract gives, as the flow exports them (flightdelay/flow/modeling.py)."""
    out = {}
    for name, n, seed, start in (("train", 300, 1, "2013-01-01"), ("validation", 120, 2, "2013-02-01")):
        frame = synthetic_features(n, seed, start)
        for column, value in extra.items():
            frame[column] = value(frame)
        (tmp_path / name).mkdir()
        frame.to_parquet(tmp_path / name / "part-0000.parquet")
        out[name] = tmp_path / name
    write_feature_ranges(project_root, out["train"])
    return out


def _train(tmp_path: Path, channels: dict[str, Path]) -> FeatureSpec:
    train.run(train.parse_args([
        "--model-dir", str(tmp_path / "model"), "--output-data-dir", str(tmp_path / "out"),
        "--train", str(channels["train"]), "--validation", str(channels["validation"]),
        "--test", str(tmp_path / "no-test-channel"), "--num_round", "10", "--nthread", "1",
    ]))
    return train.load_model(tmp_path / "model")[1]


def test_a_feature_added_to_the_marts_contract_is_trained_and_its_range_served(tmp_path):
    """Issue 18: a new numeric feature is an edit to the intermediate model, the mart and its YAML only. Its
    column in the channel makes it a feature; its range in the YAML reaches the model and the server."""
    project = _project(tmp_path / "project", NEW_FEATURE)
    channels = _channels(tmp_path, project, runway_queue_length=lambda f: (f["precip_in"] * 3 + 1).round())
    spec = _train(tmp_path, channels)
    assert spec.numeric == [*NUMERIC_FEATURES, "runway_queue_length"]  # in the channel's column order
    assert list(spec.categorical) == list(CATEGORICAL_FEATURES)
    assert spec.ranges == {**FEATURE_RANGES, "runway_queue_length": (0.0, 50.0)}
    request = pd.DataFrame({**{name: [vocabulary[0]] * 2 for name, vocabulary in spec.categorical.items()},
                            **{name: [low, low] for name, (low, _) in spec.ranges.items()}})
    assert len(validate(request, spec)) == 2
    request["runway_queue_length"] = [3, 51]
    with pytest.raises(BadRequest, match=r"row 2, field runway_queue_length: 51 is not inside the plausible range "
                                         r"\[0, 50\]"):
        validate(request, spec)


def test_a_channel_column_the_contract_gives_no_range_stops_training_named(tmp_path):
    channels = _channels(tmp_path, runway_queue_length=lambda f: 1)  # this project's contract: no such feature
    with pytest.raises(ValueError, match=r"no plausible range for the numeric features \['runway_queue_length'\] "
                                         r"in the training channel's feature_ranges.json"):
        _train(tmp_path, channels)


def test_a_feature_declared_without_a_range_is_named_before_anything_is_exported(tmp_path):
    unranged = {**NEW_FEATURE, "config": {"meta": {"reason": "{value:.0f} queued"}}}
    with pytest.raises(FeatureContractError, match=r"the numeric features \['runway_queue_length'\] declare no "
                                                   "plausible range"):
        feature_ranges(_project(tmp_path, unranged))


@pytest.mark.parametrize("declared", [[1], [2, 1], [0, float("inf")], [float("nan"), 1], [0, 10 ** 400], [True, 2],
                                      ["0", 5], [[0], 5], "0-50", None, {"low": 0, "high": 5},
                                      {"raw": "flight", "field": "taxi_out"}, {"raw": "sky", "field": "temp_f"},
                                      {"raw": "weather", "field": "temp_f", "low": 200},
                                      {"raw": "weather", "field": "temp_f", "scale": 2},
                                      {"raw": ["flight"], "field": "distance"},
                                      {"raw": "flight", "field": ["distance"]}])
def test_a_range_that_is_not_two_finite_ordered_numbers_is_refused_naming_the_column(tmp_path, declared):
    column = {**NEW_FEATURE, "config": {"meta": {"range": declared}}}
    with pytest.raises(FeatureContractError, match=r"_ml__models.yml, column runway_queue_length: config.meta.range"):
        feature_ranges(_project(tmp_path, column))


@pytest.mark.parametrize(("columns", "message"), [
    ([{"data_type": "integer"}], r"column names must be lowercase identifiers, each given once; found \[None\]"),
    ([{**NEW_FEATURE, "name": "x from pg_user; --"}], r"found \['x from pg_user; --'\]"),
    ([NEW_FEATURE, NEW_FEATURE], r"found \['runway_queue_length'\]"),
    ([{"name": "carrier_name", "data_type": "varchar", "config": {"meta": {"range": [0, 1]}}}],
     r"the columns \['carrier_name'\] declare a range but are not numeric features"),
])
def test_a_contract_whose_columns_cannot_be_features_is_refused_naming_them(tmp_path, columns, message):
    with pytest.raises(FeatureContractError, match=message):
        feature_ranges(_project(tmp_path, *columns))


def test_a_range_change_alone_retrains_the_model(tmp_path):
    """The model keeps the ranges it was trained with; a narrowed range must not wait for new data to be served."""
    import shutil

    from flightdelay.flow.ml_inputs import ml_code_digest

    project = _project(tmp_path, NEW_FEATURE)
    shutil.copytree(PROJECT_ROOT / "ml", project / "ml")
    before = ml_code_digest(project)
    contract = project / FEATURE_CONTRACT
    contract.write_text(contract.read_text().replace("- 0\n        - 50\n", "- 0\n        - 40\n"))
    assert feature_ranges(project)["runway_queue_length"] == (0.0, 40.0)
    assert ml_code_digest(project) != before


def test_a_measured_feature_takes_the_raw_contracts_range_and_may_replace_one_bound(tmp_path):
    from raw_contracts.ranges import FLIGHT_RANGES, WEATHER_RANGES

    assert FEATURE_RANGES["temp_f"] == WEATHER_RANGES["temp_f"]
    assert FEATURE_RANGES["distance_miles"] == FLIGHT_RANGES["distance"]
    assert FEATURE_RANGES["origin_avg_late_so_far_minutes_30m"] == (FLIGHT_RANGES["dep_delay"][0], 30.0)


def test_the_channels_ranges_file_is_checked_and_a_model_without_ranges_is_not_served(tmp_path):
    with pytest.raises(ValueError, match=f"{RANGES_FILE} is missing"):
        read_ranges(tmp_path)
    for text, error in (("[1, 2]", "expected an object"), ('{"x": [3, 1]}', "feature x: the range"), ("{", "not JSON"),
                        ('{"x": [0, NaN]}', "feature x: the range"), ('{"x": [0, 1' + "0" * 5000 + "]}", "not JSON"),
                        ("[" * 100_000 + "]" * 100_000, "not JSON"), ('{"x": [true, 2]}', "feature x: the range")):
        (tmp_path / RANGES_FILE).write_text(text)
        with pytest.raises(ValueError, match=error):
            read_ranges(tmp_path)
    with pytest.raises(ValueError, match=r"no plausible range for the numeric features \['temp_f'\]: it was not "
                                         "trained by ml/train.py"):
        served_ranges(FeatureSpec(categorical={}, numeric=["temp_f"]))
    for forged in (["1", "13"], [True, 13], [1, 2, 3], None):  # a spec edited by hand, fit.json's digests redone
        spec = FeatureSpec.from_json({"categorical": {}, "numeric": ["month_number"],
                                      "ranges": {"month_number": forged}})
        with pytest.raises(ValueError, match="feature_spec.json, feature month_number: the range"):
            served_ranges(spec)


def test_dates_and_timestamps_are_not_features(tmp_path):
    spec = _train(tmp_path, _channels(tmp_path, as_of_at_utc=lambda f: pd.Timestamp("2013-01-01")))
    assert spec.numeric == list(NUMERIC_FEATURES)


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
    from flightdelay.flow.feature_contract import feature_meta
    from flightdelay.report.explained_flights import in_words, reason_labels
    from ml.features import DATE_COLUMN, LABEL

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
