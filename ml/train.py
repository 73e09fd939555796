"""Train the flight-delay model: XGBoost, with a logistic-regression baseline on the blog's features.

SageMaker script-mode contract, so the same file runs in the SageMaker XGBoost framework container
and locally (the pipeline runs it as `python -m ml.train`):
- hyperparameters arrive as command-line arguments (defaults: hyperparameters.json beside this file);
- data channels are folders of Parquet files: SM_CHANNEL_TRAIN (fit), SM_CHANNEL_VALIDATION
  (early stopping), SM_CHANNEL_TEST (the hold-out period, optional);
- the model goes to SM_MODEL_DIR in XGBoost's own JSON format, with feature_spec.json, the baseline and fit.json
  (what the fit saw) beside it;
- with a `model` channel (SM_CHANNEL_MODEL, a folder SM_MODEL_DIR once held), nothing is fit: that model is
  evaluated on the test channel and kept, which is how a month arriving in the test period is handled;
- evaluation.json (SageMaker model-quality layout) and model_card.md go to SM_OUTPUT_DATA_DIR.

This file is the entry point only; the work is in the modules beside it, which SageMaker receives with it
as the package ml/ of its source dir (flightdelay/aws/staging.py; the archive's own train.py calls `main`):
features.py (which columns, typed how), booster.py
(fit, predict, save, load), evaluation.py (metrics, calibration, the baseline), model_card.py, channels.py
(reading a channel in bounded memory). Their public names are re-exported here for the code that imports them
from ml.train.

Memory follows `max_train_rows`, not the channels: the training and validation rows are a sample of at most
that many rows streamed from the Parquet files (channels.read_channel), and the evaluated channel is read and
predicted a batch at a time, keeping only the label and the probabilities of each row.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sklearn
import xgboost as xgb

from ml.booster import MODEL_FILE, SPEC_FILE, load_model, predict, save_model, train_xgboost
from ml.channels import iter_channel, read_channel
from ml.evaluation import (
    BASELINE_CATEGORICAL,
    BASELINE_FEATURES,
    BASELINE_NUMERIC,
    PROBABILITY_THRESHOLD,
    LinearBaseline,
    binary_classification_metrics,
    calibration_table,
    fit_baseline,
    period,
    predict_batches,
    train_baseline,
)
from ml.feature_ranges import read_ranges
from ml.features import CATEGORICAL_FEATURES, ID_COLUMN, LABEL, Channel, FeatureSpec
from ml.model_card import model_card
from ml.model_files import FIT_FILE, FITTED_FILES, ModelFolderError, fit_record
from ml.model_identity import code_digest, data_digest, model_id

__all__ = [
    "BASELINE_CATEGORICAL", "BASELINE_NUMERIC", "CATEGORICAL_FEATURES", "HYPERPARAMETERS", "ID_COLUMN", "LABEL",
    "MODEL_FILE", "PROBABILITY_THRESHOLD", "SPEC_FILE", "Channel",
    "FeatureSpec", "binary_classification_metrics", "calibration_table", "iter_channel", "load_model", "main",
    "model_card", "parse_args", "predict", "read_channel", "run", "train_baseline", "train_xgboost",
]

HYPERPARAMETERS_FILE = Path(__file__).with_name("hyperparameters.json")
HYPERPARAMETER_TYPES = {
    "max_depth": int,
    "eta": float,
    "num_round": int,
    "early_stopping_rounds": int,
    "subsample": float,
    "colsample_bytree": float,
    "min_child_weight": float,
    "max_cat_to_onehot": int,
    "max_bin": int,
    # Beyond this many rows the training channel is sampled uniformly (seeded, by flight id; the validation
    # channel too): past a few million rows the model gains little and the time and memory keep growing
    # (bench/ measures both).
    "max_train_rows": int,
    "seed": int,
}
HYPERPARAMETERS = tuple(HYPERPARAMETER_TYPES)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the flight-delay XGBoost model.")
    # Hyperparameters: SageMaker passes them as --name value; the defaults are the versioned file beside
    # this script (SageMaker uploads it with the source dir).
    defaults = json.loads(HYPERPARAMETERS_FILE.read_text())
    for name, kind in HYPERPARAMETER_TYPES.items():
        parser.add_argument(f"--{name}", type=kind, default=kind(defaults[name]))
    parser.add_argument("--nthread", type=int, default=int(os.environ.get("SM_NUM_CPUS", "0")) or None)
    # SageMaker environment, with local defaults
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "artifacts/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "artifacts/ml/channels/train"))
    parser.add_argument("--validation",
                        default=os.environ.get("SM_CHANNEL_VALIDATION", "artifacts/ml/channels/validation"))
    parser.add_argument("--test", default=os.environ.get("SM_CHANNEL_TEST", "artifacts/ml/channels/test"))
    parser.add_argument("--output-data-dir", default=os.environ.get("SM_OUTPUT_DATA_DIR", "artifacts/ml"))
    # A trained model's folder (SageMaker's `model` input channel): evaluate it instead of fitting anew.
    parser.add_argument("--model-channel", default=os.environ.get("SM_CHANNEL_MODEL", ""))
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Fitted:
    """A fit model, its baseline, and what the fit saw and produced (FIT_FILE)."""

    booster: xgb.Booster
    spec: FeatureSpec
    baseline: LinearBaseline
    summary: dict


def fit(args: argparse.Namespace) -> Fitted:
    """Fit the model and the baseline on the training channel (early stopping on the validation channel) and
    save both, with FIT_FILE, to the model folder."""
    started = time.perf_counter()
    train_channel = read_channel(args.train, max_rows=args.max_train_rows, seed=args.seed)
    train = train_channel.frame
    # Early stopping evaluates every round on the validation rows, so they are held too: capped the same way.
    validation = read_channel(args.validation, max_rows=args.max_train_rows, seed=args.seed).frame
    spec = FeatureSpec.fit(pd.concat([train, validation]), read_ranges(args.train))

    booster = train_xgboost(args, spec, train, validation)
    xgb_seconds = time.perf_counter() - started

    baseline_started = time.perf_counter()
    baseline = fit_baseline(train, args.seed)  # the rows the model was fit on
    baseline_seconds = time.perf_counter() - baseline_started

    importance = booster.get_score(importance_type="gain")
    hyperparameters = {name: getattr(args, name) for name in HYPERPARAMETERS}
    summary = {
        # the same rows, features, hyperparameters and code give the same id (ml/model_identity.py)
        "model_id": model_id(data_digest(train, validation), spec.to_json(), hyperparameters, code_digest(),
                             {"xgboost": xgb.__version__, "scikit-learn": sklearn.__version__}),
        "train": {**period(train), "rows_in_channel": train_channel.rows_in_channel},
        "validation": period(validation),
        "model": {
            "algorithm": "xgboost",
            "xgboost_version": xgb.__version__,
            "num_boosted_rounds": int(booster.num_boosted_rounds()),
            "hyperparameters": hyperparameters,
            "features": spec.columns,
            "feature_importance_gain": dict(sorted(importance.items(), key=lambda kv: -kv[1])),
            "training_seconds": round(xgb_seconds, 2),
        },
        "baseline_training_seconds": round(baseline_seconds, 2),
    }
    save_model(booster, spec, args.model_dir)
    baseline.save(args.model_dir)
    # written last, with the digest of each file beside it: the four files are one fit, or not a model
    summary["files"] = {name: hashlib.sha256((Path(args.model_dir) / name).read_bytes()).hexdigest()
                        for name in FITTED_FILES}
    (Path(args.model_dir) / FIT_FILE).write_text(json.dumps(summary, indent=2))
    return Fitted(booster, spec, baseline, summary)


def load_fitted(model_dir: str | Path) -> Fitted:
    """The fit in a model folder, only if its files are the ones FIT_FILE records (read before anything parses
    them: an edited, mixed or half-written folder is refused, never evaluated)."""
    summary = fit_record(model_dir, "model channel")
    booster, spec = load_model(model_dir)
    return Fitted(booster, spec, LinearBaseline.load(model_dir), summary)


def evaluate(args: argparse.Namespace, fitted: Fitted) -> dict:
    """Both models on every row of the test channel (the validation channel without one), a batch at a time;
    writes evaluation.json and the model card to the output folder."""
    has_test = bool(args.test) and Path(args.test).exists()
    evaluated = predict_batches(iter_channel(args.test if has_test else args.validation),
                                lambda frame: predict(fitted.booster, fitted.spec, frame),
                                fitted.baseline.probabilities)
    y_true, y_prob, y_base = evaluated.y_true, evaluated.y_prob, evaluated.y_base
    evaluation = {
        "version": 0.0,
        "model_id": fitted.summary["model_id"],
        "dataset": {
            "evaluated_on": "test" if has_test else "validation",
            "train": fitted.summary["train"],
            "validation": fitted.summary["validation"],
            "test": evaluated.period,
        },
        "binary_classification_metrics": binary_classification_metrics(y_true, y_prob, seed=args.seed),
        "model": {**fitted.summary["model"], "calibration": calibration_table(y_true, y_prob)},
        "baseline": {
            "algorithm": "logistic_regression",
            "features": list(BASELINE_FEATURES),
            "binary_classification_metrics": binary_classification_metrics(y_true, y_base, seed=args.seed),
            "calibration": calibration_table(y_true, y_base),
            "training_seconds": fitted.summary["baseline_training_seconds"],
        },
    }
    output_dir = Path(args.output_data_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
    (output_dir / "model_card.md").write_text(model_card(evaluation))
    return evaluation


def run(args: argparse.Namespace) -> dict:
    """Fit and evaluate; with a model channel, evaluate that model (a new test month arrived, the fit's data
    did not change: flightdelay/flow/ml_inputs.py) and keep it as this job's model."""
    if not args.model_channel:
        return evaluate(args, fit(args))
    fitted = load_fitted(args.model_channel)
    model_dir = Path(args.model_dir)
    if Path(args.model_channel).resolve() != model_dir.resolve():  # SageMaker uploads only SM_MODEL_DIR
        model_dir.mkdir(parents=True, exist_ok=True)
        for name in (*FITTED_FILES, FIT_FILE):
            shutil.copyfile(Path(args.model_channel) / name, model_dir / name)
    return evaluate(args, fitted)


def main(argv: list[str] | None = None) -> int:
    try:
        evaluation = run(parse_args(argv))
    except ModelFolderError as refusal:
        print(f"ERROR: {refusal}", file=sys.stderr)
        return 2
    model = evaluation["binary_classification_metrics"]
    base = evaluation["baseline"]["binary_classification_metrics"]
    print(
        f"test ROC AUC {model['auc']['value']:.4f} (baseline {base['auc']['value']:.4f}), "
        f"PR AUC {model['pr_auc']['value']:.4f} (baseline {base['pr_auc']['value']:.4f}), "
        f"log loss {model['log_loss']['value']:.4f} (baseline {base['log_loss']['value']:.4f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
