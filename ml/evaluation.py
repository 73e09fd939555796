"""How good the model is: SageMaker model-quality metrics, calibration, and the logistic baseline on the
2016 AWS blog's features that every model is compared with."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
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

from ml.features import (
    CALENDAR_AND_ROUTE_FEATURES,
    CATEGORICAL_FEATURES,
    DATE_COLUMN,
    LABEL,
    PREVIOUS_DAY_WEATHER_FEATURES,
)
from ml.model_files import BASELINE_FILE

PROBABILITY_THRESHOLD = 0.5
BASELINE_CATEGORICAL = CATEGORICAL_FEATURES
BASELINE_NUMERIC = (*CALENDAR_AND_ROUTE_FEATURES, *PREVIOUS_DAY_WEATHER_FEATURES)
BASELINE_FEATURES = [*BASELINE_CATEGORICAL, *BASELINE_NUMERIC]


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
    model.fit(train[BASELINE_FEATURES], train[LABEL].astype(int))
    return model


@dataclass(frozen=True)
class LinearBaseline:
    """The fitted baseline as plain numbers, so it is saved as JSON (never a pickle) and evaluated again without
    refitting: per categorical feature its frequent categories and the infrequent ones (one indicator column
    for them all, as OneHotEncoder(min_frequency) builds it; an unseen category is all zeros), per numeric
    feature the imputed median and the scaling, and the logistic regression's weights in that column order."""

    categories: dict[str, dict[str, list[str]]]  # feature -> {"frequent": [...], "infrequent": [...]}
    median: list[float]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float

    @classmethod
    def from_pipeline(cls, model: Pipeline) -> LinearBaseline:
        preprocess, classifier = model.named_steps["preprocess"], model.named_steps["classifier"]
        encoder = preprocess.named_transformers_["categorical"]
        numeric = preprocess.named_transformers_["numeric"]
        categories = {}
        for feature, seen, rare in zip(BASELINE_CATEGORICAL, encoder.categories_, encoder.infrequent_categories_,
                                       strict=True):
            rare = [] if rare is None else [str(c) for c in rare]
            categories[feature] = {"frequent": [str(c) for c in seen if str(c) not in rare], "infrequent": rare}
        return cls(categories, numeric.named_steps["impute"].statistics_.tolist(),
                   numeric.named_steps["scale"].mean_.tolist(), numeric.named_steps["scale"].scale_.tolist(),
                   classifier.coef_[0].tolist(), float(classifier.intercept_[0]))

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        margin = np.full(len(frame), self.intercept)
        column = 0
        for feature in BASELINE_CATEGORICAL:
            frequent, rare = self.categories[feature]["frequent"], self.categories[feature]["infrequent"]
            width = len(frequent) + bool(rare)
            # codes: a frequent category's column, the infrequent column, or -1 (unseen: no column)
            codes = pd.Categorical(frame[feature].astype("string").to_numpy(), categories=[*frequent, *rare]).codes
            codes = np.where(codes >= len(frequent), len(frequent), codes)
            weights = np.append(np.asarray(self.coef[column:column + width]), 0.0)  # index -1: the unseen 0
            margin += weights[codes]
            column += width
        values = frame[list(BASELINE_NUMERIC)].to_numpy(dtype=float)
        values = np.where(np.isnan(values), np.asarray(self.median), values)
        margin += ((values - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef[column:])
        return 1.0 / (1.0 + np.exp(-margin))

    def save(self, model_dir: str | Path) -> None:
        (Path(model_dir) / BASELINE_FILE).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, model_dir: str | Path) -> LinearBaseline:
        return cls(**json.loads((Path(model_dir) / BASELINE_FILE).read_text()))


def fit_baseline(train: pd.DataFrame, seed: int) -> LinearBaseline:
    """The baseline fit with scikit-learn, kept as a LinearBaseline, which must score the fit's rows as the
    pipeline does (a check of the conversion, on every fit)."""
    pipeline = train_baseline(train, seed)
    baseline = LinearBaseline.from_pipeline(pipeline)
    rows = train.head(20_000)
    expected = pipeline.predict_proba(rows[BASELINE_FEATURES])[:, 1]
    if not np.allclose(baseline.probabilities(rows), expected, rtol=0, atol=1e-9):
        raise AssertionError("the baseline saved as numbers scores differently from the fitted pipeline")
    return baseline


def period(frame: pd.DataFrame) -> dict:
    dates = pd.to_datetime(frame[DATE_COLUMN]) if DATE_COLUMN in frame.columns else None
    return {
        "rows": int(len(frame)),
        "positive_rate": float(frame[LABEL].astype(int).mean()) if len(frame) else None,
        "first_date": None if dates is None else str(dates.min().date()),
        "last_date": None if dates is None else str(dates.max().date()),
    }


@dataclass(frozen=True)
class StreamedPredictions:
    """What the metrics need of an evaluated channel, gathered batch by batch: the label and both models'
    probabilities per row (13 bytes a row, not the channel's ~60 columns), and the channel's `period`."""

    y_true: np.ndarray
    y_prob: np.ndarray
    y_base: np.ndarray
    period: dict


def predict_batches(frames: Iterable[pd.DataFrame], model: Callable[[pd.DataFrame], np.ndarray],
                    baseline: Callable[[pd.DataFrame], np.ndarray]) -> StreamedPredictions:
    """Both models' probabilities on each frame of a channel read a batch at a time (ml.channels.iter_channel),
    so that evaluating needs one batch in memory, not the channel."""
    labels, probabilities, baselines = [], [], []
    first = last = None
    for frame in frames:
        labels.append(frame[LABEL].astype("int8").to_numpy())
        probabilities.append(np.asarray(model(frame), dtype="float32"))
        baselines.append(np.asarray(baseline(frame), dtype="float64"))
        if DATE_COLUMN in frame.columns and len(frame):
            dates = pd.to_datetime(frame[DATE_COLUMN])
            first = dates.min() if first is None else min(first, dates.min())
            last = dates.max() if last is None else max(last, dates.max())
    y_true = np.concatenate(labels) if labels else np.zeros(0, dtype="int8")
    rows = len(y_true)
    return StreamedPredictions(
        y_true=y_true,
        y_prob=np.concatenate(probabilities) if probabilities else np.zeros(0, dtype="float32"),
        y_base=np.concatenate(baselines) if baselines else np.zeros(0),
        period={
            "rows": rows,
            "positive_rate": float(y_true.mean()) if rows else None,
            "first_date": None if first is None else str(first.date()),
            "last_date": None if last is None else str(last.date()),
        },
    )
