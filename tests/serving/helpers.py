"""What the serving tests share: a small real model fit by `ml.train` on synthetic channels in about a second
(`train_small_model`), the server started in a process of its own (`start_server`), and clients that speak HTTP
through urllib (`post`) or byte for byte over a socket (`raw_request`, `http_post`)."""

from __future__ import annotations

import contextlib
import json
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

import numpy as np
import pandas as pd
import pytest

from flightdelay.flow.feature_contract import write_feature_ranges
from ml.train import (
    ID_COLUMN,
    LABEL,
    load_model,
    parse_args,
    predict,
    run,
)
from tests.conftest import FEATURE_RANGES, NUMERIC_FEATURES, PROJECT_ROOT

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


def post_csv_and_json(url: str, frame: pd.DataFrame, row: int, field: str, csv_value: str,
                      json_value: object) -> list[tuple[int, str]]:
    """`frame` with one value changed, as CSV (the text `csv_value`) and as JSON (`json_value`)."""
    broken = frame.astype(object)
    broken.loc[broken.index[row], field] = csv_value
    instances = json.loads(frame.to_json(orient="records"))
    instances[row][field] = json_value
    return [post(url, broken.to_csv(index=False), "text/csv"),
            post(url, json.dumps({"instances": instances}), "application/json")]
