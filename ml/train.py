"""Train the flight-delay model: XGBoost, with a logistic-regression baseline on the blog's features.

SageMaker script-mode contract, so the same file runs in the SageMaker XGBoost framework container
and locally (the pipeline runs it as `python -m ml.train`):
- hyperparameters arrive as command-line arguments (defaults here);
- data channels are folders of Parquet files: SM_CHANNEL_TRAIN (fit), SM_CHANNEL_VALIDATION
  (early stopping), SM_CHANNEL_TEST (the hold-out period, optional);
- the model goes to SM_MODEL_DIR in XGBoost's own JSON format, with feature_spec.json beside it;
- evaluation.json (SageMaker model-quality layout) goes to SM_OUTPUT_DATA_DIR.

Self-contained on purpose: SageMaker uploads this folder as the source dir, without the rest of
the project.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xgboost as xgb
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

LABEL = "is_dep_delayed_15"
ID_COLUMN = "flight_id"
CATEGORICAL_FEATURES = ("carrier_code", "origin_airport_code", "dest_airport_code")
# The 2016 AWS blog's features, restricted to what is known before departure: calendar, schedule,
# distance, holiday distance and the previous day's weather summary.
CALENDAR_AND_ROUTE_FEATURES = (
    "month_number",
    "day_of_month",
    "day_of_week",
    "scheduled_dep_hour_local",
    "distance_miles",
    "days_to_nearest_holiday",
)
PREVIOUS_DAY_WEATHER_FEATURES = (
    "previous_day_tmax_f",
    "previous_day_tmin_f",
    "previous_day_precip_in",
    "previous_day_avg_wind_speed_mph",
)
# Weather at the as-of time and its trend, scheduled congestion, the recent history of the route and origin
# hour, the departures already seen at the as-of time, and the aircraft's previous leg: what this project
# adds to the blog's features.
AS_OF_FEATURES = (
    "scheduled_departures_origin_hour",
    "temp_f",
    "dew_point_f",
    "relative_humidity_pct",
    "wind_direction_deg",
    "wind_speed_mph",
    "wind_gust_mph",
    "precip_in",
    "sea_level_pressure_inhg",
    "visibility_mi",
    "weather_age_minutes",
    "precip_3h_in",
    "precip_6h_in",
    "min_visibility_3h_mi",
    "max_wind_gust_3h_mph",
    "max_wind_speed_3h_mph",
    "pressure_change_3h_inhg",
    "route_carrier_departures_28d",
    "route_carrier_delay_15_rate_28d",
    "route_carrier_avg_dep_delay_minutes_28d",
    "origin_hour_departures_28d",
    "origin_hour_delay_15_rate_28d",
    "origin_departures_known_6h",
    "origin_late_15_share_6h",
    "origin_late_15_share_1h",
    "origin_avg_late_so_far_minutes_3h",
    "origin_overdue_on_ground_6h",
    "carrier_origin_late_15_share_3h",
    "dest_departures_known_6h",
    "dest_late_15_share_6h",
    "dest_avg_late_so_far_minutes_6h",
    "carrier_late_15_share_3h",
    "flight_number_runs_7d",
    "flight_number_late_15_share_7d",
    "flight_number_avg_late_so_far_minutes_7d",
    "flight_number_last_run_late_so_far_minutes",
    "previous_leg_gap_minutes",
    "previous_leg_block_minutes",
    "previous_leg_late_so_far_minutes",
    "previous_leg_known_arr_delay_minutes",
    "previous_leg_turnaround_slack_minutes",
    "aircraft_age_years",
    "aircraft_seat_count",
    "aircraft_engine_count",
)
NUMERIC_FEATURES = (*CALENDAR_AND_ROUTE_FEATURES, *AS_OF_FEATURES, *PREVIOUS_DAY_WEATHER_FEATURES)
BASELINE_CATEGORICAL = CATEGORICAL_FEATURES
BASELINE_NUMERIC = (*CALENDAR_AND_ROUTE_FEATURES, *PREVIOUS_DAY_WEATHER_FEATURES)
MODEL_FILE = "model.json"
SPEC_FILE = "feature_spec.json"
PROBABILITY_THRESHOLD = 0.5
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
    # Beyond this many rows the training channel is sampled uniformly (seeded): past a few million rows
    # the model gains little and the time and memory keep growing (bench/ measures both).
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
    return parser.parse_args(argv)


MODEL_COLUMNS = (ID_COLUMN, "flight_date", LABEL, *CATEGORICAL_FEATURES, *NUMERIC_FEATURES)


@dataclass(frozen=True)
class Channel:
    frame: pd.DataFrame
    rows_in_channel: int


def read_channel(path: str | Path, max_rows: int | None = None, seed: int = 0) -> Channel:
    """The model's columns from all Parquet files of a channel folder (or one file), in name order.

    Past `max_rows`, each row is kept with probability max_rows / rows (seeded), batch by batch, so
    memory stays near the sample's size however large the channel is.
    """
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"channel {path}: no .parquet files found")
    parquet_files = [pq.ParquetFile(f) for f in files]
    for file, parquet_file in zip(files, parquet_files, strict=True):
        missing = [c for c in MODEL_COLUMNS if c not in parquet_file.schema_arrow.names]
        if missing:
            raise ValueError(f"channel {path}: columns {missing} missing in {file.name}; "
                             f"found {parquet_file.schema_arrow.names}")
    rows = sum(parquet_file.metadata.num_rows for parquet_file in parquet_files)
    keep_share = max_rows / rows if max_rows and rows > max_rows else None
    rng = np.random.default_rng(seed)
    batches = []
    for parquet_file in parquet_files:
        for batch in parquet_file.iter_batches(batch_size=256_000, columns=list(MODEL_COLUMNS)):
            if keep_share is not None:
                batch = batch.filter(pa.array(rng.random(batch.num_rows) < keep_share))
            batches.append(batch)
    table = pa.Table.from_batches(batches, schema=batches[0].schema if batches else None)
    return Channel(table.to_pandas(), rows)


@dataclass(frozen=True)
class FeatureSpec:
    categorical: dict[str, list[str]]
    numeric: list[str]

    def to_json(self) -> dict:
        return {"categorical": self.categorical, "numeric": self.numeric, "label": LABEL}

    @classmethod
    def from_json(cls, payload: dict) -> FeatureSpec:
        return cls(categorical=payload["categorical"], numeric=payload["numeric"])

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> FeatureSpec:
        vocab = {c: sorted(frame[c].dropna().astype(str).unique().tolist()) for c in CATEGORICAL_FEATURES}
        return cls(categorical=vocab, numeric=list(NUMERIC_FEATURES))

    @property
    def columns(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model input: categories fixed to the training vocabulary (unseen -> missing), floats elsewhere."""
        out = pd.DataFrame(index=frame.index)
        for column, categories in self.categorical.items():
            out[column] = pd.Categorical(frame[column].astype("string"), categories=categories)
        for column in self.numeric:
            # float32 is what XGBoost computes in anyway; half the memory of float64
            out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float32")
        return out


def _metric(value: float, std: float | None) -> dict:
    return {"value": float(value), "standard_deviation": "NaN" if std is None else float(std)}


def binary_classification_metrics(y_true: np.ndarray, y_prob: np.ndarray, seed: int = 0) -> dict:
    """Metrics in SageMaker Model Monitor's model-quality layout (plus PR AUC and log loss).

    Standard deviations follow Model Monitor's method: the metric on five random 80% samples.
    """
    y_true = np.asarray(y_true).astype(int)
    y_prob = np.clip(np.asarray(y_prob, dtype=float), 1e-7, 1 - 1e-7)
    y_pred = (y_prob >= PROBABILITY_THRESHOLD).astype(int)
    rng = np.random.default_rng(seed)
    samples = [rng.choice(len(y_true), size=int(0.8 * len(y_true)), replace=False) for _ in range(5)]

    def with_std(fn) -> dict:
        std = float(np.std([fn(y_true[s], y_prob[s]) for s in samples])) if len(y_true) >= 200 else None
        return _metric(fn(y_true, y_prob), std)

    def thresholded(fn):
        return lambda t, p: fn(t, (p >= PROBABILITY_THRESHOLD).astype(int), zero_division=0)

    cm = confusion_matrix(y_true, y_pred, labels=[0, 1])
    fpr, tpr, _ = roc_curve(y_true, y_prob)
    precisions, recalls, _ = precision_recall_curve(y_true, y_prob)
    # Curves thinned to ~100 points: enough to plot, small enough to read.
    roc_idx = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 101)).astype(int))
    pr_idx = np.unique(np.linspace(0, len(precisions) - 1, min(len(precisions), 101)).astype(int))
    positive_rate = float(y_true.mean())
    return {
        "confusion_matrix": {
            "0": {"0": int(cm[0, 0]), "1": int(cm[0, 1])},
            "1": {"0": int(cm[1, 0]), "1": int(cm[1, 1])},
        },
        "recall": with_std(thresholded(recall_score)),
        "precision": with_std(thresholded(precision_score)),
        "accuracy": with_std(lambda t, p: accuracy_score(t, (p >= PROBABILITY_THRESHOLD).astype(int))),
        "recall_best_constant_classifier": _metric(1.0, None),
        "precision_best_constant_classifier": _metric(positive_rate, None),
        "accuracy_best_constant_classifier": _metric(max(positive_rate, 1 - positive_rate), None),
        "true_positive_rate": _metric(cm[1, 1] / max(cm[1].sum(), 1), None),
        "true_negative_rate": _metric(cm[0, 0] / max(cm[0].sum(), 1), None),
        "false_positive_rate": _metric(cm[0, 1] / max(cm[0].sum(), 1), None),
        "false_negative_rate": _metric(cm[1, 0] / max(cm[1].sum(), 1), None),
        "auc": with_std(roc_auc_score),
        "pr_auc": with_std(average_precision_score),
        "log_loss": with_std(log_loss),
        "f1": with_std(thresholded(f1_score)),
        "receiver_operating_characteristic_curve": {
            "false_positive_rates": [round(float(v), 6) for v in fpr[roc_idx]],
            "true_positive_rates": [round(float(v), 6) for v in tpr[roc_idx]],
        },
        "precision_recall_curve": {
            "precisions": [round(float(v), 6) for v in precisions[pr_idx]],
            "recalls": [round(float(v), 6) for v in recalls[pr_idx]],
        },
    }


def calibration_table(y_true: np.ndarray, y_prob: np.ndarray, bins: int = 10) -> list[dict]:
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(y_prob, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            rows.append({
                "bin_lower": float(edges[b]),
                "bin_upper": float(edges[b + 1]),
                "count": int(mask.sum()),
                "mean_predicted": float(y_prob[mask].mean()),
                "observed_rate": float(np.asarray(y_true)[mask].mean()),
            })
    return rows


def train_xgboost(args: argparse.Namespace, spec: FeatureSpec, train: pd.DataFrame,
                  validation: pd.DataFrame) -> xgb.Booster:
    """Fit on the training period with early stopping on the validation period; the model returned
    stops at the best round. (A refit on train + validation with that many rounds was measured: +0.001
    test AUC on the sample for twice the time, so it is not done.)"""
    params = _params_of(args)
    # Quantile matrices bin the features once, straight from the frame: less memory than a DMatrix.
    dtrain = xgb.QuantileDMatrix(spec.matrix(train), label=train[LABEL], enable_categorical=True,
                                 max_bin=args.max_bin)
    dvalid = xgb.QuantileDMatrix(spec.matrix(validation), label=validation[LABEL], enable_categorical=True,
                                 max_bin=args.max_bin, ref=dtrain)
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=args.num_round,
        evals=[(dvalid, "validation")],
        early_stopping_rounds=args.early_stopping_rounds,
        verbose_eval=100,
    )
    return booster[: booster.best_iteration + 1]


def predict(booster: xgb.Booster, spec: FeatureSpec, frame: pd.DataFrame) -> np.ndarray:
    return booster.predict(xgb.DMatrix(spec.matrix(frame), enable_categorical=True),
                           iteration_range=(0, booster.num_boosted_rounds()))


def train_baseline(train: pd.DataFrame, seed: int) -> Pipeline:
    preprocess = ColumnTransformer([
        ("categorical", OneHotEncoder(handle_unknown="ignore", min_frequency=20), list(BASELINE_CATEGORICAL)),
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
         list(BASELINE_NUMERIC)),
    ])
    model = Pipeline([
        ("preprocess", preprocess),
        ("classifier", LogisticRegression(max_iter=1000, C=1.0, random_state=seed)),
    ])
    model.fit(train[list(BASELINE_CATEGORICAL + BASELINE_NUMERIC)], train[LABEL].astype(int))
    return model


def _period(frame: pd.DataFrame) -> dict:
    dates = pd.to_datetime(frame["flight_date"]) if "flight_date" in frame.columns else None
    return {
        "rows": int(len(frame)),
        "positive_rate": float(frame[LABEL].mean()) if len(frame) else None,
        "first_date": None if dates is None else str(dates.min().date()),
        "last_date": None if dates is None else str(dates.max().date()),
    }


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    train_channel = read_channel(args.train, max_rows=args.max_train_rows, seed=args.seed)
    train = train_channel.frame
    validation = read_channel(args.validation).frame
    test = read_channel(args.test).frame if args.test and Path(args.test).exists() else None
    spec = FeatureSpec.fit(pd.concat([train, validation]))

    booster = train_xgboost(args, spec, train, validation)
    xgb_seconds = time.perf_counter() - started

    baseline_started = time.perf_counter()
    baseline = train_baseline(train, args.seed)  # the rows the model was fit on
    baseline_seconds = time.perf_counter() - baseline_started

    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(model_dir / MODEL_FILE)
    (model_dir / SPEC_FILE).write_text(json.dumps(spec.to_json(), indent=2))

    evaluation_frame = test if test is not None else validation
    y_true = evaluation_frame[LABEL].astype(int).to_numpy()
    y_prob = predict(booster, spec, evaluation_frame)
    y_base = baseline.predict_proba(evaluation_frame[list(BASELINE_CATEGORICAL + BASELINE_NUMERIC)])[:, 1]
    importance = booster.get_score(importance_type="gain")
    evaluation = {
        "version": 0.0,
        "dataset": {
            "evaluated_on": "test" if test is not None else "validation",
            "train": {**_period(train), "rows_in_channel": train_channel.rows_in_channel},
            "validation": _period(validation),
            "test": _period(evaluation_frame),
        },
        "binary_classification_metrics": binary_classification_metrics(y_true, y_prob, seed=args.seed),
        "model": {
            "algorithm": "xgboost",
            "xgboost_version": xgb.__version__,
            "num_boosted_rounds": int(booster.num_boosted_rounds()),
            "hyperparameters": {name: getattr(args, name) for name in HYPERPARAMETERS},
            "features": spec.columns,
            "feature_importance_gain": dict(sorted(importance.items(), key=lambda kv: -kv[1])),
            "calibration": calibration_table(y_true, y_prob),
            "training_seconds": round(xgb_seconds, 2),
        },
        "baseline": {
            "algorithm": "logistic_regression",
            "features": [*BASELINE_CATEGORICAL, *BASELINE_NUMERIC],
            "binary_classification_metrics": binary_classification_metrics(y_true, y_base, seed=args.seed),
            "calibration": calibration_table(y_true, y_base),
            "training_seconds": round(baseline_seconds, 2),
        },
    }
    output_dir = Path(args.output_data_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
    (output_dir / "model_card.md").write_text(model_card(evaluation))
    return evaluation


def model_card(evaluation: dict) -> str:
    """A short markdown card: data, metrics next to the baseline, importance, calibration."""
    model, base = evaluation["binary_classification_metrics"], evaluation["baseline"]["binary_classification_metrics"]
    data = evaluation["dataset"]
    lines = [
        "# Flight delay model card",
        "",
        "Predicts whether a departing flight leaves 15+ minutes late, from features known at the as-of time "
        "(scheduled departure minus the prediction horizon). XGBoost "
        f"{evaluation['model']['xgboost_version']}, {evaluation['model']['num_boosted_rounds']} rounds.",
        "",
        "## Data",
        "",
        "| part | first date | last date | rows | delayed share |",
        "|---|---|---|---|---|",
        *[f"| {name} | {p['first_date']} | {p['last_date']} | {p['rows']:,} | {p['positive_rate']:.3f} |"
          for name, p in (("train", data["train"]), ("validation", data["validation"]),
                          (data["evaluated_on"], data["test"]))],
        *([f"The model was fit on a uniform sample of {data['train']['rows']:,} of the training channel's "
           f"{data['train']['rows_in_channel']:,} rows (`max_train_rows`)."]
          if data["train"].get("rows_in_channel", data["train"]["rows"]) > data["train"]["rows"] else []),
        "",
        f"## Metrics on the {data['evaluated_on']} period",
        "",
        "| metric | XGBoost | logistic baseline (blog features) |",
        "|---|---|---|",
        *[f"| {name} | {model[key]['value']:.4f} | {base[key]['value']:.4f} |"
          for name, key in (("ROC AUC", "auc"), ("PR AUC", "pr_auc"), ("log loss", "log_loss"))],
        "",
        "## Hyperparameters",
        "",
        *[f"- `{name}` = {value}" for name, value in evaluation["model"]["hyperparameters"].items()],
        "",
        "## Feature importance (gain, top 15)",
        "",
        "| feature | gain |",
        "|---|---|",
        *[f"| {name} | {gain:.1f} |"
          for name, gain in list(evaluation["model"]["feature_importance_gain"].items())[:15]],
        "",
        "## Calibration (ten bins of predicted probability)",
        "",
        "| predicted probability | flights | mean predicted | observed delayed share |",
        "|---|---|---|---|",
        *[f"| {row['bin_lower']:.1f}-{row['bin_upper']:.1f} | {row['count']:,} | {row['mean_predicted']:.3f} | "
          f"{row['observed_rate']:.3f} |" for row in evaluation["model"]["calibration"]],
        "",
    ]
    return "\n".join(lines)


def _params_of(args: argparse.Namespace) -> dict:
    params = {
        "objective": "binary:logistic",
        "eval_metric": ["auc", "logloss"],
        "tree_method": "hist",
        "max_depth": args.max_depth,
        "eta": args.eta,
        "subsample": args.subsample,
        "colsample_bytree": args.colsample_bytree,
        "min_child_weight": args.min_child_weight,
        "max_cat_to_onehot": args.max_cat_to_onehot,
        "max_bin": args.max_bin,
        "seed": args.seed,
    }
    if args.nthread:
        params["nthread"] = args.nthread
    return params


def load_model(model_dir: str | Path) -> tuple[xgb.Booster, FeatureSpec]:
    model_dir = Path(model_dir)
    booster = xgb.Booster()
    booster.load_model(model_dir / MODEL_FILE)
    spec = FeatureSpec.from_json(json.loads((model_dir / SPEC_FILE).read_text()))
    return booster, spec


def main(argv: list[str] | None = None) -> int:
    evaluation = run(parse_args(argv))
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
