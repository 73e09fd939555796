"""What tuning the fit buys at the 2-hour horizon: the product's own fit (ml.booster.train_xgboost) with
ml/hyperparameters.json, and with a slower learning rate and fewer columns per tree; validation ROC AUC (what a
choice may look at) and test ROC AUC (what it is judged by, Nov-Dec 2013), rounds and fit time.

    python -m bench.hyperparameters [--seeds 1] [--channels artifacts/ml/channels]

Run after `make run` (it reads the channels, read-only). Issue 19, part 5 asks for a 2-hour test AUC >= 0.785;
this measures how much of the way the fit itself can go without a new feature.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from bench.tables import markdown_table, save_result
from ml.booster import predict, train_xgboost
from ml.channels import read_channel
from ml.features import LABEL, FeatureSpec
from ml.train import parse_args

# Changes from ml/hyperparameters.json; a slower rate gets more rounds and more patience to stop early.
VARIANTS = {
    "ml/hyperparameters.json": {},
    "eta 0.05": {"eta": 0.05, "num_round": 1000, "early_stopping_rounds": 50},
    "eta 0.05, colsample 0.4": {"eta": 0.05, "num_round": 1000, "early_stopping_rounds": 50, "colsample_bytree": 0.4},
    "eta 0.03, colsample 0.5, min child weight 30": {"eta": 0.03, "num_round": 2000, "early_stopping_rounds": 80,
                                                     "colsample_bytree": 0.5, "min_child_weight": 30},
}


def fit(changes: dict, spec: FeatureSpec, channels: dict[str, pd.DataFrame], seed: int,
        scored: tuple[str, ...] = ("validation", "test")) -> dict:
    """The product's fit (ml.booster.train_xgboost, ml/hyperparameters.json with `changes`) on `spec`'s columns:
    ROC AUC on each `scored` channel (`<name>_roc_auc`), fit seconds and rounds. bench/feature_families.py fits
    the same way."""
    args = parse_args([])
    for name, value in {**changes, "seed": seed}.items():
        setattr(args, name, value)
    started = time.perf_counter()
    booster = train_xgboost(args, spec, channels["train"], channels["validation"])
    seconds = time.perf_counter() - started
    auc = {f"{name}_roc_auc": roc_auc_score(channels[name][LABEL].astype(int), predict(booster, spec, channels[name]))
           for name in scored}
    return {**auc, "fit_seconds": seconds, "rounds": booster.num_boosted_rounds()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--channels", default="artifacts/ml/channels")
    args = parser.parse_args(argv)
    channels = {name: read_channel(Path(args.channels) / name).frame for name in ("train", "validation", "test")}
    spec = FeatureSpec.fit(pd.concat([channels["train"], channels["validation"]]))
    rows = {}
    for name, changes in VARIANTS.items():
        runs = [fit(changes, spec, channels, seed) for seed in args.seeds]
        rows[name] = {key: round(statistics.mean(run[key] for run in runs), 5) for key in runs[0]}
        print(f"{name}: {rows[name]}", flush=True)
    path = save_result("hyperparameters", {"seeds": args.seeds, "test_rows": len(channels["test"]),
                                           "variants": VARIANTS, "rows": rows})
    print(markdown_table(["variant", "validation ROC AUC", "test ROC AUC", "rounds", "fit s"], [
        [name, f"{row['validation_roc_auc']:.4f}", f"{row['test_roc_auc']:.4f}", f"{row['rounds']:.0f}",
         f"{row['fit_seconds']:.1f}"] for name, row in rows.items()], right_aligned_from=1))
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
