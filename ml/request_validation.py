"""The request contract, part two: the values sent, checked against the model and typed, or a BadRequest
naming the earliest bad row (1-based, header not counted) and its field.

The columns are the model's features and optionally flight_id, nothing else (an ignored column would hide a
misspelt one). Every numeric feature is a finite decimal within float32's range (the model computes in
float32) and within the feature's plausible range (the model's feature_spec.json, from the feature mart's
contract: ml/feature_ranges.py; a month of 13 or a humidity of 400 % is refused, not scored), or empty/null for
missing; every categorical feature is one of the categories the model was trained with (feature_spec.json; the
model would score an unseen one as missing), or empty/null.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from ml.feature_ranges import served_ranges
from ml.features import ID_COLUMN, FeatureSpec
from ml.request_parsing import BadRequest, kind_of, shown

FLOAT32_MAX = float(np.finfo(np.float32).max)
# A plain decimal: no inf/nan, no hex, no digit separators, ASCII digits only (float() accepts all of those).
_NUMBER = r"[ \t]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*"
NUMBER = re.compile(_NUMBER)
NOT_IN_A_NUMBER = re.compile(r"[^0-9+\-.eE \t]")


def _is_missing(value: Any) -> bool:
    # float NaN only arrives in a frame handed straight to predict_fn (pandas' missing marker): input_fn
    # never turns text into NaN, it rejects 'nan' and NaN
    return value is None or value is pd.NA or (isinstance(value, float | np.floating) and math.isnan(value))


def _number(value: Any) -> float:
    """One numeric feature value as a float (NaN for missing); ValueError saying why it is not acceptable."""
    if _is_missing(value):
        return math.nan
    if isinstance(value, str):
        if not NUMBER.fullmatch(value):
            raise ValueError(f"{shown(value)} is not a number")
        number = float(value)
    elif isinstance(value, bool | np.bool_):
        raise ValueError(f"expected a number or null, found a boolean ({value})")
    elif isinstance(value, int | float | Decimal | np.integer | np.floating):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float64
            number = math.inf
    else:
        raise ValueError(f"expected a number or null, found {kind_of(value)}")
    if not abs(number) <= FLOAT32_MAX:  # inf too: the model computes in float32, where these overflow
        raise ValueError(f"{shown(value)} is outside the float32 range (magnitude at most {FLOAT32_MAX:.6g})")
    return number


def _category(value: Any) -> str | None:
    if _is_missing(value):
        return None
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string or null, found {kind_of(value)} ({shown(value)})")


def _examples(values: list[str], limit: int = 12) -> str:
    if not values:
        return "none (every value of it was missing in training)"
    listed = ", ".join(shown(value, 20) for value in values[:limit])
    return listed + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _known_category(column: str, categories: list[str]) -> Callable[[Any], str | None]:
    """`_category`, then refuses a value the model never saw in training: the model would score it as missing
    (FeatureSpec.matrix), an answer to a question the client did not ask."""
    known = set(categories)
    by_spelling = {category.strip().casefold(): category for category in categories}

    def check(value: Any) -> str | None:
        category = _category(value)
        if category is None or category in known:
            return category
        hint = by_spelling.get(category.strip().casefold())
        raise ValueError(f"{shown(category)} is not among the {column} values the model was trained with"
                         + (f" (did you mean {hint!r}?)" if hint else "")
                         + f"; it knows {_examples(sorted(known))}; send null if unknown")

    return check


def _bound(value: float) -> str:
    return format(value, ".10g")


def _outside(numbers: np.ndarray | list, values: list, bounds: tuple[float, float]) -> tuple[int, str] | None:
    """The first value outside `bounds` (missing ones are not), with why."""
    low, high = bounds
    array = np.asarray(numbers, dtype=np.float64)
    outside = np.flatnonzero((array < low) | (array > high))  # NaN (missing) compares false both ways
    if not outside.size:
        return None
    row = int(outside[0])
    return row, (f"{shown(values[row])} is not inside the plausible range [{_bound(low)}, {_bound(high)}] "
                 "(the feature's config.meta.range in the feature mart's contract)")


def _flight_id(value: Any) -> str | None:
    if _is_missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(value)
    raise ValueError(f"expected a string, an integer or null, found {kind_of(value)} ({shown(value)})")


def _checked(values: list, check: Callable[[Any], Any]) -> tuple[list, tuple[int, str] | None]:
    """`check` applied to each value; stops at the first it rejects: (its row index, why)."""
    out = []
    for row, value in enumerate(values):
        try:
            out.append(check(value))
        except ValueError as error:
            return out, (row, str(error))
    return out, None


def _numbers(values: list) -> tuple[np.ndarray | list, tuple[int, str] | None]:
    """`_number` over a column. CSV columns (strings and None) take a vectorised path, about twice as fast on a
    6 MiB body: a string made only of characters `NUMBER` allows matches `NUMBER` exactly when float() accepts
    it (what float() accepts beyond, inf, nan, 1_0, other digits and spaces, needs other characters), so one
    scan for foreign characters and numpy's conversion stand in for a regex per value."""
    array = np.asarray(values, dtype=object)
    missing = pd.isna(array)
    present = array[~missing]
    if present.size and pd.api.types.infer_dtype(present, skipna=False) == "string":
        if not NOT_IN_A_NUMBER.search("".join(present.tolist())):
            numbers = np.full(array.size, math.nan)
            try:
                numbers[~missing] = present.astype(np.float64)
            except ValueError:  # '1e', '+-1', '.': the slow path says which row
                return _checked(values, _number)
            overflow = np.flatnonzero(np.abs(numbers) > FLOAT32_MAX)  # inf included; NaN (missing) is not
            if overflow.size:
                row = int(overflow[0])
                return numbers, (row, _checked([values[row]], _number)[1][1])
            return numbers, None
    return _checked(values, _number)


def validate(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The model's features (and flight_id) from `frame`, typed: numeric features as float64, categorical
    ones as str/None. BadRequest for a column that is not one of these, or naming the earliest bad row and its
    field if any value is not acceptable: not a number, outside its feature's plausible range, a category the
    model was not trained with."""
    if frame.columns.duplicated().any():
        raise BadRequest(f"fields {shown(sorted(set(frame.columns[frame.columns.duplicated()])), 200)} appear "
                         "more than once")
    missing = [column for column in spec.columns if column not in frame.columns]
    unknown = [column for column in frame.columns if column not in spec.columns and column != ID_COLUMN]
    if unknown:  # ignored, a misspelt or misplaced column would leave the client believing it was used
        also = f" (and missing feature columns {missing}: a misspelt name?)" if missing else ""
        raise BadRequest(f"unknown columns {shown(unknown, 200)}{also}; send only {ID_COLUMN} (optional) and the "
                         f"model's {len(spec.columns)} features: {', '.join(spec.columns)}")
    if missing:
        raise BadRequest(f"missing feature columns {missing}; got {shown(list(frame.columns), 2000)}")
    if len(frame) == 0:
        raise BadRequest("no rows to score")
    ranges = served_ranges(spec)
    columns = [*spec.categorical, *spec.numeric, *([ID_COLUMN] if ID_COLUMN in frame.columns else [])]
    clean: dict[str, Any] = {}
    first_bad: tuple[int, int, str] | None = None  # (row, column order, message): report the earliest row
    for order, column in enumerate(columns):
        values = frame[column].tolist()
        if column in spec.numeric:
            clean[column], bad = _numbers(values)
            # before the first unparsable row (if any): that row itself is reported for what it is
            implausible = _outside(clean[column][: bad[0] if bad else len(values)], values, ranges[column])
            bad = implausible if implausible and (bad is None or implausible[0] < bad[0]) else bad
        elif column in spec.categorical:
            clean[column], bad = _checked(values, _known_category(column, spec.categorical[column]))
        else:
            clean[column], bad = _checked(values, _flight_id)
        if bad is not None and (first_bad is None or (bad[0], order) < first_bad[:2]):
            first_bad = (bad[0], order, f"row {bad[0] + 1}, field {column}: {bad[1]}")
    if first_bad is not None:
        raise BadRequest(first_bad[2])
    return pd.DataFrame({column: np.asarray(clean[column], dtype=np.float64) if column in spec.numeric
                         else pd.Series(clean[column], dtype=object) for column in columns})
