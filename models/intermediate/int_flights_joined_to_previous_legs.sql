{#- One row per flight: the aircraft's previous departure scheduled at or before the flight's as-of time T
    (within 24 h) and what was visible of it at T, plus the aircraft's registry attributes. A late inbound
    aircraft is the commonest cause of a late departure; the return leg is not in the data, so the slack is
    estimated as if the aircraft flew back in the outbound leg's scheduled block time. -#}
{#- legs up to 24 h before the as-of time: back to this many local dates before the flight's -#}
{%- set lookback_days = 2 + flight_delays.horizon_days_back() -%}
with

flights as (

    select
        flight_id,
        tail_number,
        flight_date,
        dep_delay_minutes,
        arr_delay_minutes,
        is_cancelled,
        scheduled_departure_at_utc,
        scheduled_arrival_at_utc,
        as_of_at_utc
    from {{ ref('int_flights_converted_to_utc') }}
    where {{ flight_delays.is_in_lookback('flight_date', lookback_days) }}

),

-- the flights this run writes; `flights` also holds the earlier ones their windows read
rebuilt_flights as (

    {{ flight_delays.rebuilt_rows('flights') }}

),

aircraft as (

    select
        tail_number,
        year_built,
        seat_count,
        engine_count
    from {{ ref('aircraft') }}

),

-- each flight once per local date its look-back reaches: the join below is then an equi-join
flights_by_leg_date as (

    {{ flight_delays.dates_back(
        'rebuilt_flights',
        ['flight_id', 'tail_number', 'scheduled_departure_at_utc', 'as_of_at_utc'],
        'flight_date', lookback_days, 'leg_flight_date'
    ) }}

),

earlier_legs as (

    select
        flights.flight_id,
        flights.scheduled_departure_at_utc,
        flights.as_of_at_utc,
        legs.scheduled_departure_at_utc as leg_scheduled_departure_at_utc,
        legs.scheduled_arrival_at_utc as leg_scheduled_arrival_at_utc,
        legs.dep_delay_minutes as leg_dep_delay_minutes,
        legs.arr_delay_minutes as leg_arr_delay_minutes,
        legs.is_cancelled as leg_is_cancelled,
        row_number() over (
            partition by flights.flight_id
            order by legs.scheduled_departure_at_utc desc, legs.flight_id asc
        ) as recency_rank
    from flights_by_leg_date as flights
    inner join flights as legs
        on flights.tail_number = legs.tail_number
        and flights.leg_flight_date = legs.flight_date
    where legs.scheduled_departure_at_utc <= flights.as_of_at_utc
        and legs.scheduled_departure_at_utc > {{ flight_delays.add_hours('flights.as_of_at_utc', -24) }}

),

-- only what the departure board showed at the as-of time (macros/departure_board.sql)
previous_leg as (

    select
        flight_id,
        {{ flight_delays.minutes_between('leg_scheduled_departure_at_utc', 'scheduled_departure_at_utc') }}
            as gap_minutes,
        {{ flight_delays.minutes_between('leg_scheduled_departure_at_utc', 'leg_scheduled_arrival_at_utc') }}
            as block_minutes,
        {{ flight_delays.late_so_far_minutes(
            flight_delays.minutes_between('leg_scheduled_departure_at_utc', 'as_of_at_utc'),
            'leg_dep_delay_minutes', 'leg_is_cancelled') }} as late_so_far_minutes,
        -- an arrival delay is known once the aircraft has landed
        case
            when leg_arr_delay_minutes <= {{ flight_delays.minutes_between('leg_scheduled_arrival_at_utc', 'as_of_at_utc') }}
                then leg_arr_delay_minutes
        end as known_arr_delay_minutes
    from earlier_legs
    where recency_rank = 1

),

final as (

    select
        -- ids
        flights.flight_id,

        -- numerics: the aircraft's previous leg
        previous_leg.gap_minutes as previous_leg_gap_minutes,
        previous_leg.block_minutes as previous_leg_block_minutes,
        previous_leg.late_so_far_minutes as previous_leg_late_so_far_minutes,
        previous_leg.known_arr_delay_minutes as previous_leg_known_arr_delay_minutes,
        previous_leg.gap_minutes - 2 * previous_leg.block_minutes - previous_leg.late_so_far_minutes
            as previous_leg_turnaround_slack_minutes,

        -- numerics: the aircraft
        {{ flight_delays.date_part('year', 'flights.flight_date') }} - aircraft.year_built as aircraft_age_years,
        aircraft.seat_count as aircraft_seat_count,
        aircraft.engine_count as aircraft_engine_count,

        -- dates
        flights.flight_date

    from rebuilt_flights as flights
    left join previous_leg
        on flights.flight_id = previous_leg.flight_id
    left join aircraft
        on flights.tail_number = aircraft.tail_number

)

select * from final
