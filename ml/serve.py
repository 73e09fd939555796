"""Inference for the delay model under the SageMaker container contract.

Two ways in, one code path (`predict` from ml/train.py, as batch scoring uses):
- the SageMaker XGBoost framework container imports this module's `model_fn`, `input_fn`, `predict_fn`
  and `output_fn` when it serves the model (script mode);
- `python -m ml.serve --model-dir DIR --port 8080` runs the same contract locally over HTTP:
  `GET /ping` (200 once the model is loaded) and `POST /invocations` with
  `text/csv` (a header line naming the feature columns, then one row per flight) or
  `application/json` (`{"instances": [{"carrier_code": "UA", ...}, ...]}` or a bare list of objects).
  The answer is JSON `{"predictions": [{"flight_id": ..., "delay_probability": ...}, ...]}` or, with
  `Accept: text/csv`, one probability per line. Malformed input gets a 4xx with a message naming what is
  wrong (missing columns, the row and column of a value that is not a number, an unknown content type).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd

try:  # package import locally; a file next to train.py inside the SageMaker container
    from ml.train import ID_COLUMN, FeatureSpec, load_model, predict
except ImportError:  # pragma: no cover
    from train import ID_COLUMN, FeatureSpec, load_model, predict

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's real-time payload limit


class BadRequest(ValueError):
    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------- SageMaker inference handlers


def model_fn(model_dir: str):
    return load_model(model_dir)


def input_fn(body: bytes | str, content_type: str) -> pd.DataFrame:
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "text/csv":
        if not text.strip():
            raise BadRequest("empty CSV body: send a header line with the feature columns, then one row per flight")
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        return frame.replace({"": None})
    if kind == "application/json":
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as error:
            raise BadRequest(f"body is not valid JSON: {error}") from error
        instances = payload.get("instances") if isinstance(payload, dict) else payload
        if not isinstance(instances, list) or not all(isinstance(row, dict) for row in instances):
            raise BadRequest('JSON must be {"instances": [{column: value, ...}, ...]} or a list of such objects')
        if not instances:
            raise BadRequest("no instances to score")
        return pd.DataFrame(instances)
    raise BadRequest(f"content type {content_type!r} is not supported; use text/csv or application/json",
                     HTTPStatus.UNSUPPORTED_MEDIA_TYPE)


def validate(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    missing = [column for column in spec.columns if column not in frame.columns]
    if missing:
        raise BadRequest(f"missing feature columns {missing}; got {list(frame.columns)}")
    for column in spec.numeric:
        values = frame[column]
        parsed = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & parsed.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise BadRequest(f"row {row + 1}, column {column}: {values.iloc[row]!r} is not a number")
    return frame


def predict_fn(frame: pd.DataFrame, model) -> pd.DataFrame:
    booster, spec = model
    validate(frame, spec)
    ids = frame[ID_COLUMN] if ID_COLUMN in frame.columns else pd.Series(range(len(frame)))
    return pd.DataFrame({"flight_id": ids.astype(str),
                         "delay_probability": predict(booster, spec, frame).astype("float64")})


def output_fn(predictions: pd.DataFrame, accept: str) -> tuple[str, str]:
    if (accept or "").split(";")[0].strip().lower() == "text/csv":
        return "\n".join(repr(float(p)) for p in predictions["delay_probability"]) + "\n", "text/csv"
    rows = [{"flight_id": f, "delay_probability": float(p)}
            for f, p in zip(predictions["flight_id"], predictions["delay_probability"], strict=True)]
    return json.dumps({"predictions": rows}), "application/json"


# ---------------------------------------------------------------- local HTTP server


def make_handler(model) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: str, content_type: str = "application/json") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/ping":
                self._send(HTTPStatus.OK, "{}")
            else:
                self._send(HTTPStatus.NOT_FOUND, json.dumps({"error": f"no route {self.path}; use /ping"}))

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/invocations":
                self._send(HTTPStatus.NOT_FOUND, json.dumps({"error": f"no route {self.path}; use /invocations"}))
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           json.dumps({"error": f"body of {length} bytes exceeds {MAX_BODY_BYTES}"}))
                return
            try:
                frame = input_fn(self.rfile.read(length), self.headers.get("Content-Type", ""))
                body, content_type = output_fn(predict_fn(frame, model), self.headers.get("Accept", ""))
            except BadRequest as error:
                self._send(error.status, json.dumps({"error": str(error)}))
                return
            self._send(HTTPStatus.OK, body, content_type)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet; errors go in the body
            pass

    return Handler


def serve(model_dir: str, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), make_handler(model_fn(model_dir)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the delay model under the SageMaker container contract.")
    parser.add_argument("--model-dir", default=str(Path("artifacts/ml/model")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    server = serve(args.model_dir, args.host, args.port)
    print(f"serving {args.model_dir} on http://{args.host}:{server.server_port} (/ping, /invocations)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
