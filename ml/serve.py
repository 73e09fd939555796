"""Inference for the delay model under the SageMaker container contract.

Two ways in, one code path (`predict` from ml/booster.py, as batch scoring uses):
- the SageMaker XGBoost framework container imports this module's `model_fn`, `input_fn`, `predict_fn`
  and `output_fn` when it serves the model (script mode);
- `python -m ml.serve --model-dir DIR --port 8080` runs the same contract locally over HTTP
  (ml/http_server.py): `GET /ping` (200 once the model is loaded) and `POST /invocations` with
  `text/csv` (a header line naming the feature columns, then one row per flight) or
  `application/json` (`{"instances": [{"carrier_code": "UA", ...}, ...]}` or a bare list of objects).
  The answer is JSON `{"predictions": [{"flight_id": ..., "delay_probability": ...}, ...]}` or, with
  `Accept: text/csv`, one probability per line.

The request contract is strict, because a lenient one answers 200 with a wrong probability: the body's
structure is parsed in ml/request_parsing.py, its values checked against the model in
ml/request_validation.py; every refusal is a BadRequest naming the row and field.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

try:  # package import locally; files side by side inside the SageMaker container
    from ml.booster import load_model, predict
    from ml.feature_ranges import ranges_for
    from ml.features import ID_COLUMN, FeatureSpec
    from ml.http_server import (
        DEFAULT_QUEUE_WAIT_SECONDS,
        DEFAULT_TIMEOUT_SECONDS,
        DEFAULT_WORKERS,
        BoundedThreadingHTTPServer,
        make_handler,
    )
    from ml.request_parsing import MAX_BODY_BYTES, BadRequest, content_kind, input_fn
    from ml.request_validation import validate
except ImportError:  # pragma: no cover
    from booster import load_model, predict
    from feature_ranges import ranges_for
    from features import ID_COLUMN, FeatureSpec
    from http_server import (
        DEFAULT_QUEUE_WAIT_SECONDS,
        DEFAULT_TIMEOUT_SECONDS,
        DEFAULT_WORKERS,
        BoundedThreadingHTTPServer,
        make_handler,
    )
    from request_parsing import MAX_BODY_BYTES, BadRequest, content_kind, input_fn
    from request_validation import validate

JSON_LINES = "application/jsonlines"
__all__ = ["JSON_LINES", "MAX_BODY_BYTES", "BadRequest", "content_kind", "input_fn", "main", "model_fn", "output_fn",
           "predict_fn", "serve", "validate"]


# ---------------------------------------------------------------- SageMaker inference handlers


def model_fn(model_dir: str) -> tuple[Any, FeatureSpec]:
    """The booster and its feature spec; ValueError if a numeric feature has no plausible range to check
    requests against (ml/feature_ranges.py), so such a model is never served unchecked."""
    booster, spec = load_model(model_dir)
    ranges_for(spec.numeric)
    return booster, spec


def predict_fn(frame: pd.DataFrame, model: tuple[Any, FeatureSpec]) -> pd.DataFrame:
    booster, spec = model
    clean = validate(frame, spec)
    ids = clean[ID_COLUMN] if ID_COLUMN in clean.columns else pd.Series(range(len(clean))).astype(str)
    return pd.DataFrame({"flight_id": ids.astype(object),
                         "delay_probability": predict(booster, spec, clean).astype("float64")})


def output_fn(predictions: pd.DataFrame, accept: str) -> tuple[str, str]:
    """JSON `{"predictions": [...]}` by default; `text/csv`: one probability per line; `application/jsonlines`:
    one `{"flight_id": ..., "delay_probability": ...}` object per line, what a batch transform writes for
    Redshift's `COPY ... FORMAT JSON 'auto'` to load (flightdelay/aws score step)."""
    kind = (accept or "").split(";")[0].strip().lower()
    if kind == "text/csv":
        return "\n".join(repr(float(p)) for p in predictions["delay_probability"]) + "\n", "text/csv"
    rows = [{"flight_id": f, "delay_probability": float(p)}
            for f, p in zip(predictions["flight_id"], predictions["delay_probability"], strict=True)]
    if kind == JSON_LINES:
        return "".join(json.dumps(row) + "\n" for row in rows), JSON_LINES
    return json.dumps({"predictions": rows}), "application/json"



def invoke(model: tuple[Any, FeatureSpec], body: bytes, content_type: str, accept: str) -> tuple[str, str]:
    """One /invocations request through the four handlers, as the container chains them."""
    return output_fn(predict_fn(input_fn(body, content_type), model), accept)


# ---------------------------------------------------------------- local HTTP server


def serve(model_dir: str, host: str = "127.0.0.1", port: int = 8080, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
          workers: int = DEFAULT_WORKERS, queue_wait: float = DEFAULT_QUEUE_WAIT_SECONDS
          ) -> BoundedThreadingHTTPServer:
    model = model_fn(model_dir)
    handler = make_handler(lambda body, content_type, accept: invoke(model, body, content_type, accept), timeout)
    return BoundedThreadingHTTPServer((host, port), handler, workers=workers, queue_wait=queue_wait)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the delay model under the SageMaker container contract.")
    parser.add_argument("--model-dir", default=str(Path("artifacts/ml/model")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS,
                        help="seconds to receive a whole request before answering 408 (default %(default)s)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help="requests handled at once (default %(default)s)")
    parser.add_argument("--queue-wait", type=float, default=DEFAULT_QUEUE_WAIT_SECONDS,
                        help="seconds a connection waits for a free worker before a 503 (default %(default)s)")
    args = parser.parse_args(argv)
    server = serve(args.model_dir, args.host, args.port, timeout=args.timeout, workers=args.workers,
                   queue_wait=args.queue_wait)
    print(f"serving {args.model_dir} on http://{args.host}:{server.server_port} (/ping, /invocations)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
