"""Inference for the delay model under the SageMaker container contract.

Two ways in, one code path (`predict` from ml/booster.py, as batch scoring uses):
- the SageMaker XGBoost framework container imports this module's `model_fn`, `input_fn`, `predict_fn`
  and `output_fn` when it serves the model (script mode);
- `python -m ml.serve --model-dir DIR --port 8080` runs the same contract locally over HTTP
  (ml/http_server.py): `GET /ping` (200 once the model is loaded) and `POST /invocations` with
  `text/csv` (a header line naming the feature columns, then one row per flight) or
  `application/json` (`{"instances": [{"carrier_code": "UA", ...}, ...]}` or a bare list of objects).
  The answer is JSON `{"predictions": [{"flight_id": ..., "delay_probability": ..., "model_id": ...}, ...]}`
  (with `"reasons"` when the request asks: ml/request_parsing.py, ml/explain.py) or, with `Accept: text/csv`,
  one probability per line.

The request contract is strict, because a lenient one answers 200 with a wrong probability: the body's
structure is parsed in ml/request_parsing.py, its values checked against the model in
ml/request_validation.py; every refusal is a BadRequest naming the row and field.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ml.booster import load_model, predict
from ml.explain import reasons
from ml.feature_ranges import served_ranges
from ml.features import ID_COLUMN, FeatureSpec
from ml.http_server import (
    DEFAULT_QUEUE_WAIT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_WORKERS,
    BoundedThreadingHTTPServer,
    make_handler,
)
from ml.model_files import ModelFolderError, fit_record
from ml.request_parsing import MAX_BODY_BYTES, REASONS_ATTRIBUTE, BadRequest, content_kind, input_fn
from ml.request_validation import validate

JSON_LINES = "application/jsonlines"
# rows x reasons in one answer: a batch transform file (under 6 MB, about 14,000 flights) with 3 reasons each fits,
# 57 reasons for 17,000 flights (a 76 MB answer, +430 MB of server memory, measured) does not
MAX_REASONS_PER_REQUEST = 100_000
CSV_HAS_NO_REASONS = ("reasons were asked for, but Accept: text/csv has room for the probability only; ask for "
                      "application/json or application/jsonlines")
__all__ = ["JSON_LINES", "MAX_BODY_BYTES", "BadRequest", "content_kind", "input_fn", "main", "model_fn", "output_fn",
           "predict_fn", "serve", "validate"]


# ---------------------------------------------------------------- SageMaker inference handlers


@dataclass(frozen=True)
class ServedModel:
    booster: Any
    spec: FeatureSpec
    model_id: str


def model_fn(model_dir: str) -> ServedModel:
    """The booster, its feature spec and its id. ValueError if a numeric feature has no plausible range to check
    requests against (ml/feature_ranges.py), so such a model is never served unchecked, or if the folder is not one
    fit of ml/train.py (its files must be the ones fit.json records: the id every answer carries is then the id of
    the model that computed it)."""
    model_id = fit_record(model_dir, "served model")["model_id"]  # first: nothing is parsed before it is checked
    booster, spec = load_model(model_dir)
    try:
        served_ranges(spec)
    except ValueError as refusal:
        raise ModelFolderError(f"served model {model_dir}: {refusal}") from None
    return ServedModel(booster, spec, model_id)


def predict_fn(frame: pd.DataFrame, model: ServedModel) -> pd.DataFrame:
    """One row per flight: its id, the delay probability and the model id; with reasons asked for (the request's
    `reasons`, ml/request_parsing.py), the largest contributions beside them (ml/explain.py)."""
    clean = validate(frame, model.spec)
    ids = clean[ID_COLUMN] if ID_COLUMN in clean.columns else pd.Series(range(len(clean))).astype(str)
    out = pd.DataFrame({"flight_id": ids.astype(object).to_numpy(),
                        "delay_probability": predict(model.booster, model.spec, clean).astype("float64"),
                        "model_id": model.model_id})
    if top := frame.attrs.get(REASONS_ATTRIBUTE):
        if top > len(model.spec.columns):
            raise BadRequest(f"reasons: the model has {len(model.spec.columns)} features, so at most that many "
                             f"reasons; {top} were asked for")
        if top * len(clean) > MAX_REASONS_PER_REQUEST:  # the answer grows with both: bound it (and the memory)
            raise BadRequest(f"reasons: {top} for each of {len(clean):,} rows is over {MAX_REASONS_PER_REQUEST:,} "
                             "reasons in one request; ask for fewer reasons or send fewer rows per request")
        out = pd.concat([out, reasons(model.booster, model.spec, clean, top).reset_index(drop=True)], axis=1)
        out.attrs[REASONS_ATTRIBUTE] = top
    return out


def _reasons_of(row: dict, top: int) -> dict:
    """One prediction's reasons as the JSON answer shows them: they add up to the log-odds of its probability."""
    return {"base_log_odds": row["base_log_odds"],
            "top": [{"feature": row[f"reason_{rank}_feature"], "log_odds": row[f"reason_{rank}_log_odds"]}
                    for rank in range(1, top + 1) if f"reason_{rank}_feature" in row],
            "other_features_log_odds": row["other_features_log_odds"]}


def output_fn(predictions: pd.DataFrame, accept: str) -> tuple[str, str]:
    """JSON `{"predictions": [...]}` by default, each `{"flight_id", "delay_probability", "model_id"}` and, when the
    request asked for them, `"reasons"`; `text/csv`: one probability per line (no room for reasons: asking for
    them with it is a 400); `application/jsonlines`: one object per line with the reasons' columns flat, what a
    batch transform writes for Redshift's `COPY ... FORMAT JSON 'auto'` to load (flightdelay/aws score step)."""
    kind = (accept or "").split(";")[0].strip().lower()
    top = predictions.attrs.get(REASONS_ATTRIBUTE)
    if kind == "text/csv":
        if top:
            raise BadRequest(CSV_HAS_NO_REASONS)
        return "\n".join(repr(float(p)) for p in predictions["delay_probability"]) + "\n", "text/csv"
    rows = [{name: (value.item() if hasattr(value, "item") else value) for name, value in row.items()}
            for row in predictions.to_dict(orient="records")]
    if kind == JSON_LINES:
        return "".join(json.dumps(row) + "\n" for row in rows), JSON_LINES
    answers = []
    for row in rows:
        answer = {"flight_id": row["flight_id"], "delay_probability": row["delay_probability"],
                  "model_id": row["model_id"]}
        if top:
            answer["reasons"] = _reasons_of(row, top)
        answers.append(answer)
    return json.dumps({"predictions": answers}), "application/json"


def invoke(model: ServedModel, body: bytes, content_type: str, accept: str) -> tuple[str, str]:
    """One /invocations request through the four handlers, as the container chains them (here a request for
    reasons with a CSV answer is refused before any scoring; output_fn refuses it in the container)."""
    frame = input_fn(body, content_type)
    if frame.attrs.get(REASONS_ATTRIBUTE) and (accept or "").split(";")[0].strip().lower() == "text/csv":
        raise BadRequest(CSV_HAS_NO_REASONS)
    return output_fn(predict_fn(frame, model), accept)


# ---------------------------------------------------------------- local HTTP server


def serve(model_dir: str, host: str = "127.0.0.1", port: int = 8080, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
          workers: int = DEFAULT_WORKERS, queue_wait: float = DEFAULT_QUEUE_WAIT_SECONDS
          ) -> BoundedThreadingHTTPServer:
    model = model_fn(model_dir)
    # every answer names the model, the bare probabilities of Accept: text/csv too
    handler = make_handler(lambda body, content_type, accept: invoke(model, body, content_type, accept), timeout,
                           headers=(("X-Model-Id", model.model_id),))
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
    try:
        server = serve(args.model_dir, args.host, args.port, timeout=args.timeout, workers=args.workers,
                       queue_wait=args.queue_wait)
    except ModelFolderError as refusal:
        print(f"ERROR: {refusal}", file=sys.stderr)
        return 2
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
