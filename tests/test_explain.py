"""Reasons and model ids on a real (small) model: contributions plus the bias are the model's margin, in the
function batch scoring uses and in the /invocations answer over HTTP; the same inputs give the same model id."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ml import serve
from ml.booster import load_model
from ml.explain import contributions, reason_columns, reasons
from ml.features import RANGES_FILE
from ml.model_files import FIT_FILE, ModelFolderError, fit_record
from ml.request_parsing import BadRequest
from ml.train import parse_args, run
from tests.serving.helpers import Served, feature_frame, post, request_frame, start_server, train_small_model


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    return train_small_model(tmp_path_factory.mktemp("explain_model"))


@pytest.fixture(scope="module")
def small_server(small_model: Path):
    with start_server(small_model) as served:
        yield served


def margins(model_dir: Path, frame: pd.DataFrame) -> np.ndarray:
    booster, spec = load_model(model_dir)
    matrix = xgb.DMatrix(spec.matrix(frame), enable_categorical=True)
    return booster.predict(matrix, output_margin=True, iteration_range=(0, booster.num_boosted_rounds()))


def test_contributions_and_bias_add_up_to_the_margin(small_model: Path):
    frame = request_frame(300, seed=11)
    booster, spec = load_model(small_model)
    values = contributions(booster, spec, frame)
    assert values.shape == (300, len(spec.columns) + 1)
    np.testing.assert_allclose(values.sum(axis=1), margins(small_model, frame), atol=1e-5)
    assert np.abs(values[:, :-1]).sum() > 0  # the model uses its features

    shown = reasons(booster, spec, frame, top=3)
    assert list(shown.columns) == reason_columns(3)
    total = shown["base_log_odds"] + shown["other_features_log_odds"] + sum(
        shown[f"reason_{rank}_log_odds"] for rank in (1, 2, 3))
    np.testing.assert_allclose(total, margins(small_model, frame), atol=1e-5)
    # largest first, by size, and no feature twice
    sizes = shown[[f"reason_{rank}_log_odds" for rank in (1, 2, 3)]].abs().to_numpy()
    assert (np.diff(sizes, axis=1) <= 1e-12).all()
    names = shown[[f"reason_{rank}_feature" for rank in (1, 2, 3)]].to_numpy()
    assert all(len(set(row)) == 3 for row in names) and set(names.ravel()) <= set(spec.columns)
    # the top reason is at least as large as any other single contribution of its row
    assert (sizes[:, 0] + 1e-9 >= np.abs(values[:, :-1]).max(axis=1)).all()


def test_the_same_inputs_give_the_same_model_id_and_other_inputs_another(small_model: Path, tmp_path: Path):
    root = small_model.parent
    record = fit_record(small_model)
    evaluation = json.loads((root / "output" / "evaluation.json").read_text())
    assert evaluation["model_id"] == record["model_id"] and len(record["model_id"]) == 16
    assert f"`{record['model_id']}`" in (root / "output" / "model_card.md").read_text()

    def fit_again(folder: str, *extra: str) -> str:
        run(parse_args(["--train", str(root / "train"), "--validation", str(root / "validation"),
                        "--test", str(root / "no-test-channel"), "--model-dir", str(tmp_path / folder),
                        "--output-data-dir", str(tmp_path / f"{folder}-output"), "--num_round", "20",
                        "--min_child_weight", "1", "--nthread", "1", *extra]))
        return fit_record(tmp_path / folder)["model_id"]

    assert fit_again("again") == record["model_id"]
    assert (tmp_path / "again" / "model.json").read_bytes() == (small_model / "model.json").read_bytes()
    assert fit_again("deeper", "--max_depth", "3") != record["model_id"]
    other_rows = tmp_path / "other-rows"
    other_rows.mkdir()
    feature_frame(800, 99).to_parquet(other_rows / "part-0.parquet")
    shutil.copy(root / "train" / RANGES_FILE, other_rows)
    assert run(parse_args(["--train", str(other_rows), "--validation", str(root / "validation"),
                           "--test", str(root / "no-test-channel"), "--model-dir", str(tmp_path / "other"),
                           "--output-data-dir", str(tmp_path / "other-output"), "--num_round", "20",
                           "--min_child_weight", "1", "--nthread", "1"]))["model_id"] != record["model_id"]


def test_a_model_folder_whose_files_do_not_match_its_fit_is_not_served(small_model: Path, tmp_path: Path):
    copy = tmp_path / "model"
    shutil.copytree(small_model, copy)
    (copy / "model.json").write_bytes((copy / "model.json").read_bytes() + b" ")  # still valid JSON, not the fit's
    with pytest.raises(ModelFolderError, match=r"served model .*model\.json is not the file the fit wrote"):
        serve.model_fn(str(copy))
    (copy / FIT_FILE).unlink()
    with pytest.raises(ModelFolderError, match=r"fit\.json is missing"):
        serve.model_fn(str(copy))


def logit(probability: float) -> float:
    return math.log(probability / (1 - probability))


def test_invocations_explain_predictions_when_asked(small_server: Served, small_model: Path):
    frame = request_frame(25, seed=5)
    instances = json.loads(frame.to_json(orient="records"))
    model_id = fit_record(small_model)["model_id"]
    expected = margins(small_model, frame)

    for body, content_type in ((json.dumps({"instances": instances, "reasons": 4}), "application/json"),
                               (frame.to_csv(index=False), "text/csv; reasons=4")):
        status, text = post(small_server.url, body, content_type)
        assert status == 200, text
        answers = json.loads(text)["predictions"]
        assert [a["flight_id"] for a in answers] == frame["flight_id"].tolist()
        for answer, margin in zip(answers, expected, strict=True):
            assert answer["model_id"] == model_id
            why = answer["reasons"]
            assert len(why["top"]) == 4
            total = why["base_log_odds"] + sum(r["log_odds"] for r in why["top"]) + why["other_features_log_odds"]
            assert total == pytest.approx(margin, abs=1e-5)
            assert total == pytest.approx(logit(answer["delay_probability"]), abs=1e-4)

    # not asked: no reasons, the id all the same
    status, text = post(small_server.url, json.dumps({"instances": instances}), "application/json")
    assert status == 200 and all(set(a) == {"flight_id", "delay_probability", "model_id"}
                                 for a in json.loads(text)["predictions"])
    # batch transform lines: flat, the table's columns
    status, text = post(small_server.url, frame.to_csv(index=False), "text/csv; reasons=3",
                        accept="application/jsonlines")
    assert status == 200, text
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 25 and set(lines[0]) == {"flight_id", "delay_probability", "model_id", *reason_columns(3)}


@pytest.mark.parametrize(("body", "content_type", "accept", "fragment"), [
    ('{"instances": [ROW], "reasons": 0}', "application/json", "application/json",
     'field "reasons": expected a whole number of reasons from 1 to 100, found 0'),
    ('{"instances": [ROW], "reasons": "3"}', "application/json", "application/json",
     'field "reasons": expected a whole number of reasons from 1 to 100, found \'3\''),
    ('{"instances": [ROW], "reasons": true}', "application/json", "application/json", 'field "reasons"'),
    ('{"instances": [ROW], "reasons": 2.5}', "application/json", "application/json", 'field "reasons"'),
    ('{"instances": [ROW], "reasons": 99}', "application/json", "application/json",
     "reasons: the model has"),
    ('{"instances": [ROW], "reasons": 2}', "application/json; reasons=3", "application/json",
     "the Content-Type asks for 3, the body for 2"),
    ("CSV", "text/csv; reasons=-1", "application/json", "Content-Type parameter reasons"),
    ("CSV", "text/csv; reasons=three", "application/json", "Content-Type parameter reasons"),
    ("CSV", "text/csv; reasons=3", "text/csv", "Accept: text/csv has room for the probability only"),
])
def test_a_malformed_request_for_reasons_is_a_400_naming_it(small_server: Served, body: str, content_type: str,
                                                            accept: str, fragment: str):
    frame = request_frame(1, seed=8)
    row = json.dumps(json.loads(frame.to_json(orient="records"))[0])
    payload = frame.to_csv(index=False) if body == "CSV" else body.replace("ROW", row)
    status, text = post(small_server.url, payload, content_type, accept=accept)
    assert status == 400, text
    assert fragment in json.loads(text)["error"]


def test_reasons_are_refused_in_process_too():
    with pytest.raises(BadRequest, match="Content-Type parameter reasons"):
        serve.input_fn(b"a\n1\n", "text/csv; reasons=1000")


def test_a_folder_is_checked_before_anything_in_it_is_read(small_model: Path, tmp_path: Path):
    """A FIFO or a device where a model file should be would hang or exhaust the server if it were read first;
    a record whose values are not of a fit's types is refused as a whole."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "fifo"
    shutil.copytree(small_model, fifo)
    (fifo / "model.json").unlink()
    os.mkfifo(fifo / "model.json")
    with pytest.raises(ModelFolderError, match=r"model\.json is missing \(or not a file\)"):
        serve.model_fn(str(fifo))
    for model_id in ([1, 2], {"a": 1}, None, 7, "", "x" * 16, "ABCDEF0123456789"):
        odd = tmp_path / f"odd-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(small_model, odd)
        record = json.loads((odd / FIT_FILE).read_text())
        (odd / FIT_FILE).write_text(json.dumps({**record, "model_id": model_id}))
        with pytest.raises(ModelFolderError, match="is not the record of a fit"):
            fit_record(odd)
    served = subprocess.run([sys.executable, "-m", "ml.serve", "--model-dir", str(fifo), "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert served.returncode == 2 and served.stderr.startswith("ERROR: served model"), served.stderr
    assert "Traceback" not in served.stderr


def test_every_answer_names_its_model_and_ambiguous_or_oversized_asks_are_refused(small_server: Served,
                                                                                   small_model: Path):
    import http.client
    import urllib.request

    frame = request_frame(3, seed=2)
    request = urllib.request.Request(f"{small_server.url}/invocations", data=frame.to_csv(index=False).encode(),
                                     headers={"Content-Type": "text/csv", "Accept": "text/csv"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["X-Model-Id"] == fit_record(small_model)["model_id"]
        assert len(response.read().decode().split()) == 3

    for content_type, fragment in (("text/csv; reasons=3; reasons=4", "reasons is given 2 times"),
                                   ("text/csv; reasons=4; reasons=abc", "reasons is given 2 times"),
                                   ('text/csv; reasons="2', "Content-Type parameter reasons")):
        status, text = post(small_server.url, frame.to_csv(index=False), content_type)
        assert status == 400 and fragment in json.loads(text)["error"], text

    connection = http.client.HTTPConnection("127.0.0.1", small_server.port, timeout=30)
    body = frame.to_csv(index=False).encode()
    connection.putrequest("POST", "/invocations")
    for value in ("text/csv; reasons=2", "text/csv; reasons=5"):
        connection.putheader("Content-Type", value)
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    answer = connection.getresponse()
    assert answer.status == 400 and "Content-Type sent 2 times" in json.loads(answer.read())["error"]
    connection.close()

    many = request_frame(2000, seed=4)  # 2,000 rows x 57 reasons: over the 100,000 one answer may hold
    status, text = post(small_server.url, json.dumps({"instances": json.loads(many.to_json(orient="records")),
                                                      "reasons": 57}), "application/json")
    assert status == 400 and "over 100,000 reasons in one request" in json.loads(text)["error"], text[:300]


def test_a_value_a_sentence_cannot_show_is_said_plainly():
    from decimal import Decimal

    from flightdelay.report.explained_flights import Label, in_words

    late = Label("the previous flight is {value:.0f} minutes late", "no previous flight",
                 "the previous flight is {value:.0f} minutes early")
    assert in_words(late, "previous_leg", Decimal("-5")) == "the previous flight is 5 minutes early"
    assert in_words(late, "previous_leg", 40) == "the previous flight is 40 minutes late"
    assert in_words(late, "previous_leg", float("nan")) == "no previous flight"
    assert in_words(late, "previous_leg", "soon") == "previous_leg = soon"
    assert in_words(late, "previous_leg", 10**400) == f"previous_leg = {10**400}"
    assert in_words(None, "new_feature", 3.5) == "new_feature = 3.5"


def test_the_report_explains_the_highest_the_median_and_the_lowest_of_an_even_number_of_flights(tmp_path: Path):
    """(n + 1) / 2 is a fraction on DuckDB for an even n: the median flight must not go missing."""
    from datetime import date

    import duckdb

    from flightdelay.report.explained_flights import explained_flights
    from flightdelay.settings import Settings
    from tests.conftest import PROJECT_ROOT

    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts")
        con.execute("""create table marts.fct_flight_delay_predictions as
            select 'f' || i as flight_id, 'AA' as carrier_code, i as flight_number, 'JFK' as origin_airport_code,
                   'LAX' as dest_airport_code, timestamp '2013-12-01 08:00' as scheduled_departure_at_local,
                   i / 10.0 as delay_15_probability, i % 2 = 0 as is_dep_delayed_15, 'test' as split_name,
                   'previous_leg_late_so_far_minutes' as reason_1_feature, 0.5 as reason_1_log_odds,
                   null as reason_2_feature, null as reason_2_log_odds, null as reason_3_feature,
                   null as reason_3_log_odds
            from range(1, 5) as t(i)""")
        con.execute("""create table marts.ml_flight_delay_features as
            select 'f' || i as flight_id, i * 10 as previous_leg_late_so_far_minutes from range(1, 5) as t(i)""")
    settings = Settings(project_root=PROJECT_ROOT, raw_dir=tmp_path, lake_dir=tmp_path, warehouse_path=warehouse,
                        artifacts_dir=tmp_path, train_start=date(2013, 1, 1), test_start=date(2013, 11, 1),
                        test_end=date(2013, 12, 31))
    flights = explained_flights(settings)
    assert [f.probability for f in flights] == [0.4, 0.3, 0.1]  # the highest, the 2nd of 4 from the top, the lowest
    assert flights[0].reasons == [("the aircraft's previous flight is 40 minutes late", 0.5)]
