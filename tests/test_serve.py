"""The inference server under the SageMaker container contract, over real HTTP: /ping, /invocations with
CSV and JSON, the same probabilities as batch scoring, a 4xx JSON error naming the row and field for
malformed input, never a 200 with a shifted or padded row, an impossible value, a category the model never saw
or a column it does not know, slow clients dropped, a bounded worker pool.

The integration tests serve the model of a whole `flightdelay run`; the others serve a small model that
`ml.train` fits in about a second on synthetic channels (`train_small_model`), which tests/test_serve_fuzz.py
uses too."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from flightdelay.flow.feature_contract import write_feature_ranges
from ml import serve
from ml.train import (
    CATEGORICAL_FEATURES,
    ID_COLUMN,
    LABEL,
    load_model,
    parse_args,
    predict,
    run,
)
from tests.conftest import FEATURE_RANGES, NUMERIC_FEATURES, PROJECT_ROOT, FlowRun

# ---------------------------------------------------------------- helpers shared with test_serve_fuzz.py

CARRIERS, AIRPORTS = ["AA", "DL", "UA", "WN"], ["ATL", "DEN", "JFK", "ORD", "SFO"]


def feature_frame(n: int, seed: int) -> pd.DataFrame:
    """Flights with every model column, each value inside its feature's plausible range (the server refuses
    others); the label depends on a few features so that the model learns something; about 5% of the numeric
    values missing, as in the mart."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        ID_COLUMN: [f"F{seed}-{i}" for i in range(n)],
        "flight_date": pd.Timestamp("2013-01-01") + pd.to_timedelta(rng.integers(0, 28, n), "D"),
        "carrier_code": rng.choice(CARRIERS, n),
        "origin_airport_code": rng.choice(AIRPORTS, n),
        "dest_airport_code": rng.choice(AIRPORTS, n),
    })
    for column in NUMERIC_FEATURES:
        low, high = FEATURE_RANGES[column]
        values = (rng.normal(20, 10, n).clip(low, high) if column == "temp_f" else rng.uniform(low, high, n)).round(2)
        values[rng.random(n) < 0.05] = np.nan
        frame[column] = values
    score = (np.nan_to_num(frame["temp_f"].to_numpy()) - 20) / 8 + (frame["carrier_code"] == "WN") * 1.5
    frame[LABEL] = rng.random(n) < 1 / (1 + np.exp(-score))  # a boolean, as in the feature mart
    return frame


def train_small_model(root: Path) -> Path:
    """A real model from the real training code (`ml.train.run`), on 1,000 synthetic flights."""
    for name, n, seed in [("train", 800, 1), ("validation", 200, 2)]:
        (root / name).mkdir(parents=True)
        feature_frame(n, seed).to_parquet(root / name / "part-0.parquet")
    write_feature_ranges(PROJECT_ROOT, root / "train")  # as the flow exports the channel
    run(parse_args(["--train", str(root / "train"), "--validation", str(root / "validation"),
                    "--test", str(root / "no-test-channel"), "--model-dir", str(root / "model"),
                    "--output-data-dir", str(root / "output"), "--num_round", "20", "--min_child_weight", "1",
                    "--nthread", "1"]))
    return root / "model"


def request_frame(n: int, seed: int) -> pd.DataFrame:
    """What a client sends: the id and the features, no label."""
    return feature_frame(n, seed).drop(columns=[LABEL, "flight_date"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    url: str
    port: int
    process: subprocess.Popen
    log: Path
    captured: str | None = None  # the log, kept when the server stops (its folder goes)

    def output(self) -> str:
        return self.captured if self.captured is not None else self.log.read_text(errors="replace")


@contextlib.contextmanager
def start_server(model_dir: Path, *options: str) -> Iterator[Served]:
    """`python -m ml.serve` on 127.0.0.1 and a free port, until /ping answers; stopped on exit."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "serve.log"
        with log.open("w") as sink:
            process = subprocess.Popen([sys.executable, "-m", "ml.serve", "--model-dir", str(model_dir),
                                        "--port", str(port), *options],
                                       cwd=PROJECT_ROOT, stdout=sink, stderr=subprocess.STDOUT, text=True)
        served = Served(f"http://127.0.0.1:{port}", port, process, log)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"{served.url}/ping", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    if process.poll() is not None:
                        pytest.fail(f"server exited with {process.returncode}: {served.output()}")
                    time.sleep(0.2)
            else:
                pytest.fail(f"server did not answer /ping: {served.output()}")
            yield served
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            served.captured = log.read_text(errors="replace")


def post(url: str, body: str | bytes, content_type: str, accept: str = "application/json") -> tuple[int, str]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(f"{url}/invocations", data=data, method="POST",
                                     headers={"Content-Type": content_type, "Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@dataclass
class Reply:
    status: int | None  # None: no status line came back (the connection closed or timed out first)
    headers: dict[str, str]
    body: bytes

    def error(self) -> str:
        return json.loads(self.body)["error"]


def parse_reply(data: bytes) -> Reply:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return Reply(None, {}, data)
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    return Reply(int(parts[1]), {k.strip().lower(): v.strip() for k, v in headers.items()}, body)


def raw_request(port: int, data: bytes, *, half_close: bool = True, timeout: float = 10.0) -> Reply:
    """`data` as sent, over a plain socket; the whole reply, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed before taking all of it; read what it said
            pass
        return read_reply(sock)


def read_reply(sock: socket.socket) -> Reply:
    chunks = []
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return parse_reply(b"".join(chunks))


def http_post(path: str, body: bytes, content_type: str | None = "text/csv", extra: str = "",
              length: int | str | None = None) -> bytes:
    """A raw POST; `length` None: the body's true length; '' leaves the header out."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    length = len(body) if length is None else length
    if length != "":
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode() + body  # UTF-8: fuzzed headers too


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


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    return train_small_model(tmp_path_factory.mktemp("small_model"))


@pytest.fixture(scope="module")
def small_server(small_model: Path) -> Iterator[Served]:
    with start_server(small_model, "--timeout", "1.5", "--workers", "4") as served:
        yield served
    assert "Traceback" not in served.output()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return request_frame(12, seed=3)


def expected(model_dir: Path, frame: pd.DataFrame) -> list[float]:
    booster, spec = load_model(model_dir)
    return predict(booster, spec, frame).astype("float64").tolist()


def csv_lines(frame: pd.DataFrame) -> list[str]:
    return frame.to_csv(index=False).splitlines()


def assert_error(reply: Reply, status: int, *fragments: str) -> str:
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers["content-type"] == "application/json"
    message = reply.error()
    for fragment in fragments:
        assert fragment in message, message
    return message


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


def test_http_framing_errors_are_4xx_json(small_server: Served, frame):
    port, body = small_server.port, frame.to_csv(index=False).encode()
    assert_error(raw_request(port, http_post("/invocations", body, length=-1)), 400,
                 "Content-Length '-1' is not a byte count")
    assert_error(raw_request(port, http_post("/invocations", body, length="12abc")), 400, "is not a byte count")
    assert_error(raw_request(port, http_post("/invocations", body, length="")), 411, "no Content-Length header")
    assert_error(raw_request(port, http_post("/invocations", body, length=serve.MAX_BODY_BYTES + 1)), 413,
                 f"exceeds the limit of {serve.MAX_BODY_BYTES}")
    assert_error(raw_request(port, http_post("/invocations", body, length="9" * 40)), 413)
    assert_error(raw_request(port, http_post("/invocations", b"5\r\nabcde\r\n0\r\n\r\n", length="",
                                             extra="Transfer-Encoding: chunked\r\n")), 411, "not supported")
    assert_error(raw_request(port, http_post("/invocations", body, extra="Transfer-Encoding: chunked\r\n")), 400,
                 "both Transfer-Encoding and Content-Length")
    assert_error(raw_request(port, http_post("/invocations", body, extra=f"Content-Length: {len(body)}\r\n")), 400,
                 "sent 2 times")
    assert_error(raw_request(port, http_post("/invocations", body[:100], length=len(body))), 400,
                 f"body ended after 100 of the {len(body)} bytes")
    assert_error(raw_request(port, http_post("/invocations", body, content_type=None)), 415, "no Content-Type")
    assert_error(raw_request(port, http_post("/invocations", body, content_type="text/plain")), 415)
    assert_error(raw_request(port, b"GET /nowhere HTTP/1.1\r\n\r\n"), 404, "no route '/nowhere'")
    # the target as sent: the standard library would read //invocations as /invocations and answer 200
    assert_error(raw_request(port, http_post("//invocations", body)), 404, "no route '//invocations'")
    assert_error(raw_request(port, b"GET //ping HTTP/1.1\r\n\r\n"), 404, "no route '//ping'")
    reply = raw_request(port, b"GET /invocations HTTP/1.1\r\n\r\n")
    assert_error(reply, 405, "'GET' is not allowed on /invocations; use POST")
    assert reply.headers["allow"] == "POST"
    assert_error(raw_request(port, http_post("/ping", b"")), 405)
    assert_error(raw_request(port, b"GET /ping\r\n\r\n"), 400, "is not 'METHOD /path HTTP/1.1'")
    assert_error(raw_request(port, b"GET /ping HTTP/2.0\r\n\r\n"), 400)
    assert_error(raw_request(port, b"\r\n"), 400)
    assert_error(raw_request(port, b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n"), 414)
    assert_error(raw_request(port, b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"), 431)
    assert raw_request(port, b"GET /ping HTTP/1.1\r\n\r\n").status == 200


def test_a_slow_client_is_dropped_with_a_408_within_the_timeout(small_server: Served):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", small_server.port), timeout=10) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nContent-Type: text/csv\r\n")
        reply = read_reply(sock)  # the header block never ends
    assert_error(reply, 408, "not received within 1.5 s")
    assert time.monotonic() - started < 5
    # a byte every 0.3 s never lets one recv time out; the request deadline still ends it
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", small_server.port), timeout=10) as sock:
        for byte in b"POST /invocations HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + b"x" * 100:
            sock.sendall(bytes([byte]))
            if select.select([sock], [], [], 0.3)[0] or time.monotonic() - started > 8:
                break  # the server has answered (or never will): stop sending
        reply = read_reply(sock)
    assert_error(reply, 408)
    assert time.monotonic() - started < 5
    assert raw_request(small_server.port, b"GET /ping HTTP/1.1\r\n\r\n").status == 200


def test_a_full_worker_pool_answers_503_after_a_bounded_wait(small_model: Path):
    with start_server(small_model, "--timeout", "3", "--workers", "2", "--queue-wait", "0.5") as served:
        stalls = [socket.create_connection(("127.0.0.1", served.port), timeout=10) for _ in range(2)]
        try:
            for sock in stalls:
                sock.sendall(b"POST /invocations HTTP/1.1\r\n")  # holds a worker until the 3 s timeout
            time.sleep(0.3)
            started = time.monotonic()
            reply = raw_request(served.port, b"GET /ping HTTP/1.1\r\n\r\n")
            waited = time.monotonic() - started
            assert_error(reply, 503, "server busy: no worker free within 0.5 s")
            assert 0.4 < waited < 2.5
            assert [read_reply(sock).status for sock in stalls] == [408, 408]
        finally:
            for sock in stalls:
                sock.close()
        assert raw_request(served.port, b"GET /ping HTTP/1.1\r\n\r\n").status == 200
    assert "Traceback" not in served.output()


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


# ---------------------------------------------------------------- hostile but well-formed values (issue 14)


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
    with pytest.raises(ValueError, match=r"no plausible range for the numeric features \['new_feature'\]"):
        serve.model_fn(str(copy))


def post_csv_and_json(url: str, frame: pd.DataFrame, row: int, field: str, csv_value: str,
                      json_value: object) -> list[tuple[int, str]]:
    """`frame` with one value changed, as CSV (the text `csv_value`) and as JSON (`json_value`)."""
    broken = frame.astype(object)
    broken.loc[broken.index[row], field] = csv_value
    instances = json.loads(frame.to_json(orient="records"))
    instances[row][field] = json_value
    return [post(url, broken.to_csv(index=False), "text/csv"),
            post(url, json.dumps({"instances": instances}), "application/json")]


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
