"""The planted leaks the leakage guard (tests/test_leakage.py) must catch: for each intermediate model behind the
feature mart, a text replacement that makes it read a value known only after the as-of time, and `plant`, which
copies the dbt project and applies one. A new intermediate model behind the mart needs its case here (the test
asks dbt which models are behind it)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import PROJECT_ROOT

PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "selectors.yml", "macros", "models", "seeds", "analyses")


@dataclass(frozen=True)
class Mutation:
    model: str | None  # None: the project as it is
    leak: str
    replacements: tuple[tuple[str, str], ...] = ()


# the departure board's censored "late so far" (macros/departure_board.sql) replaced by the delay itself
UNCENSORED_DELAY = ("{{ flight_delays.late_so_far_minutes() }} as late_so_far_minutes",
                    "dep_delay_minutes as late_so_far_minutes")
MUTATIONS = (
    Mutation(None, "none: the copied project must pass the guard"),
    # both uses in the UTC conversion: the local time converted and the hour whose offset it takes
    Mutation("int_flights_converted_to_utc", "the scheduled departure is the actual one (scheduled + delay)", (
        ("'scheduled.scheduled_departure_at_local'",
         "'scheduled.scheduled_departure_at_local"
         " + to_minutes(cast(coalesce(scheduled.dep_delay_minutes, 0) as bigint))'"),
    )),
    # selection by the outcome: every feature of the flights kept is as it was; the guard counts the flights
    Mutation("int_flights_converted_to_utc", "flights that will leave 100+ minutes late are left out", (
        ("where {{ flight_delays.is_rebuilt('flight_date') }}",
         "where {{ flight_delays.is_rebuilt('flight_date') }} and coalesce(dep_delay_minutes, 0) < 100"),
    )),
    Mutation("int_hourly_observations_rolled_up", "each 6-hour trend is labelled an hour early, so the as-of "
             "observation's trend reaches an hour past it", (
        ("        observed_at_utc\n\n    from windowed\n    group by station_id, observed_at_utc",
         "        observed_at_utc - interval 1 hour as observed_at_utc\n\n    from windowed\n"
         "    group by station_id, windowed.observed_at_utc"),
    )),
    Mutation("int_flights_joined_to_weather", "the daily summary of the day containing the as-of time, not "
             "the last complete one", (
        ("'matched.origin_lst_utc_offset_hours - 24'", "'matched.origin_lst_utc_offset_hours'"),
    )),
    Mutation("int_flights_joined_to_route_history", "history days up to the flight's own date (lag 0, not 2)", (
        ("{%- set known_by_lag_days = 2 + flight_delays.horizon_days_back() -%}",
         "{%- set known_by_lag_days = 0 + flight_delays.horizon_days_back() -%}"),
    )),
    Mutation("int_flights_joined_to_known_outcomes", "uncensored delay of departures still on the ground", (
        UNCENSORED_DELAY,
    )),
    # The uncensored delay alone is invisible in January: no flight number runs twice from one origin within a
    # day, so every earlier run has left long before any cutoff (0 flights at every half hour of the month).
    # The planted leak also reads runs up to a day past the as-of time: the flight's own delay.
    Mutation("int_flights_joined_to_recent_runs", "runs up to a day past the as-of time, uncensored delay", (
        ("where runs.scheduled_departure_at_utc <= flights.as_of_at_utc",
         "where runs.scheduled_departure_at_utc <= flights.as_of_at_utc + interval 1 day"),
        UNCENSORED_DELAY,
    )),
    Mutation("int_flights_joined_to_previous_legs", "uncensored delay of a previous leg still on the ground", (
        ("{{ flight_delays.late_so_far_minutes(\n"
         "            flight_delays.minutes_between('leg_scheduled_departure_at_utc', 'as_of_at_utc'),\n"
         "            'leg_dep_delay_minutes', 'leg_is_cancelled') }} as late_so_far_minutes",
         "leg_dep_delay_minutes as late_so_far_minutes"),
    )),
    Mutation("int_departures_counted_by_origin_hour", "departures counted by actual, not scheduled, hour", (
        ("        scheduled_dep_hhmm\n    from {{ ref('stg_bts__flights') }}",
         "        scheduled_dep_hhmm,\n        dep_delay_minutes\n    from {{ ref('stg_bts__flights') }}"),
        ("cast(floor(scheduled_dep_hhmm / 100) as integer)",
         "cast(floor((floor(scheduled_dep_hhmm / 100) * 60 + scheduled_dep_hhmm % 100"
         " + coalesce(dep_delay_minutes, 0)) / 60) as integer)"),
    )),
    # The model reads only the calendar and the holiday seed: nothing that happens after an as-of time. The
    # planted leak gives it such an input (days whose flights averaged an hour late), to prove the guard sees
    # through it to the mart.
    Mutation("int_dates_joined_to_holidays", "'holidays' are the days whose departures averaged 60+ min late", (
        ("        holiday_date,\n        holiday_name\n    from {{ ref('us_federal_holidays') }}",
         "        flight_date as holiday_date,\n        'a bad day' as holiday_name\n"
         "    from {{ ref('stg_bts__flights') }}\n    group by flight_date\n    having avg(dep_delay_minutes) >= 60"),
    )),
)



def plant(project: Path, mutation: Mutation) -> None:
    for path in PROJECT_FILES:
        source = PROJECT_ROOT / path
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, project / path)
    if mutation.model is None:
        return
    model = next((project / "models").rglob(f"{mutation.model}.sql"))
    sql = model.read_text()
    for old, new in mutation.replacements:
        # a refactor that moves the text must not silently turn the case into a no-op
        assert old in sql, f"{model.relative_to(project)} no longer contains the text to mutate:\n{old}"
        sql = sql.replace(old, new)
    model.write_text(sql)
