{#- One row per flight: how the same flight (carrier, flight number, origin) fared on its runs scheduled in the
    7 days before the flight's as-of time T, as seen at T (the same rules as int_flights_joined_to_known_outcomes).
    A flight number keeps its slot, aircraft rotation and crew pattern from day to day; its recent runs say more
    about it than the route's 28-day rate. -#}
{#- runs up to 7 days before the as-of time: back to this many local dates before the flight's -#}
{%- set lookback_days = 8 + flight_delays.horizon_days_back() -%}
with

flights as (

    select
        flight_id,
        carrier_code,
        flight_number,
        origin_airport_code,
        flight_date,
        dep_delay_minutes,
        is_cancelled,
        scheduled_departure_at_utc,
        as_of_at_utc
    from {{ ref('int_flights_converted_to_utc') }}
    where {{ flight_delays.is_in_lookback('flight_date', lookback_days) }}

),

-- the flights this run writes; `flights` also holds the earlier ones their windows read
rebuilt_flights as (

    {{ flight_delays.rebuilt_rows('flights') }}

),

-- each flight once per local date its look-back reaches: the join below is then an equi-join
flights_by_run_date as (

    {{ flight_delays.dates_back(
        'rebuilt_flights',
        ['flight_id', 'carrier_code', 'flight_number', 'origin_airport_code', 'as_of_at_utc'],
        'flight_date', lookback_days, 'run_flight_date'
    ) }}

),

runs_in_window as (

    select
        flights.flight_id,
        runs.flight_id as run_flight_id,
        runs.scheduled_departure_at_utc as run_scheduled_departure_at_utc,
        runs.dep_delay_minutes,
        runs.is_cancelled,
        {{ flight_delays.minutes_between('runs.scheduled_departure_at_utc', 'flights.as_of_at_utc') }}
            as minutes_since_scheduled
    from flights_by_run_date as flights
    inner join flights as runs
        on flights.carrier_code = runs.carrier_code
        and flights.flight_number = runs.flight_number
        and flights.origin_airport_code = runs.origin_airport_code
        and flights.run_flight_date = runs.flight_date
    where runs.scheduled_departure_at_utc <= flights.as_of_at_utc
        and runs.scheduled_departure_at_utc > {{ flight_delays.add_hours('flights.as_of_at_utc', -7 * 24) }}

),

visible_outcomes as (

    select
        flight_id,
        {{ flight_delays.is_status_known() }} as is_status_known,
        {{ flight_delays.is_known_late_15() }} as is_known_late_15,
        {{ flight_delays.late_so_far_minutes() }} as late_so_far_minutes,
        -- two runs at one scheduled time (a re-numbered or duplicated record) are ordered by id, so the last run is
        -- the same one on every build
        row_number() over (
            partition by flight_id
            order by run_scheduled_departure_at_utc desc, run_flight_id asc
        ) as recency_rank
    from runs_in_window

),

aggregated as (

    select
        flight_id,
        count(*) as runs,
        sum(is_status_known) as runs_known,
        sum(is_known_late_15) as runs_late_15,
        avg(late_so_far_minutes) as avg_late_so_far_minutes,
        max(case when recency_rank = 1 then late_so_far_minutes end) as last_run_late_so_far_minutes
    from visible_outcomes
    group by flight_id

),

final as (

    select
        -- ids
        flights.flight_id,

        -- numerics
        -- unknown, not zero, when the file carried no flight number
        case when flights.flight_number is not null then coalesce(aggregated.runs, 0) end as flight_number_runs_7d,
        {{ flight_delays.safe_ratio('aggregated.runs_late_15', 'aggregated.runs_known') }}
            as flight_number_late_15_share_7d,
        aggregated.avg_late_so_far_minutes as flight_number_avg_late_so_far_minutes_7d,
        aggregated.last_run_late_so_far_minutes as flight_number_last_run_late_so_far_minutes,

        -- dates
        flights.flight_date

    from rebuilt_flights as flights
    left join aggregated
        on flights.flight_id = aggregated.flight_id

)

select * from final
