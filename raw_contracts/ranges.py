"""The plausible range of every measured value, in the unit its column name carries. Defined once.

A raw value outside its range (or not a finite number: NaN, inf, 1e309) is an encoding or sensor error:
the BTS loader quarantines the record naming the field and value, the Spark weather job nulls the value
and names the field in `implausible_fields`, and the quality suites expect the loaded columns inside the
same ranges. Bounds are inclusive.
"""

from __future__ import annotations

import math

# BTS On-Time Reporting fields, by the loader's column names (see flightdelay/raw/bts_fields.py FIELDS).
FLIGHT_RANGES: dict[str, tuple[float, float]] = {
    # a departure four hours early is already absurd; three days late is the longest real holds seen
    "dep_delay": (-240.0, 4320.0),
    "arr_delay": (-240.0, 4320.0),
    # the shortest scheduled US routes are about 10 miles, the longest (Hawaii-East Coast) about 5,100
    "distance": (10.0, 5100.0),
    "air_time": (1.0, 1200.0),
    "op_carrier_fl_num": (1.0, 9999.0),
}
# Indicator fields: 0 or 1 (BTS writes them as 0.00 / 1.00).
FLIGHT_FLAGS = ("dep_del15", "cancelled", "diverted")

# NOAA LCD hourly observations, by the lake's column names (see spark_prep: HOURLY_COLUMNS).
WEATHER_RANGES: dict[str, tuple[float, float]] = {
    "temp_f": (-80.0, 140.0),
    "dew_point_f": (-100.0, 100.0),
    "relative_humidity_pct": (0.0, 100.0),
    "wind_direction_deg": (0.0, 360.0),
    "wind_speed_mph": (0.0, 200.0),
    "wind_gust_mph": (0.0, 250.0),
    "precip_in": (0.0, 20.0),
    "sea_level_pressure_inhg": (25.0, 33.0),
    "visibility_mi": (0.0, 100.0),
}


def is_plausible(value: float, bounds: tuple[float, float]) -> bool:
    """Finite and inside the bounds."""
    return math.isfinite(value) and bounds[0] <= value <= bounds[1]
