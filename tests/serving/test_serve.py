"""The inference server's protocol under the SageMaker container contract, over real HTTP: /ping, /invocations
with CSV and JSON, the same probabilities as batch scoring, a 4xx JSON error naming the row and field for
malformed input, never a 200 with a shifted or padded row; the SageMaker handlers parse as strictly.

The integration tests serve the model of a whole `flightdelay run`; the others serve the small model of
tests/serving/helpers.py. The transport (framing, slow clients, the worker pool) is test_serve_http.py's, the
values (ranges, categories, columns) test_serve_values.py's."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ml import serve
from ml.train import (
    CATEGORICAL_FEATURES,
    ID_COLUMN,
    load_model,
)
from tests.conftest import FEATURE_RANGES, NUMERIC_FEATURES, FlowRun
from tests.serving.helpers import (
    Served,
    assert_error,
    csv_lines,
    expected,
    http_post,
    post,
    raw_request,
    start_server,
)

# ---------------------------------------------------------------- the model of a whole run (integration)


@pytest.fixture(scope="module")
def server(january_run: FlowRun):
    assert january_run.first.returncode == 0
    with start_server(january_run.artifacts / "ml" / "model") as served:
        yield served.url


MODEL_COLUMNS = [ID_COLUMN, *CATEGORICAL_FEATURES, *NUMERIC_FEATURES]  # what a client sends: the mart's other
# columns (the label, dates) are not the model's and are refused


def sample_rows(january_run: FlowRun, n: int = 200):
    with duckdb.connect(january_run.env["FLIGHTDELAY_WAREHOUSE"], read_only=True) as con:
        frame = con.execute(f"""
            select {", ".join(f"f.{column}" for column in MODEL_COLUMNS)}, p.delay_probability
            from marts.ml_flight_delay_features as f
            join ml.flight_delay_predictions as p using (flight_id)
            order by hash(f.flight_id) limit {n}""").df()
    return frame


@pytest.mark.integration
def test_invocations_match_batch_scoring_over_http(server: str, january_run: FlowRun):
    frame = sample_rows(january_run)
    batch = dict(zip(frame["flight_id"], frame["delay_probability"], strict=True))
    features = frame.drop(columns=["delay_probability"])

    status, body = post(server, features.to_csv(index=False), "text/csv")
    assert status == 200, body
    served = {row["flight_id"]: row["delay_probability"] for row in json.loads(body)["predictions"]}
    assert served.keys() == batch.keys()
    assert max(abs(served[k] - batch[k]) for k in batch) < 1e-6

    instances = json.loads(features.head(20).to_json(orient="records", date_format="iso"))
    status, body = post(server, json.dumps({"instances": instances}), "application/json", accept="text/csv")
    assert status == 200, body
    lines = [float(x) for x in body.split()]
    assert max(abs(p - batch[f]) for p, f in zip(lines, features.head(20)["flight_id"], strict=True)) < 1e-6


@pytest.mark.integration
def test_the_tables_reasons_add_up_and_are_the_served_ones_with_the_registered_model_id(server: str,
                                                                                      january_run: FlowRun):
    """Every prediction row carries the model id that evaluation.json, the registry and /invocations give, and
    its reasons: base + reasons + the rest = the model's margin, and the same reasons /invocations explains."""
    reasons = ", ".join(f"p.reason_{rank}_feature, p.reason_{rank}_log_odds" for rank in (1, 2, 3))
    with duckdb.connect(january_run.env["FLIGHTDELAY_WAREHOUSE"], read_only=True) as con:
        table = con.execute(f"""
            select {", ".join(f"f.{column}" for column in MODEL_COLUMNS)}, p.model_id, p.delay_probability,
                   p.base_log_odds, {reasons}, p.other_features_log_odds
            from marts.ml_flight_delay_features as f
            join ml.flight_delay_predictions as p using (flight_id)
            order by hash(f.flight_id) limit 100""").df()
        ids = con.execute("select distinct model_id from ml.flight_delay_predictions").fetchall()
        mart_ids = con.execute("select distinct model_id from marts.fct_flight_delay_predictions").fetchall()
        registry = con.execute("select model_id, test_roc_auc, train_first_date, prediction_horizon_minutes "
                               "from ml.model_registry").fetchall()
    evaluation = json.loads((january_run.artifacts / "ml" / "evaluation.json").read_text())
    model_id = evaluation["model_id"]
    assert ids == mart_ids == [(model_id,)]
    assert [(row[0], row[1], str(row[2]), row[3]) for row in registry] == [
        (model_id, evaluation["binary_classification_metrics"]["auc"]["value"],
         evaluation["dataset"]["train"]["first_date"], 120)]
    # the horizon the flow trained at, in the evaluation and on the card it rewrites beside it
    assert evaluation["training_data"]["prediction_horizon_minutes"] == 120
    card = (january_run.artifacts / "ml" / "model_card.md").read_text()
    assert "prediction horizon, 120 minutes" in card and evaluation["training_data"]["data_id"] in card

    booster, spec = load_model(january_run.artifacts / "ml" / "model")
    margin = booster.predict(xgb.DMatrix(spec.matrix(table), enable_categorical=True), output_margin=True)
    shown = table["base_log_odds"] + table["other_features_log_odds"] + sum(
        table[f"reason_{rank}_log_odds"] for rank in (1, 2, 3))
    np.testing.assert_allclose(shown, margin, atol=1e-5)
    np.testing.assert_allclose(1 / (1 + np.exp(-shown)), table["delay_probability"], atol=1e-6)

    instances = json.loads(table[MODEL_COLUMNS].to_json(orient="records"))
    status, body = post(server, json.dumps({"instances": instances, "reasons": 3}), "application/json")
    assert status == 200, body
    for answer, row in zip(json.loads(body)["predictions"], table.itertuples(index=False), strict=True):
        assert answer["flight_id"] == row.flight_id and answer["model_id"] == model_id
        served = answer["reasons"]
        assert [r["feature"] for r in served["top"]] == [row.reason_1_feature, row.reason_2_feature,
                                                         row.reason_3_feature]
        assert [r["log_odds"] for r in served["top"]] == pytest.approx(
            [row.reason_1_log_odds, row.reason_2_log_odds, row.reason_3_log_odds], abs=1e-6)
        assert served["base_log_odds"] == pytest.approx(row.base_log_odds, abs=1e-6)


@pytest.mark.integration
def test_malformed_input_gets_a_4xx_that_says_why(server: str, january_run: FlowRun):
    frame = sample_rows(january_run, 3).drop(columns=["delay_probability"])
    status, body = post(server, frame.drop(columns=["temp_f"]).to_csv(index=False), "text/csv")
    assert status == 400 and "missing feature columns ['temp_f']" in json.loads(body)["error"]
    broken = frame.astype(object)
    broken.loc[broken.index[1], "wind_speed_mph"] = "windy"
    status, body = post(server, broken.to_csv(index=False), "text/csv")
    assert status == 400 and json.loads(body)["error"] == "row 2, field wind_speed_mph: 'windy' is not a number"
    status, body = post(server, "{not json", "application/json")
    assert status == 400 and json.loads(body)["error"].startswith("body is not valid JSON")
    status, body = post(server, "x", "application/x-parquet")
    assert status == 415 and "use text/csv or application/json" in json.loads(body)["error"]


@pytest.mark.integration
def test_every_flight_of_the_feature_mart_is_inside_the_plausible_ranges(january_run: FlowRun):
    # the server refuses a value outside its feature's range: no real flight may be one
    low_high = {column: FEATURE_RANGES[column] for column in NUMERIC_FEATURES}
    with duckdb.connect(january_run.env["FLIGHTDELAY_WAREHOUSE"], read_only=True) as con:
        outside = {column: con.execute(f"select count(*) from marts.ml_flight_delay_features where {column} "
                                       "not between ? and ?", [low, high]).fetchone()[0]
                   for column, (low, high) in low_high.items()}
        present = con.execute("select count(*) from marts.ml_flight_delay_features").fetchone()[0]
    assert present > 1000
    assert {column: n for column, n in outside.items() if n} == {}


# ---------------------------------------------------------------- a small real model (fast)


def test_valid_csv_and_json_score_as_batch_scoring_does(small_server: Served, small_model: Path, frame):
    want = expected(small_model, frame)
    status, body = post(small_server.url, frame.to_csv(index=False), "text/csv")
    assert status == 200, body
    got = json.loads(body)["predictions"]
    assert [row["flight_id"] for row in got] == frame[ID_COLUMN].tolist()
    assert [row["delay_probability"] for row in got] == want
    instances = json.loads(frame.to_json(orient="records"))
    status, body = post(small_server.url, json.dumps({"instances": instances}), "application/json",
                        accept="text/csv")
    assert status == 200, body
    assert [float(line) for line in body.split()] == want
    # no flight_id column, CRLF line ends, a byte order mark, spaces around a number: all unambiguous
    spaced = frame.drop(columns=[ID_COLUMN]).astype(object)
    spaced["temp_f"] = [f" {v}\t" if pd.notna(v) else "" for v in frame["temp_f"]]
    text = "\ufeff" + spaced.to_csv(index=False, lineterminator="\r\n")
    status, body = post(small_server.url, text, "text/csv; charset=utf-8")
    assert status == 200, body
    assert [row["delay_probability"] for row in json.loads(body)["predictions"]] == want


def test_a_trailing_comma_or_a_short_row_is_a_400_not_a_shifted_score(small_server: Served, frame):
    lines = csv_lines(frame)
    fields = len(frame.columns)
    shifted = "\n".join([lines[0], lines[1], lines[2] + ",", *lines[3:]])
    reply = raw_request(small_server.port, http_post("/invocations", shifted.encode()))
    assert_error(reply, 400, f"row 2 (line 3): expected {fields} fields like the header, found {fields + 1}")
    # every row one longer than the header: pandas took the first column as the index and scored the rest
    status, body = post(small_server.url, "\n".join([lines[0]] + [line + "," for line in lines[1:]]), "text/csv")
    assert status == 400 and "row 1 (line 2)" in json.loads(body)["error"]
    short = "\n".join([lines[0], lines[1].rsplit(",", 2)[0], *lines[2:]])
    status, body = post(small_server.url, short, "text/csv")
    assert status == 400
    assert json.loads(body)["error"] == (f"row 1 (line 2): expected {fields} fields like the header, found "
                                         f"{fields - 2} (nothing for {', '.join(frame.columns[-2:])})")
    status, body = post(small_server.url, "\n".join([lines[0] + ",", *lines[1:]]), "text/csv")
    assert status == 400 and "has no name (a trailing comma?)" in json.loads(body)["error"]
    status, body = post(small_server.url, "\n".join([lines[0], lines[1], "", lines[2]]), "text/csv")
    assert status == 400 and json.loads(body)["error"].startswith("row 2 (line 3) is blank")


@pytest.mark.parametrize(("value", "why"), [
    ("abc", "'abc' is not a number"),
    ("inf", "'inf' is not a number"),
    ("-Infinity", "'-Infinity' is not a number"),
    ("nan", "'nan' is not a number"),
    ("0x10", "'0x10' is not a number"),
    ("1_000", "'1_000' is not a number"),
    ("1e39", "'1e39' is outside the float32 range"),
    ("-3.5e38", "'-3.5e38' is outside the float32 range"),
    (str(10**400), "is outside the float32 range"),
    ("1e400", "'1e400' is outside the float32 range"),
])
def test_csv_numbers_must_be_finite_decimals_within_float32(small_server: Served, frame, value: str, why: str):
    broken = frame.astype(object)
    broken.loc[broken.index[2], "scheduled_dep_hour_local"] = value
    status, body = post(small_server.url, broken.to_csv(index=False), "text/csv")
    assert status == 400, body
    assert json.loads(body)["error"].startswith("row 3, field scheduled_dep_hour_local: ")
    assert why in json.loads(body)["error"]


def test_malformed_csv_and_encoding(small_server: Served, frame):
    lines = csv_lines(frame)
    unterminated = "\n".join([lines[0], lines[1], '"' + lines[2]])
    status, body = post(small_server.url, unterminated, "text/csv")
    assert status == 400 and "row 2 (line 3): malformed CSV: unexpected end of data" in json.loads(body)["error"]
    reply = raw_request(small_server.port, http_post("/invocations", lines[0].encode() + b"\n\xff\xfe,1\n"))
    assert_error(reply, 400, "body is not valid UTF-8: byte 0xff at offset")
    status, body = post(small_server.url, "\n".join([lines[0], lines[0]]), "text/csv")
    assert status == 400 and "row 1, field" in json.loads(body)["error"]
    status, body = post(small_server.url, lines[0] + "\n", "text/csv")
    assert status == 400 and json.loads(body)["error"].startswith("no rows to score")
    status, body = post(small_server.url, "", "text/csv")
    assert status == 400 and json.loads(body)["error"].startswith("empty CSV body")
    status, body = post(small_server.url, "temp_f,temp_f\n1,2\n", "text/csv")
    assert status == 400 and "appears twice" in json.loads(body)["error"]
    status, body = post(small_server.url, frame.to_csv(index=False), "text/csv; charset=latin-1")
    assert status == 415 and "send UTF-8" in json.loads(body)["error"]


@pytest.mark.parametrize(("mutate", "fragment"), [
    (lambda p: p["instances"][1].update(temp_f="1e39") or p, "row 2, field temp_f: '1e39' is outside the float32"),
    (lambda p: json.dumps(p).replace('"temp_f": 1.0', '"temp_f": 1e39', 1),
     "row 1, field temp_f: 1E+39 is outside the float32 range"),
    (lambda p: json.dumps(p).replace('"temp_f": 1.0', f'"temp_f": {10**400}', 1), "row 1, field temp_f: 1000"),
    (lambda p: json.dumps(p).replace('"temp_f": 1.0', '"temp_f": NaN', 1), "NaN is not a JSON number"),
    (lambda p: json.dumps(p).replace('"temp_f": 1.0', '"temp_f": Infinity', 1), "Infinity is not a JSON number"),
    (lambda p: p["instances"][2].update(temp_f=True) or p, "row 3, field temp_f: expected a number or null, found a"),
    (lambda p: p["instances"][0].update(temp_f=[1, 2]) or p, "row 1, field temp_f: expected a string, a number or"),
    (lambda p: p["instances"][0].update(carrier_code={"a": 1}) or p, "row 1, field carrier_code: expected a"),
    (lambda p: p["instances"][3].update(carrier_code=7) or p, "row 4, field carrier_code: expected a string or null"),
    (lambda p: p["instances"][1].pop("temp_f") and p, "row 2: fields differ from row 1 (missing ['temp_f']"),
    (lambda p: p["instances"][1].update(extra=1) or p, "row 2: fields differ from row 1 (missing [], extra"),
    (lambda p: {"instances": [*p["instances"][:2], 5]}, "row 3: expected an object"),
    (lambda p: {"instances": {"temp_f": 1}}, "found an object"),
    (lambda p: {"rows": p["instances"]}, 'JSON object has no "instances" key'),
    (lambda p: [], "no instances to score"),
    (lambda p: '"x"', "found a string"),
    (lambda p: "[" * 100_000, "body is not valid JSON"),
    (lambda p: "1" * 5000, "body is not valid JSON"),
    (lambda p: p["instances"][0].update(flight_id=[1]) or p, "row 1, field flight_id: expected a string"),
    (lambda p: {"instances": [{k: v for k, v in p["instances"][0].items() if k != "temp_f"}]},
     "missing feature columns ['temp_f']"),
])
def test_json_must_have_objects_of_the_same_fields_and_typed_values(small_server: Served, frame, mutate, fragment):
    payload = {"instances": json.loads(frame.head(5).to_json(orient="records"))}
    for instance in payload["instances"]:
        instance["temp_f"] = 1.0  # something the replacements above can find
    body = mutate(payload)
    status, answer = post(small_server.url, body if isinstance(body, str) else json.dumps(body), "application/json")
    assert 400 <= status < 500, answer
    assert fragment in json.loads(answer)["error"]


def test_sagemaker_handlers_parse_strictly_and_raise_bad_request_with_a_status(small_model: Path, frame):
    model = serve.model_fn(str(small_model))
    want = expected(small_model, frame)
    for body in (frame.to_csv(index=False), frame.to_csv(index=False).encode()):
        answer, content_type = serve.output_fn(serve.predict_fn(serve.input_fn(body, "text/csv"), model), "text/csv")
        assert content_type == "text/csv" and [float(x) for x in answer.split()] == want
    # a frame handed straight to predict_fn, with pandas' NaN for missing values, scores as batch scoring does
    assert serve.predict_fn(frame, model)["delay_probability"].tolist() == want
    with pytest.raises(serve.BadRequest) as error:
        serve.input_fn(b"x", "application/x-parquet")
    assert error.value.status == 415
    lines = csv_lines(frame)
    with pytest.raises(serve.BadRequest, match=r"^row 1 \(line 2\): expected"):
        serve.input_fn("\n".join([lines[0], lines[1] + ","]), "text/csv")
    broken = frame.astype(object)
    broken.loc[broken.index[4], "distance_miles"] = np.inf
    with pytest.raises(serve.BadRequest, match=r"^row 5, field distance_miles: inf is outside the float32 range"):
        serve.predict_fn(broken, model)


def test_a_json_field_given_twice_is_refused_not_resolved_silently():
    from ml.serve import BadRequest, input_fn

    with pytest.raises(BadRequest, match="the field 'carrier_code' is given twice"):
        input_fn('{"instances": [{"carrier_code": "9E", "carrier_code": "ZZZ"}]}', "application/json")


def test_a_json_key_besides_instances_is_refused_not_ignored():
    from ml.serve import BadRequest, input_fn

    with pytest.raises(BadRequest, match=r'keys besides "instances" and "reasons": \[\'instance_count\'\]'):
        input_fn('{"instances": [{"carrier_code": "9E"}], "instance_count": 2}', "application/json")
