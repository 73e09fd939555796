"""What a prediction's reasons cost: XGBoost's exact TreeSHAP contributions against the path-based ones batch
scoring uses (ml/explain.py), on the test channel of the trained model, and how often the two agree.

    python -m bench.reasons [--model-dir artifacts/ml/model] [--channel artifacts/ml/channels/test] [--rows N]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import xgboost as xgb

from ml.booster import load_model
from ml.channels import read_channel


def measure(model_dir: str, channel: str, rows: int) -> dict:
    booster, spec = load_model(model_dir)
    frame = read_channel(channel, max_rows=rows, seed=1).frame
    matrix = xgb.DMatrix(spec.matrix(frame), enable_categorical=True)
    rounds = (0, booster.num_boosted_rounds())

    def timed(**options) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        values = booster.predict(matrix, iteration_range=rounds, **options)
        return values, time.perf_counter() - started

    margin, predict_seconds = timed(output_margin=True)
    exact, exact_seconds = timed(pred_contribs=True)
    path, path_seconds = timed(pred_contribs=True, approx_contribs=True)
    exact_top = np.argsort(-np.abs(exact[:, :-1]), axis=1, kind="stable")[:, :3]
    path_top = np.argsort(-np.abs(path[:, :-1]), axis=1, kind="stable")[:, :3]
    return {
        "flights": len(frame), "trees": booster.num_boosted_rounds(), "features": len(spec.columns),
        "cpus": os.cpu_count(),
        "predict_seconds": round(predict_seconds, 3),
        "exact_treeshap_seconds": round(exact_seconds, 3),
        "path_based_seconds": round(path_seconds, 3),
        "exact_ms_per_flight": round(1000 * exact_seconds / len(frame), 4),
        "path_based_ms_per_flight": round(1000 * path_seconds / len(frame), 4),
        "top_feature_agrees": round(float((exact_top[:, 0] == path_top[:, 0]).mean()), 4),
        "top_3_shared_on_average": round(float(np.mean(
            [len(set(a) & set(b)) for a, b in zip(exact_top, path_top, strict=True)])), 3),
        "max_abs_sum_minus_margin": {"exact": float(np.abs(exact.sum(1) - margin).max()),
                                     "path_based": float(np.abs(path.sum(1) - margin).max())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="artifacts/ml/model")
    parser.add_argument("--channel", default="artifacts/ml/channels/test")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(json.dumps(measure(args.model_dir, args.channel, args.rows), indent=2))


if __name__ == "__main__":
    main()
