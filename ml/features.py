"""Which channel columns the model reads, and as what: the FeatureSpec.

The feature mart's contract (models/marts/ml/_ml__models.yml) is the one list of features: every channel
column is a numeric feature except the id, the label, the dates and timestamps, and the categorical columns
declared below. Adding a numeric column to the mart adds a feature, with no edit here. A column that is none
of these and not numeric (a string not declared categorical) stops training, named, rather than being
dropped or guessed at.

The categorical columns are declared here, not read from the YAML contract: the channels are plain Parquet
exported by the flow (flightdelay/flow/modeling.py), which carries no dbt `meta`, and the SageMaker
container receives this folder alone, without models/. tests/test_ml_features.py checks that this list is
exactly the mart's varchar columns other than the id, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

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
# The mart's numeric features today, in its column order: what tests build synthetic channels and requests
# from. Training does not read this list; it types the channel's own columns (`numeric_columns`).
NUMERIC_FEATURES = (
    *CALENDAR_AND_ROUTE_FEATURES,
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
    "carrier_origin_on_ground_3h",
    "origin_max_late_so_far_minutes_3h",
    "origin_avg_late_so_far_minutes_30m",
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
    *PREVIOUS_DAY_WEATHER_FEATURES,
)
REQUIRED_COLUMNS = (ID_COLUMN, DATE_COLUMN, LABEL, *CATEGORICAL_FEATURES)
MODEL_COLUMNS = (*REQUIRED_COLUMNS, *NUMERIC_FEATURES)  # what ml/channels.py reads of the mart of today


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
    for field in schema:
        if field.name in skipped or _is_temporal(field.type):
            continue
        (numeric if _is_numeric(field.type) else untyped).append(field)
    if untyped:
        found = ", ".join(f"{field.name} ({field.type})" for field in untyped)
        raise ValueError(f"{where}: cannot type columns {found} as model features: expected a number, a date "
                         f"or one of the categorical columns {list(CATEGORICAL_FEATURES)} (ml/features.py)")
    return [field.name for field in numeric]


@dataclass(frozen=True)
class Channel:
    frame: pd.DataFrame
    rows_in_channel: int


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
        """The training vocabulary of each categorical column, and the frame's numeric columns in its order
        (typed as `numeric_columns` types a channel: the id, label, dates and categoricals are not features)."""
        vocab = {c: sorted(frame[c].dropna().astype(str).unique().tolist()) for c in CATEGORICAL_FEATURES}
        candidates = [c for c in frame.columns if c not in (ID_COLUMN, LABEL, *CATEGORICAL_FEATURES)]
        schema = pa.Schema.from_pandas(frame[candidates], preserve_index=False)
        return cls(categorical=vocab, numeric=numeric_columns(schema, "training frame"))

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
