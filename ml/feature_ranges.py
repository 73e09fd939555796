"""The plausible range of every numeric model feature, in the unit its name carries. Defined once.

The inference server (ml/serve.py) refuses a request with a value outside its feature's range: a month of 13
or a humidity of 400 % is a client's bug, and the model would score it anyway (a tree only compares a value
with its split points) and answer 200 with a probability nobody can trust. Bounds are inclusive.

Where the feature is a measured value, its range is the one the loader, the Spark weather job and the quality
suites already use (raw_contracts/ranges.py), not a copy: the weather at the as-of time has the raw
observation's range, the distance the BTS loader's. Every other range follows from the feature's definition
in the feature mart (models/marts/ml/ml_flight_delay_features.sql and the intermediate models it reads):
calendar fields, shares 0-1, counts >= 0, windows of so many hours, sums of so many hourly reports.

Imports raw_contracts, so it runs where the project does (`python -m ml.serve` from the project root) and
from the model's sourcedir.tar.gz, which carries the package raw_contracts/ beside the package ml/
(flightdelay/aws/staging.py `sourcedir_tarball`). Without raw_contracts it fails at import rather than
serving unchecked.
"""

from __future__ import annotations

import math

from raw_contracts.ranges import FLIGHT_RANGES, WEATHER_RANGES

MINUTES_PER_DAY = 24 * 60
SHARE = (0.0, 1.0)
# The busiest US airport (ATL) schedules about 100 departures in its busiest hour; twice that bounds the
# departures counted at one airport in one hour, and so every count of departures over a window of hours.
DEPARTURES_PER_AIRPORT_HOUR = 200.0
# Earliest departure the BTS loader keeps (minutes, negative = early): the floor of every lateness feature.
EARLIEST_DEP_DELAY = FLIGHT_RANGES["dep_delay"][0]


def _departures(hours: float) -> tuple[float, float]:
    """A count of departures at one airport over `hours`."""
    return (0.0, DEPARTURES_PER_AIRPORT_HOUR * hours)


def _late_so_far(window_minutes: float) -> tuple[float, float]:
    """Lateness as the departure board showed it at the as-of time (macros/departure_board.sql), for
    departures scheduled at most `window_minutes` before it: the delay of one that left (never more than the
    time since it was scheduled), else the time waited so far; a mean of such values stays inside too."""
    return (EARLIEST_DEP_DELAY, window_minutes)


def _summed_precip(hours: float) -> tuple[float, float]:
    """Precipitation summed over `hours` of reports, each inside the raw observation's range."""
    low, high = WEATHER_RANGES["precip_in"]
    return (low, high * hours)


_PRESSURE = WEATHER_RANGES["sea_level_pressure_inhg"]
# The aircraft's previous departure is scheduled at or before the as-of time and within 24 h of it; the as-of
# time is the scheduled departure minus the prediction horizon (dbt var prediction_horizon_minutes, 120), taken
# here as at most a day.
_PREVIOUS_LEG_GAP = (0.0, 2.0 * MINUTES_PER_DAY)
# A scheduled block time: positive, and at most a day (the longest US routes are about 12 h).
_PREVIOUS_LEG_BLOCK = (0.0, float(MINUTES_PER_DAY))
_PREVIOUS_LEG_LATE_SO_FAR = _late_so_far(MINUTES_PER_DAY)

FEATURE_RANGES: dict[str, tuple[float, float]] = {
    # calendar and schedule: from the flight date and the scheduled hhmm
    "month_number": (1.0, 12.0),
    "day_of_month": (1.0, 31.0),
    "day_of_week": (0.0, 6.0),  # Sunday = 0
    "scheduled_dep_hour_local": (0.0, 24.0),  # floor(hhmm / 100): BTS writes midnight as 2400
    "distance_miles": FLIGHT_RANGES["distance"],
    # New Year's Day is a federal holiday every year, so the nearest one is never more than half a year away
    "days_to_nearest_holiday": (0.0, 183.0),
    "scheduled_departures_origin_hour": _departures(1),
    # weather at the as-of time: the raw observation's ranges
    "temp_f": WEATHER_RANGES["temp_f"],
    "dew_point_f": WEATHER_RANGES["dew_point_f"],
    "relative_humidity_pct": WEATHER_RANGES["relative_humidity_pct"],
    "wind_direction_deg": WEATHER_RANGES["wind_direction_deg"],
    "wind_speed_mph": WEATHER_RANGES["wind_speed_mph"],
    "wind_gust_mph": WEATHER_RANGES["wind_gust_mph"],
    "precip_in": WEATHER_RANGES["precip_in"],
    "sea_level_pressure_inhg": _PRESSURE,
    "visibility_mi": WEATHER_RANGES["visibility_mi"],
    "weather_age_minutes": (0.0, 180.0),  # the mart matches observations up to 3 h old (its data test)
    # the weather trend: sums, extremes and differences of raw observations
    "precip_3h_in": _summed_precip(3),
    "precip_6h_in": _summed_precip(6),
    "min_visibility_3h_mi": WEATHER_RANGES["visibility_mi"],
    "max_wind_gust_3h_mph": WEATHER_RANGES["wind_gust_mph"],
    "max_wind_speed_3h_mph": WEATHER_RANGES["wind_speed_mph"],
    "pressure_change_3h_inhg": (_PRESSURE[0] - _PRESSURE[1], _PRESSURE[1] - _PRESSURE[0]),
    # the route's and the origin hour's last 28 days
    "route_carrier_departures_28d": _departures(28 * 24),
    "route_carrier_delay_15_rate_28d": SHARE,
    "route_carrier_avg_dep_delay_minutes_28d": FLIGHT_RANGES["dep_delay"],  # a mean of departure delays
    "origin_hour_departures_28d": _departures(28),
    "origin_hour_delay_15_rate_28d": SHARE,
    # departures already seen at the as-of time
    "origin_departures_known_6h": _departures(6),
    "origin_late_15_share_6h": SHARE,
    "origin_late_15_share_1h": SHARE,
    "origin_avg_late_so_far_minutes_3h": _late_so_far(3 * 60),
    "origin_overdue_on_ground_6h": _departures(6),
    "carrier_origin_late_15_share_3h": SHARE,
    "carrier_origin_on_ground_3h": _departures(3),
    "origin_max_late_so_far_minutes_3h": _late_so_far(3 * 60),
    "origin_avg_late_so_far_minutes_30m": _late_so_far(30),
    "dest_departures_known_6h": _departures(6),  # departures to one airport: as many as it can take in
    "dest_late_15_share_6h": SHARE,
    "dest_avg_late_so_far_minutes_6h": _late_so_far(6 * 60),
    "carrier_late_15_share_3h": SHARE,
    # the same flight number's runs over the last 7 days
    "flight_number_runs_7d": _departures(7 * 24),
    "flight_number_late_15_share_7d": SHARE,
    "flight_number_avg_late_so_far_minutes_7d": _late_so_far(7 * MINUTES_PER_DAY),
    "flight_number_last_run_late_so_far_minutes": _late_so_far(7 * MINUTES_PER_DAY),
    # the aircraft's previous leg and the aircraft (FAA registry)
    "previous_leg_gap_minutes": _PREVIOUS_LEG_GAP,
    "previous_leg_block_minutes": _PREVIOUS_LEG_BLOCK,
    "previous_leg_late_so_far_minutes": _PREVIOUS_LEG_LATE_SO_FAR,
    "previous_leg_known_arr_delay_minutes": FLIGHT_RANGES["arr_delay"],
    # gap - 2 x block - late so far, at the extremes of its three terms
    "previous_leg_turnaround_slack_minutes": (
        _PREVIOUS_LEG_GAP[0] - 2 * _PREVIOUS_LEG_BLOCK[1] - _PREVIOUS_LEG_LATE_SO_FAR[1],
        _PREVIOUS_LEG_GAP[1] - 2 * _PREVIOUS_LEG_BLOCK[0] - _PREVIOUS_LEG_LATE_SO_FAR[0],
    ),
    "aircraft_age_years": (0.0, 100.0),
    "aircraft_seat_count": (0.0, 1000.0),  # the largest airliner (A380) seats at most 853
    "aircraft_engine_count": (0.0, 8.0),
    # the previous local day's summary of the hourly observations
    "previous_day_tmax_f": WEATHER_RANGES["temp_f"],
    "previous_day_tmin_f": WEATHER_RANGES["temp_f"],
    "previous_day_precip_in": _summed_precip(24),
    "previous_day_avg_wind_speed_mph": WEATHER_RANGES["wind_speed_mph"],
}


def ranges_for(features: list[str] | tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """The range of each of `features`; ValueError naming every feature that has none, so that a model with a
    feature added to the mart and to train.py but not here cannot be served unchecked."""
    missing = [name for name in features if name not in FEATURE_RANGES]
    if missing:
        raise ValueError(f"no plausible range for the numeric features {missing}: add them to FEATURE_RANGES in "
                         "ml/feature_ranges.py (from raw_contracts/ranges.py for a measured value, else from the "
                         "feature's definition in the feature mart)")
    broken = {name: FEATURE_RANGES[name] for name in features
              if not (math.isfinite(FEATURE_RANGES[name][0]) and math.isfinite(FEATURE_RANGES[name][1])
                      and FEATURE_RANGES[name][0] <= FEATURE_RANGES[name][1])}
    if broken:
        raise ValueError(f"ranges {broken} in ml/feature_ranges.py are not finite (low, high) with low <= high")
    return {name: FEATURE_RANGES[name] for name in features}
