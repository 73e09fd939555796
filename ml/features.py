"""Which channel columns the model reads, and as what: the FeatureSpec.

The feature mart's contract (models/marts/ml/_ml__models.yml) is the one list of features: every channel
column is a numeric feature except the id, the label, the dates and timestamps, and the categorical columns
declared below. Adding a numeric column to the mart adds a feature, with no edit here; its plausible range
comes with the training channel (RANGES_FILE, from the contract's config.meta.range) and is kept in the spec. A
column that is none of these and not numeric (a string not declared categorical) stops training, named, rather
than being dropped or guessed at.

The categorical columns are declared here, not read from the YAML contract: the channels are plain Parquet
exported by the flow (flightdelay/flow/modeling.py), which carries no dbt `meta`, and the SageMaker
container receives this folder alone, without models/. tests/test_ml_features.py checks that this list is
exactly the mart's varchar columns other than the id, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

LABEL = "is_dep_delayed_15"
ID_COLUMN = "flight_id"
DATE_COLUMN = "flight_date"  # kept beside the features: the evaluation reports each period's dates
CATEGORICAL_FEATURES = ("carrier_code", "origin_airport_code", "dest_airport_code")
# The 2016 AWS blog's features, restricted to what is known before departure: calendar, schedule,
# distance, holiday distance and the previous day's weather summary. The logistic baseline reads these
# (ml/evaluation.py); the model reads every numeric channel column.
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
REQUIRED_COLUMNS = (ID_COLUMN, DATE_COLUMN, LABEL, *CATEGORICAL_FEATURES)
# The plausible range of each numeric feature, from the mart's contract (config.meta.range), as a file in the
# training channel: training keeps the ranges in the spec, the server checks requests against them.
RANGES_FILE = "feature_ranges.json"


def _is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind) \
        or pa.types.is_boolean(kind)


def _is_temporal(kind: pa.DataType) -> bool:
    return pa.types.is_date(kind) or pa.types.is_timestamp(kind) or pa.types.is_time(kind)


def numeric_columns(schema: pa.Schema, where: str = "channel") -> list[str]:
    """The numeric features of a channel: every column in schema order except the id, the label, the dates
    and timestamps and the declared categoricals. ValueError naming every other column of a type the model
    cannot read (a string not declared categorical, a list, a struct)."""
    skipped = {ID_COLUMN, LABEL, *CATEGORICAL_FEATURES}
    numeric, untyped = [], []
    for column in schema:
        if column.name in skipped or _is_temporal(column.type):
            continue
        (numeric if _is_numeric(column.type) else untyped).append(column)
    if untyped:
        found = ", ".join(f"{column.name} ({column.type})" for column in untyped)
        raise ValueError(f"{where}: cannot type columns {found} as model features: expected a number, a date "
                         f"or one of the categorical columns {list(CATEGORICAL_FEATURES)} (ml/features.py)")
    return [column.name for column in numeric]


@dataclass(frozen=True)
class Channel:
    frame: pd.DataFrame
    rows_in_channel: int


@dataclass(frozen=True)
class FeatureSpec:
    categorical: dict[str, list[str]]
    numeric: list[str]
    # The plausible (low, high) of each numeric feature, inclusive, from the training channel's RANGES_FILE: what
    # the server checks requests against. Empty only in a spec fit without them (the bench's experiments), which
    # the server refuses to serve (ml/feature_ranges.py `served_ranges`).
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"categorical": self.categorical, "numeric": self.numeric, "label": LABEL,
                "ranges": {name: list(bounds) for name, bounds in self.ranges.items()}}

    @classmethod
    def from_json(cls, payload: dict) -> FeatureSpec:
        # as written: ml/feature_ranges.py `served_ranges` checks every range before a request is
        ranges = payload.get("ranges")
        return cls(categorical=payload["categorical"], numeric=payload["numeric"],
                   ranges={name: tuple(bounds) if isinstance(bounds, list) else bounds
                           for name, bounds in ranges.items()} if isinstance(ranges, dict) else {})

    @classmethod
    def fit(cls, frame: pd.DataFrame, ranges: dict[str, tuple[float, float]] | None = None) -> FeatureSpec:
        """The training vocabulary of each categorical column, and the frame's numeric columns in its order
        (typed as `numeric_columns` types a channel: the id, label, dates and categoricals are not features),
        with their `ranges`: ValueError naming every numeric column that has none."""
        vocab = {c: sorted(frame[c].dropna().astype(str).unique().tolist()) for c in CATEGORICAL_FEATURES}
        candidates = [c for c in frame.columns if c not in (ID_COLUMN, LABEL, *CATEGORICAL_FEATURES)]
        schema = pa.Schema.from_pandas(frame[candidates], preserve_index=False)
        numeric = numeric_columns(schema, "training frame")
        if ranges is None:
            return cls(categorical=vocab, numeric=numeric)
        missing = [name for name in numeric if name not in ranges]
        if missing:
            raise ValueError(f"no plausible range for the numeric features {missing} in the training channel's "
                             f"{RANGES_FILE}: declare config.meta.range for each in the feature mart's contract "
                             "(models/marts/ml/_ml__models.yml) and export the channels again")
        return cls(categorical=vocab, numeric=numeric, ranges={name: ranges[name] for name in numeric})

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
