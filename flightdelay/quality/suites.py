"""The Great Expectations suites as data: which expectations, on which columns, at which severity.

Each asset has a `critical` suite (a failure stops the run before anything is published) and may have a
`warning` suite (reported, never blocking). Nothing here touches a GX context; gates.py runs the suites.

One home per check. dbt's data tests (models/marts/**/_*.yml) own the marts' contracts and grain: unique
keys, not-null columns, accepted values, row counts reconciled with the source, invariants between columns
(`as_of_at_utc < scheduled_departure_at_utc`). They run in `dbt build` on the audit schema, whose failure
also stops the run before publishing, so none of them is repeated here. These suites own what dbt cannot
see, or cannot read from the project's one definition: the raw files, the lake, the plausible ranges of
raw_contracts/ranges.py and the feature mart's contract (config.meta.range), and distributions (means, non-null shares).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import great_expectations.expectations as gxe

# Plausible ranges, each defined once: of raw values in raw_contracts.ranges (the loader quarantines and the
# Spark weather job nulls values outside them), of model features in the feature mart's contract (ml/serve.py
# refuses them), read from the source tree this module belongs to.
from flightdelay.flow.feature_contract import feature_ranges
from raw_contracts.ranges import FLIGHT_RANGES, WEATHER_RANGES

PROJECT_ROOT = Path(__file__).resolve().parents[2]

CRITICAL = "critical"
WARNING = "warning"
# A month with more than this share of its lines quarantined is a broken delivery, not noise.
MAX_QUARANTINED_SHARE = 0.01
# A new version of a file may correct rows, not lose a twentieth of them.
MIN_ROWS_VS_PREVIOUS_LOAD = 0.95


def _not_null(*columns: str, mostly: float = 1.0) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=mostly) for c in columns]


def _between(ranges: dict[str, tuple[float, float]], mostly: float = 1.0) -> list:
    return [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi, mostly=mostly)
            for c, (lo, hi) in ranges.items()]


def _share_true_between(column: str, low: float, high: float) -> list:
    """The share of true values of a boolean column, among its non-null values, within [low, high]: as two
    shares of values rather than a mean, since SQL cannot average a boolean (PostgreSQL has no avg(boolean)).
    At least `low` true, and at least 1 - `high` false."""
    return [gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True], mostly=low),
            gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[False], mostly=round(1 - high, 10))]


def raw_files_critical() -> list:
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        *_not_null("source_kind", "source_file", "rows_read"),
        gxe.ExpectColumnValuesToBeInSet(column="source_kind", value_set=["flights", "weather", "weather_daily"]),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["source_kind", "source_file"]),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="rows_read", column_B="rows_accounted_for"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="rows_read", column_B="file_data_lines"),
        gxe.ExpectColumnValuesToBeBetween(column="quarantined_share", min_value=0, max_value=MAX_QUARANTINED_SHARE),
        # A redelivered file that shrank (a truncated download) would silently drop flights.
        gxe.ExpectColumnValuesToBeBetween(column="rows_vs_previous_load", min_value=MIN_ROWS_VS_PREVIOUS_LOAD),
    ]


def raw_files_warning() -> list:
    return [
        # Freshness: every file was checked in this run or the one before it.
        gxe.ExpectColumnValuesToBeBetween(column="hours_since_checked", min_value=0, max_value=48),
        gxe.ExpectColumnValuesToBeBetween(column="quarantined_share", min_value=0, max_value=0.001),
    ]


def lake_weather_critical() -> list:
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        *_not_null("station_id", "observed_at_utc", "airport_code"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["station_id", "observed_at_utc"]),
        *_between(WEATHER_RANGES),
        # Temperature, dew point and humidity must agree (Magnus formula). A file in °C labelled °F
        # passes every range check but not this one: on the sample the median disagreement per
        # station-month is 0.25-0.32 points of humidity; the same data in °C gives 6.9-13.9.
        gxe.ExpectColumnValuesToBeBetween(column="station_month_humidity_error_pct", min_value=0, max_value=5),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="temp_f", column_B="dew_point_f", or_equal=True,
                                                    mostly=0.99),
    ]


def lake_weather_warning() -> list:
    return [
        # Completeness per station-day: a routine report every hour.
        gxe.ExpectColumnValuesToBeBetween(column="reports_that_day", min_value=20, max_value=30, mostly=0.95),
        gxe.ExpectColumnValuesToBeInSet(column="implausible_fields", value_set=["", None], mostly=0.999),
        gxe.ExpectColumnMeanToBeBetween(column="temp_f", min_value=-10, max_value=95),
        gxe.ExpectColumnValuesToBeBetween(column="humidity_consistency_error_pct", min_value=0, max_value=10,
                                          mostly=0.95),
    ]


def fct_flights_critical() -> list:
    """The row count (= raw.flights), the unique flight_id and the not-null keys, dates and times are dbt
    tests in models/marts/core/_core__models.yml, not here."""
    return [
        gxe.ExpectColumnValuesToBeInSet(column="is_cancelled", value_set=[True, False]),
        # the loader's own ranges: a value outside them was quarantined, so one here means a model broke it
        *_between({"dep_delay_minutes": FLIGHT_RANGES["dep_delay"], "arr_delay_minutes": FLIGHT_RANGES["arr_delay"],
                   "distance_miles": FLIGHT_RANGES["distance"]}),
        gxe.ExpectColumnValuesToMatchRegex(column="origin_airport_code", regex=r"^[A-Z0-9]{3}$"),
    ]


def fct_flights_warning() -> list:
    return [
        # at most 10% cancelled, as a share of values rather than a mean: SQL cannot average a boolean
        gxe.ExpectColumnValuesToBeInSet(column="is_cancelled", value_set=[False], mostly=0.9),
    ]


def features_critical() -> list:
    """The row count (= flights in fct_flights with a label), the unique flight_id, the not-null columns, the boolean
    label and `as_of_at_utc < scheduled_departure_at_utc` are dbt tests in models/marts/ml/_ml__models.yml, not
    here. The ranges and the weather coverage below are not dbt tests there."""
    ranges = feature_ranges(PROJECT_ROOT)
    return [
        *_between({name: ranges[name] for name in ("scheduled_dep_hour_local", "weather_age_minutes")}),
        *_share_true_between("is_dep_delayed_15", 0.05, 0.6),
        *_between(WEATHER_RANGES),
        # Most flights must have weather: a broken join or an empty lake shows up here. Critical, not a
        # warning: a model trained on a mart without weather is not the model this project describes.
        gxe.ExpectColumnValuesToNotBeNull(column="temp_f", mostly=0.95),
    ]


def features_warning() -> list:
    return [
        *_share_true_between("is_dep_delayed_15", 0.1, 0.4),
        gxe.ExpectColumnValuesToNotBeNull(column="previous_day_tmax_f", mostly=0.98),
    ]


def training_frame_critical() -> list:
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=100),
        gxe.ExpectColumnValuesToBeUnique(column="flight_id"),
        gxe.ExpectColumnValuesToBeInSet(column="is_dep_delayed_15", value_set=[True, False]),
        # No row from the validation or test period may leak into the training channel.
        gxe.ExpectColumnValuesToBeBetween(column="days_before_validation_start", min_value=1),
        gxe.ExpectColumnDistinctValuesToBeInSet(column="channel", value_set=["train"]),
    ]


SUITES: dict[str, dict[str, Callable[[], list]]] = {
    "raw_files": {CRITICAL: raw_files_critical, WARNING: raw_files_warning},
    "lake_weather": {CRITICAL: lake_weather_critical, WARNING: lake_weather_warning},
    "fct_flights": {CRITICAL: fct_flights_critical, WARNING: fct_flights_warning},
    "ml_flight_delay_features": {CRITICAL: features_critical, WARNING: features_warning},
    "ml_training_frame": {CRITICAL: training_frame_critical},
}


# What each row decides alone: a chunk of the table passes these exactly when its rows do, so a table passes when
# every chunk does (gates.py validates big tables a month or a few at a time). Every other expectation (a share
# of rows, i.e. `mostly` below 1; a mean; uniqueness; the row count) is a property of the whole table that no
# chunk can judge: those are computed over the whole table in SQL (whole_table.py).
PER_ROW_EXPECTATIONS = (
    gxe.ExpectColumnValuesToBeBetween,
    gxe.ExpectColumnValuesToBeInSet,
    gxe.ExpectColumnValuesToNotBeNull,
    gxe.ExpectColumnValuesToMatchRegex,
    gxe.ExpectColumnPairValuesToBeEqual,
    gxe.ExpectColumnPairValuesAToBeGreaterThanB,
    # the distinct values of the table are the union of each chunk's: within the set exactly when each chunk's are
    gxe.ExpectColumnDistinctValuesToBeInSet,
)


def is_per_row(expectation) -> bool:
    """Whether a chunk can decide the expectation alone (see PER_ROW_EXPECTATIONS)."""
    mostly = getattr(expectation, "mostly", None)
    return isinstance(expectation, PER_ROW_EXPECTATIONS) and (mostly is None or mostly >= 1)


def columns_checked(asset: str) -> list[str]:
    """The columns the asset's suites read: the marts are loaded with only these, because pandas holds
    every loaded column in memory and the marts are wide."""
    names = []
    for build in SUITES[asset].values():
        for expectation in build():
            config = expectation.configuration.kwargs
            for key in ("column", "column_A", "column_B"):
                if config.get(key):
                    names.append(config[key])
            names += config.get("column_list") or []
    return list(dict.fromkeys(names))
