"""The inference server under the SageMaker container contract, over real HTTP: /ping, /invocations with
CSV and JSON, the same probabilities as batch scoring, 4xx with a clear message for malformed input."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import duckdb
import pytest

from tests.conftest import PROJECT_ROOT, FlowRun

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(january_run: FlowRun):
    assert january_run.first.returncode == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "ml.serve", "--model-dir",
                                str(january_run.artifacts / "ml" / "model"), "--port", str(port)],
                               cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"server did not answer /ping: {process.stdout.read()}")
    yield url
    process.terminate()
    process.wait(timeout=10)


def post(url: str, body: str, content_type: str, accept: str = "application/json") -> tuple[int, str]:
    request = urllib.request.Request(f"{url}/invocations", data=body.encode(), method="POST",
                                     headers={"Content-Type": content_type, "Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def sample_rows(january_run: FlowRun, n: int = 200):
    with duckdb.connect(january_run.env["FLIGHTDELAY_WAREHOUSE"], read_only=True) as con:
        frame = con.execute(f"""
            select f.*, p.delay_probability
            from marts.ml_flight_delay_features as f
            join ml.flight_delay_predictions as p using (flight_id)
            order by hash(f.flight_id) limit {n}""").df()
    return frame


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


def test_malformed_input_gets_a_4xx_that_says_why(server: str, january_run: FlowRun):
    frame = sample_rows(january_run, 3).drop(columns=["delay_probability"])
    status, body = post(server, frame.drop(columns=["temp_f"]).to_csv(index=False), "text/csv")
    assert status == 400 and "missing feature columns ['temp_f']" in json.loads(body)["error"]
    broken = frame.astype(object)
    broken.loc[broken.index[1], "wind_speed_mph"] = "windy"
    status, body = post(server, broken.to_csv(index=False), "text/csv")
    assert status == 400 and json.loads(body)["error"] == "row 2, column wind_speed_mph: 'windy' is not a number"
    status, body = post(server, "{not json", "application/json")
    assert status == 400 and json.loads(body)["error"].startswith("body is not valid JSON")
    status, body = post(server, "x", "application/x-parquet")
    assert status == 415 and "use text/csv or application/json" in json.loads(body)["error"]
