"""Why the model said what it said: each prediction's log-odds split into one signed share per feature.

XGBoost's own feature contributions (`pred_contribs`) in their path-based form (`approx_contribs`, Saabas): the
bias (the model's log-odds before any feature) plus every feature's contribution equals the prediction's margin,
so `delay_probability = 1 / (1 + exp(-(base + contributions)))`. The exact TreeSHAP values were measured at
1.27 ms a flight on this project's model (94 trees of depth 7: 68.6 s for the 54,145 test flights on 2 cores,
against 0.49 s for these and 0.14 s for the probabilities), which batch scoring cannot pay at ten million flights;
on those flights the two agree on the top feature for 70 % and share 2.3 of the top 3 on average
(`python -m bench.reasons`; BENCHMARKS.md, "Reasons").

A prediction carries its `top` largest contributions (by size, signed), and the rest summed, so the shares shown
still add up to the margin: `base_log_odds + reason_1_log_odds + ... + other_features_log_odds`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import xgboost as xgb

from ml.features import FeatureSpec

TABLE_REASONS = 3  # reasons per flight in ml.flight_delay_predictions


def reason_columns(top: int) -> list[str]:
    """The columns `reasons` returns, in order: what the predictions table and the batch transform's lines hold."""
    return ["base_log_odds", *[f"reason_{rank}_{part}" for rank in range(1, top + 1)
                               for part in ("feature", "log_odds")], "other_features_log_odds"]


def contributions(booster: xgb.Booster, spec: FeatureSpec, frame: pd.DataFrame) -> np.ndarray:
    """One row per flight: the contribution of each of `spec.columns`, then the bias (float32, as XGBoost
    computes)."""
    import xgboost as xgb  # here, not above: the flow reads `reason_columns` without paying for XGBoost's import

    matrix = xgb.DMatrix(spec.matrix(frame), enable_categorical=True)
    return booster.predict(matrix, pred_contribs=True, approx_contribs=True,
                           iteration_range=(0, booster.num_boosted_rounds()))


def reasons(booster: xgb.Booster, spec: FeatureSpec, frame: pd.DataFrame, top: int) -> pd.DataFrame:
    """The `top` largest contributions of each flight (feature name and log-odds, largest first; ties in the
    columns' order), the bias and the rest summed: `reason_columns(top)`, indexed like `frame`."""
    values = contributions(booster, spec, frame).astype("float64")
    features, bias = values[:, :-1], values[:, -1]
    top = min(top, features.shape[1])
    order = np.argsort(-np.abs(features), axis=1, kind="stable")[:, :top]
    chosen = np.take_along_axis(features, order, axis=1)
    names = np.asarray(spec.columns, dtype=object)
    out = {"base_log_odds": bias}
    for rank in range(top):
        out[f"reason_{rank + 1}_feature"] = names[order[:, rank]]
        out[f"reason_{rank + 1}_log_odds"] = chosen[:, rank]
    out["other_features_log_odds"] = features.sum(axis=1) - chosen.sum(axis=1)
    return pd.DataFrame(out, index=frame.index)
