{#- One row per flight: how the same carrier's flights on the same route, and all flights from the same
    origin in the same scheduled hour, fared over the 28 days before the flight - counting only days whose
    departures had all happened before the flight's as-of time (see `known_by_lag_days`). -#}
{#- A table, not a view: the feature mart and three data tests read it; the joins run once. -#}
{#- Day D's flights have as-of times from D - horizon_days_back() 00:00 (local) on. A history day H counts only
    if every departure counted on it (those that left before H+1 00:00) is known by then: H <= D - lag. -#}
{%- set known_by_lag_days = 2 + flight_delays.horizon_days_back() -%}
{%- set window_days = 28 -%}
with

flights as (

    select
        flight_id,
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        scheduled_dep_hhmm,
        dep_delay_minutes,
        is_cancelled,
        flight_date,
        scheduled_departure_at_local
    from {{ ref('int_flights_converted_to_utc') }}
    where {{ flight_delays.is_in_lookback('flight_date', known_by_lag_days + window_days) }}

),

-- the flights this run writes; `flights` also holds the earlier ones their windows read
rebuilt_flights as (

    {{ flight_delays.rebuilt_rows('flights') }}

),

-- outcomes per day; a departure delayed past the next midnight is left out (not yet known then)
daily_outcomes as (

    select
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        cast(floor(scheduled_dep_hhmm / 100) as integer) as scheduled_dep_hour_local,
        flight_date,
        count(*) as departed_flights,
        sum(case when {{ flight_delays.is_dep_delayed_15() }} then 1 else 0 end) as dep_delayed_15_flights,
        sum(dep_delay_minutes) as total_dep_delay_minutes
    from flights
    where not is_cancelled
        and dep_delay_minutes is not null
        and dep_delay_minutes < {{ flight_delays.minutes_between(
            'scheduled_departure_at_local', "cast(" ~ dbt.dateadd('day', 1, 'flight_date') ~ " as timestamp)") }}
    group by
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        cast(floor(scheduled_dep_hhmm / 100) as integer),
        flight_date

),

route_days as (

    select
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        flight_date,
        sum(departed_flights) as departed_flights,
        sum(dep_delayed_15_flights) as dep_delayed_15_flights,
        sum(total_dep_delay_minutes) as total_dep_delay_minutes
    from daily_outcomes
    group by carrier_code, origin_airport_code, dest_airport_code, flight_date

),

origin_hour_days as (

    select
        origin_airport_code,
        scheduled_dep_hour_local,
        flight_date,
        sum(departed_flights) as departed_flights,
        sum(dep_delayed_15_flights) as dep_delayed_15_flights
    from daily_outcomes
    group by origin_airport_code, scheduled_dep_hour_local, flight_date

),

-- the history is the same for every flight of a route (or origin and hour) on a date: computed once per
-- such date over its 28 history dates, as equi-joins (macros/dates_back.sql), then joined to the flights
route_dates as (

    select distinct
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        flight_date
    from rebuilt_flights

),

route_history_dates as (

    {{ flight_delays.dates_back(
        'route_dates',
        ['carrier_code', 'origin_airport_code', 'dest_airport_code', 'flight_date'],
        dbt.dateadd('day', -known_by_lag_days, 'flight_date'), window_days - 1, 'history_date'
    ) }}

),

route_history as (

    {{ flight_delays.sum_over_history_dates(
        'route_history_dates', 'route_days',
        ['carrier_code', 'origin_airport_code', 'dest_airport_code'],
        ['departed_flights', 'dep_delayed_15_flights', 'total_dep_delay_minutes']
    ) }}

),

origin_hour_dates as (

    select distinct
        origin_airport_code,
        cast(floor(scheduled_dep_hhmm / 100) as integer) as scheduled_dep_hour_local,
        flight_date
    from rebuilt_flights

),

origin_hour_history_dates as (

    {{ flight_delays.dates_back(
        'origin_hour_dates',
        ['origin_airport_code', 'scheduled_dep_hour_local', 'flight_date'],
        dbt.dateadd('day', -known_by_lag_days, 'flight_date'), window_days - 1, 'history_date'
    ) }}

),

origin_hour_history as (

    {{ flight_delays.sum_over_history_dates(
        'origin_hour_history_dates', 'origin_hour_days',
        ['origin_airport_code', 'scheduled_dep_hour_local'],
        ['departed_flights', 'dep_delayed_15_flights']
    ) }}

),

final as (

    select
        -- ids
        flights.flight_id,

        -- numerics
        coalesce(route_history.departed_flights, 0) as route_carrier_departures_28d,
        {{ flight_delays.safe_ratio('route_history.dep_delayed_15_flights', 'route_history.departed_flights') }}
            as route_carrier_delay_15_rate_28d,
        {{ flight_delays.safe_ratio('route_history.total_dep_delay_minutes', 'route_history.departed_flights') }}
            as route_carrier_avg_dep_delay_minutes_28d,
        coalesce(origin_hour_history.departed_flights, 0) as origin_hour_departures_28d,
        {{ flight_delays.safe_ratio('origin_hour_history.dep_delayed_15_flights', 'origin_hour_history.departed_flights') }}
            as origin_hour_delay_15_rate_28d,

        -- dates
        flights.flight_date

    from rebuilt_flights as flights
    left join route_history
        on flights.carrier_code = route_history.carrier_code
        and flights.origin_airport_code = route_history.origin_airport_code
        and flights.dest_airport_code = route_history.dest_airport_code
        and flights.flight_date = route_history.flight_date
    left join origin_hour_history
        on flights.origin_airport_code = origin_hour_history.origin_airport_code
        and cast(floor(flights.scheduled_dep_hhmm / 100) as integer) = origin_hour_history.scheduled_dep_hour_local
        and flights.flight_date = origin_hour_history.flight_date

)

select * from final
