"""Hostile but well-formed values (issue 14): every numeric value inside the plausible range the model was trained
with (its feature_spec.json, from the feature mart's contract), every category one the model saw, every column one
it knows; a 400 naming row, field and value otherwise, from the server and from the SageMaker handlers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml import serve
from ml.model_files import ModelFolderError
from ml.train import (
    load_model,
)
from tests.conftest import FEATURE_RANGES, PROJECT_ROOT
from tests.serving.helpers import (
    Served,
    expected,
    post,
    post_csv_and_json,
)


def test_the_served_model_carries_the_contracts_range_of_every_feature(small_model: Path):
    """The ranges travel with the model (feature_spec.json), so the server needs neither the contract nor
    raw_contracts: tests/test_ml_features.py checks how they get there."""
    assert load_model(small_model)[1].ranges == FEATURE_RANGES


def test_a_model_with_a_numeric_feature_without_a_range_is_not_served(small_model: Path, tmp_path: Path):
    """One fit (its digests recorded as a fit would) whose spec has a feature no range covers."""
    import hashlib
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(small_model, copy)
    spec = json.loads((copy / "feature_spec.json").read_text())
    spec["numeric"].append("new_feature")
    (copy / "feature_spec.json").write_text(json.dumps(spec))
    record = json.loads((copy / "fit.json").read_text())
    record["files"]["feature_spec.json"] = hashlib.sha256((copy / "feature_spec.json").read_bytes()).hexdigest()
    (copy / "fit.json").write_text(json.dumps(record))
    with pytest.raises(ModelFolderError, match=r"served model .*/model: the model's feature_spec.json has no "
                                               r"plausible range for the numeric features \['new_feature'\]"):
        serve.model_fn(str(copy))
    # and `python -m ml.serve` says so in one line, exit 2, as for any other folder it refuses
    refused = subprocess.run([sys.executable, "-m", "ml.serve", "--model-dir", str(copy), "--port", "0"],
                             capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert refused.returncode == 2 and refused.stderr.startswith("ERROR: served model ") \
        and "Traceback" not in refused.stderr, refused.stderr[-2000:]


@pytest.mark.parametrize(("field", "value", "bounds"), [
    ("month_number", 13, "[1, 12]"),
    ("day_of_week", 9, "[0, 6]"),
    ("scheduled_dep_hour_local", 25, "[0, 24]"),
    ("distance_miles", -5, "[10, 5100]"),
    ("relative_humidity_pct", 400, "[0, 100]"),
    ("origin_late_15_share_6h", 1.5, "[0, 1]"),
    ("weather_age_minutes", -1, "[0, 180]"),
])
def test_a_finite_but_impossible_value_is_a_400_naming_row_field_value_and_range(small_server: Served, frame,
                                                                                   field: str, value, bounds: str):
    csv_reply, json_reply = post_csv_and_json(small_server.url, frame, 1, field, str(value), value)
    # before: 200 with a probability for a month 13 or a humidity of 400 %
    where = "(the feature's config.meta.range in the feature mart's contract)"
    assert csv_reply[0] == 400 and json.loads(csv_reply[1])["error"] == (
        f"row 2, field {field}: '{value}' is not inside the plausible range {bounds} {where}")
    assert json_reply[0] == 400 and json.loads(json_reply[1])["error"] == (
        f"row 2, field {field}: {value} is not inside the plausible range {bounds} {where}")


def test_every_bound_is_inclusive_and_missing_values_stay_allowed(small_server: Served, small_model: Path, frame):
    edges = frame.head(3).copy()
    for column, (low, high) in FEATURE_RANGES.items():
        edges[column] = [low, high, np.nan]
    want = expected(small_model, edges)
    for body, content_type in ((edges.to_csv(index=False), "text/csv"),
                               (json.dumps({"instances": json.loads(edges.to_json(orient="records"))}),
                                "application/json")):
        status, answer = post(small_server.url, body, content_type)
        assert status == 200, answer
        assert [row["delay_probability"] for row in json.loads(answer)["predictions"]] == want


def test_a_category_the_model_never_saw_is_a_400_naming_row_field_and_value(small_server: Served, frame):
    # before: 200, the model scoring 'ZZ' as a missing carrier
    for status, body in post_csv_and_json(small_server.url, frame, 3, "carrier_code", "ZZ", "ZZ"):
        assert status == 400 and json.loads(body)["error"] == (
            "row 4, field carrier_code: 'ZZ' is not among the carrier_code values the model was trained with; it "
            "knows 'AA', 'DL', 'UA', 'WN'; send null if unknown")
    for status, body in post_csv_and_json(small_server.url, frame, 0, "origin_airport_code", " jfk", " jfk"):
        assert status == 400 and json.loads(body)["error"].startswith(
            "row 1, field origin_airport_code: ' jfk' is not among the origin_airport_code values the model "
            "was trained with (did you mean 'JFK'?)")
    # a missing category stays allowed: empty in CSV, null in JSON
    for status, body in post_csv_and_json(small_server.url, frame, 2, "dest_airport_code", "", None):
        assert status == 200, body


def test_a_column_the_model_does_not_know_is_a_400_naming_it_and_what_is_accepted(small_server: Served, frame):
    extra = frame.assign(distanse_miles=frame["distance_miles"], is_dep_delayed_15=False)
    accepted = f"send only flight_id (optional) and the model's {len(frame.columns) - 1} features: carrier_code, "
    for body, content_type in ((extra.to_csv(index=False), "text/csv"),
                               (json.dumps({"instances": json.loads(extra.to_json(orient="records"))}),
                                "application/json")):
        status, answer = post(small_server.url, body, content_type)
        # before: 200, the two columns ignored
        assert status == 400
        error = json.loads(answer)["error"]
        assert error.startswith(f"unknown columns ['distanse_miles', 'is_dep_delayed_15']; {accepted}"), error
        assert error.endswith(", ".join(frame.columns[-3:]))
    typo = frame.rename(columns={"distance_miles": "distanse_miles"})
    status, answer = post(small_server.url, typo.to_csv(index=False), "text/csv")
    assert status == 400 and json.loads(answer)["error"].startswith(
        "unknown columns ['distanse_miles'] (and missing feature columns ['distance_miles']: a misspelt name?); "
        "send only flight_id")


def test_the_sagemaker_handlers_refuse_the_same(small_model: Path, frame):
    model = serve.model_fn(str(small_model))
    with pytest.raises(serve.BadRequest, match=r"^unknown columns \['is_dep_delayed_15'\]"):
        serve.predict_fn(frame.assign(is_dep_delayed_15=True), model)
    broken = frame.copy()
    broken.loc[broken.index[2], "month_number"] = 0.0
    with pytest.raises(serve.BadRequest, match=r"^row 3, field month_number: 0.0 is not inside the plausible range "
                                               r"\[1, 12\]"):
        serve.predict_fn(broken, model)
    broken = frame.astype({"carrier_code": object})
    broken.loc[broken.index[5], "carrier_code"] = "ZZ"
    with pytest.raises(serve.BadRequest, match=r"^row 6, field carrier_code: 'ZZ' is not among the carrier_code"):
        serve.predict_fn(broken, model)
