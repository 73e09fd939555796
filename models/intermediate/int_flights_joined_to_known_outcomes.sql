{#- One row per flight: how the departures from the same origin (to the same destination, of the same carrier)
    scheduled in the hours before the flight's as-of time T are faring, as far as anyone watching the departure board saw at T.
    A departure scheduled at S is known to be 15+ minutes late (or cancelled) from S + 15 min on; its delay is
    only known once it left, so before then it counts as "late so far" by T - S minutes (censored). -#}
{#- Look-back per side, hours; the column names say them: change them together.
    Each side is computed at the coarsest grain its features depend on, then joined to the flights: the origin
    side per flight (it splits by the flight's own carrier), the destination side per destination and as-of time,
    the carrier side per carrier and as-of time. The carrier side counts statuses only, which depend on the
    scheduled minute alone, so it joins departures counted per carrier and minute. At national scale many
    flights share a destination or carrier and an as-of time, and the joins shrink as much. -#}
{%- set origin_window_hours = 6 -%}
{%- set dest_window_hours = 6 -%}
{%- set carrier_window_hours = 3 -%}
{#- the local dates an as-of time's look-back can reach before the flight's own (incremental_by_month.sql) -#}
{%- set lookback_days = 2 + flight_delays.horizon_days_back() -%}
with

flights as (

    select
        flight_id,
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        dep_delay_minutes,
        is_cancelled,
        flight_date,
        scheduled_departure_at_utc,
        as_of_at_utc
    from {{ ref('int_flights_converted_to_utc') }}
    where {{ flight_delays.is_in_lookback('flight_date', lookback_days) }}

),

-- the flights this run writes; `flights` also holds the earlier ones their windows read
rebuilt_flights as (

    {{ flight_delays.rebuilt_rows('flights') }}

),

earlier_departures as (

    select
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        dep_delay_minutes,
        is_cancelled,
        scheduled_departure_at_utc,
        {{ dbt.date_trunc('hour', 'scheduled_departure_at_utc') }} as scheduled_hour_at_utc
    from flights

),

dest_as_of_times as (

    select distinct
        dest_airport_code,
        as_of_at_utc
    from rebuilt_flights

),

carrier_as_of_times as (

    select distinct
        carrier_code,
        as_of_at_utc
    from rebuilt_flights

),

-- once per scheduled hour the look-back window touches: an equi-join key for the range joins
origin_as_of_hours as (

    {{ flight_delays.hours_back(
        'rebuilt_flights', ['flight_id', 'carrier_code', 'origin_airport_code', 'as_of_at_utc'],
        'as_of_at_utc', origin_window_hours, 'scheduled_hour_at_utc'
    ) }}

),

dest_as_of_hours as (

    {{ flight_delays.hours_back(
        'dest_as_of_times', ['dest_airport_code', 'as_of_at_utc'],
        'as_of_at_utc', dest_window_hours, 'scheduled_hour_at_utc'
    ) }}

),

carrier_as_of_hours as (

    {{ flight_delays.hours_back(
        'carrier_as_of_times', ['carrier_code', 'as_of_at_utc'],
        'as_of_at_utc', carrier_window_hours, 'scheduled_hour_at_utc'
    ) }}

),

{%- set sides = [
    ('origin', 'origin_airport_code', origin_window_hours, ['flight_id'], true),
    ('dest', 'dest_airport_code', dest_window_hours, ['dest_airport_code', 'as_of_at_utc'], false),
] -%}
{% for side, key, side_window_hours, grain, splits_by_carrier in sides %}
    {{ side }}_departures_in_window as (

        select
            {{ side }}_as_of_hours.{{ grain | join(', ' ~ side ~ '_as_of_hours.') }},
            earlier_departures.dep_delay_minutes,
            earlier_departures.is_cancelled,
            {{ (side ~ '_as_of_hours.carrier_code = earlier_departures.carrier_code as is_same_carrier,')
               if splits_by_carrier }}
            {{ flight_delays.minutes_between('earlier_departures.scheduled_departure_at_utc',
                                             side ~ '_as_of_hours.as_of_at_utc') }}
                as minutes_since_scheduled
        from {{ side }}_as_of_hours
        inner join earlier_departures
            on {{ side }}_as_of_hours.{{ key }} = earlier_departures.{{ key }}
            and {{ side }}_as_of_hours.scheduled_hour_at_utc = earlier_departures.scheduled_hour_at_utc
        where {{ side }}_as_of_hours.hours_back <= {{ side_window_hours }}
            and earlier_departures.scheduled_departure_at_utc <= {{ side }}_as_of_hours.as_of_at_utc
            and earlier_departures.scheduled_departure_at_utc
            > {{ flight_delays.add_hours(side ~ '_as_of_hours.as_of_at_utc', -side_window_hours) }}

    ),

    -- only what the departure board showed at the as-of time (macros/departure_board.sql)
    {{ side }}_visible_outcomes as (

        select
            {{ grain | join(', ') }},
            {{ 'is_same_carrier,' if splits_by_carrier }}
            minutes_since_scheduled,
            {{ flight_delays.is_status_known() }} as is_status_known,
            {{ flight_delays.is_known_late_15() }} as is_known_late_15,
            {{ flight_delays.is_on_ground() }} as is_on_ground,
            {{ flight_delays.late_so_far_minutes() }} as late_so_far_minutes
        from {{ side }}_departures_in_window

    ),

{% endfor %}

carrier_departures_by_minute as (

    select
        carrier_code,
        scheduled_departure_at_utc,
        scheduled_hour_at_utc,
        count(*) as departures,
        sum({{ flight_delays.is_late_15() }}) as late_15_departures
    from earlier_departures
    group by carrier_code, scheduled_departure_at_utc, scheduled_hour_at_utc

),

carrier_departures_in_window as (

    select
        carrier_as_of_hours.carrier_code,
        carrier_as_of_hours.as_of_at_utc,
        carrier_departures_by_minute.departures,
        carrier_departures_by_minute.late_15_departures,
        {{ flight_delays.minutes_between('carrier_departures_by_minute.scheduled_departure_at_utc',
                                         'carrier_as_of_hours.as_of_at_utc') }}
            as minutes_since_scheduled
    from carrier_as_of_hours
    inner join carrier_departures_by_minute
        on carrier_as_of_hours.carrier_code = carrier_departures_by_minute.carrier_code
        and carrier_as_of_hours.scheduled_hour_at_utc = carrier_departures_by_minute.scheduled_hour_at_utc
    where carrier_departures_by_minute.scheduled_departure_at_utc <= carrier_as_of_hours.as_of_at_utc
        and carrier_departures_by_minute.scheduled_departure_at_utc
        > {{ flight_delays.add_hours('carrier_as_of_hours.as_of_at_utc', -carrier_window_hours) }}

),

origin_aggregated as (

    select
        flight_id,
        sum(is_status_known) as departures_known_6h,
        sum(is_known_late_15) as late_15_6h,
        sum(case when minutes_since_scheduled < 60 then is_status_known else 0 end) as departures_known_1h,
        sum(case when minutes_since_scheduled < 60 then is_known_late_15 else 0 end) as late_15_1h,
        avg(case when minutes_since_scheduled < 180 then late_so_far_minutes end) as avg_late_so_far_minutes_3h,
        sum(case when minutes_since_scheduled >= 15 then is_on_ground else 0 end) as overdue_on_ground_6h,
        sum(case when is_same_carrier and minutes_since_scheduled < 180 then is_status_known else 0 end)
            as carrier_departures_known_3h,
        sum(case when is_same_carrier and minutes_since_scheduled < 180 then is_known_late_15 else 0 end)
            as carrier_late_15_3h,
        sum(case when is_same_carrier and minutes_since_scheduled < 180 then is_on_ground else 0 end)
            as carrier_on_ground_3h,
        max(case when minutes_since_scheduled < 180 then late_so_far_minutes end) as max_late_so_far_minutes_3h,
        avg(case when minutes_since_scheduled <= 30 then late_so_far_minutes end) as avg_late_so_far_minutes_30m
    from origin_visible_outcomes
    group by flight_id

),

dest_aggregated as (

    select
        dest_airport_code,
        as_of_at_utc,
        sum(is_status_known) as departures_known_6h,
        sum(is_known_late_15) as late_15_6h,
        avg(late_so_far_minutes) as avg_late_so_far_minutes_6h
    from dest_visible_outcomes
    group by dest_airport_code, as_of_at_utc

),

carrier_aggregated as (

    -- the board's rule (macros/departure_board.sql) applied to a minute's departures at once
    select
        carrier_code,
        as_of_at_utc,
        sum({{ flight_delays.is_status_known() }} * departures) as departures_known_3h,
        sum({{ flight_delays.is_status_known() }} * late_15_departures) as late_15_3h
    from carrier_departures_in_window
    group by carrier_code, as_of_at_utc

),

final as (

    select
        -- ids
        flights.flight_id,

        -- numerics: departures from the same origin
        coalesce(origin_aggregated.departures_known_6h, 0) as origin_departures_known_6h,
        {{ flight_delays.safe_ratio('origin_aggregated.late_15_6h', 'origin_aggregated.departures_known_6h') }}
            as origin_late_15_share_6h,
        {{ flight_delays.safe_ratio('origin_aggregated.late_15_1h', 'origin_aggregated.departures_known_1h') }}
            as origin_late_15_share_1h,
        origin_aggregated.avg_late_so_far_minutes_3h as origin_avg_late_so_far_minutes_3h,
        coalesce(origin_aggregated.overdue_on_ground_6h, 0) as origin_overdue_on_ground_6h,
        {{ flight_delays.safe_ratio('origin_aggregated.carrier_late_15_3h', 'origin_aggregated.carrier_departures_known_3h') }}
            as carrier_origin_late_15_share_3h,
        coalesce(origin_aggregated.carrier_on_ground_3h, 0) as carrier_origin_on_ground_3h,
        origin_aggregated.max_late_so_far_minutes_3h as origin_max_late_so_far_minutes_3h,
        origin_aggregated.avg_late_so_far_minutes_30m as origin_avg_late_so_far_minutes_30m,

        -- numerics: departures (from any origin here) to the same destination
        coalesce(dest_aggregated.departures_known_6h, 0) as dest_departures_known_6h,
        {{ flight_delays.safe_ratio('dest_aggregated.late_15_6h', 'dest_aggregated.departures_known_6h') }}
            as dest_late_15_share_6h,
        dest_aggregated.avg_late_so_far_minutes_6h as dest_avg_late_so_far_minutes_6h,

        -- numerics: the same carrier's departures from every origin here
        {{ flight_delays.safe_ratio('carrier_aggregated.late_15_3h', 'carrier_aggregated.departures_known_3h') }}
            as carrier_late_15_share_3h,

        -- dates
        flights.flight_date

    from rebuilt_flights as flights
    left join origin_aggregated
        on flights.flight_id = origin_aggregated.flight_id
    left join dest_aggregated
        on flights.dest_airport_code = dest_aggregated.dest_airport_code
        and flights.as_of_at_utc = dest_aggregated.as_of_at_utc
    left join carrier_aggregated
        on flights.carrier_code = carrier_aggregated.carrier_code
        and flights.as_of_at_utc = carrier_aggregated.as_of_at_utc

)

select * from final
