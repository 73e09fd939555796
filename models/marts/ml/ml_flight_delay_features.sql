{#- One row per flight that departed, with the label and only features observable at the as-of time
    (scheduled departure minus `prediction_horizon_minutes`). Consumed by ml/train.py and by batch scoring,
    `flightdelay score` (flightdelay/flow/modeling.py). Incremental by month (macros/incremental_by_month.sql):
    the intermediate models computed each flight's windows, so it reads only the flights it rebuilds. -#}

with

flights as (

    select
        flight_id,
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        distance_miles,
        dep_delay_minutes,
        scheduled_dep_hhmm,
        is_cancelled,
        flight_date,
        scheduled_departure_at_local,
        scheduled_departure_at_utc,
        as_of_at_utc
    from {{ ref('int_flights_converted_to_utc') }}
    where {{ flight_delays.is_rebuilt('flight_date') }}

),

weather as (

    select
        flight_id,
        temp_f,
        dew_point_f,
        relative_humidity_pct,
        wind_direction_deg,
        wind_speed_mph,
        wind_gust_mph,
        precip_in,
        sea_level_pressure_inhg,
        visibility_mi,
        weather_age_minutes,
        precip_3h_in,
        precip_6h_in,
        min_visibility_3h_mi,
        max_wind_gust_3h_mph,
        max_wind_speed_3h_mph,
        pressure_change_3h_inhg,
        previous_day_tmax_f,
        previous_day_tmin_f,
        previous_day_precip_in,
        previous_day_avg_wind_speed_mph
    from {{ ref('int_flights_joined_to_weather') }}
    where {{ flight_delays.is_rebuilt('flight_date') }}

),

history as (

    select
        flight_id,
        route_carrier_departures_28d,
        route_carrier_delay_15_rate_28d,
        route_carrier_avg_dep_delay_minutes_28d,
        origin_hour_departures_28d,
        origin_hour_delay_15_rate_28d
    from {{ ref('int_flights_joined_to_route_history') }}
    where {{ flight_delays.is_rebuilt('flight_date') }}

),

known_outcomes as (

    select
        flight_id,
        origin_departures_known_6h,
        origin_late_15_share_6h,
        origin_late_15_share_1h,
        origin_avg_late_so_far_minutes_3h,
        origin_overdue_on_ground_6h,
        carrier_origin_late_15_share_3h,
        carrier_origin_on_ground_3h,
        origin_max_late_so_far_minutes_3h,
        origin_avg_late_so_far_minutes_30m,
        dest_departures_known_6h,
        dest_late_15_share_6h,
        dest_avg_late_so_far_minutes_6h,
        carrier_late_15_share_3h
    from {{ ref('int_flights_joined_to_known_outcomes') }}
    where {{ flight_delays.is_rebuilt('flight_date') }}

),

recent_runs as (

    select
        flight_id,
        flight_number_runs_7d,
        flight_number_late_15_share_7d,
        flight_number_avg_late_so_far_minutes_7d,
        flight_number_last_run_late_so_far_minutes
    from {{ ref('int_flights_joined_to_recent_runs') }}
    where {{ flight_delays.is_rebuilt('flight_date') }}

),

previous_legs as (

    select
        flight_id,
        previous_leg_gap_minutes,
        previous_leg_block_minutes,
        previous_leg_late_so_far_minutes,
        previous_leg_known_arr_delay_minutes,
        previous_leg_turnaround_slack_minutes,
        aircraft_age_years,
        aircraft_seat_count,
        aircraft_engine_count
    from {{ ref('int_flights_joined_to_previous_legs') }}
    where {{ flight_delays.is_rebuilt('flight_date') }}

),

congestion as (

    select
        origin_airport_code,
        flight_date,
        scheduled_dep_hour_local,
        scheduled_departures
    from {{ ref('int_departures_counted_by_origin_hour') }}

),

dates as (

    select
        calendar_date,
        days_to_nearest_holiday
    from {{ ref('int_dates_joined_to_holidays') }}

),

departed as (

    select
        flight_id,
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        distance_miles,
        cast(floor(scheduled_dep_hhmm / 100) as integer) as scheduled_dep_hour_local,
        {{ flight_delays.is_dep_delayed_15() }} as is_dep_delayed_15,
        flight_date,
        scheduled_departure_at_utc,
        as_of_at_utc
    from flights
    -- a departed flight whose delay was not reported has no label: it cannot be trained on or scored against
    where not is_cancelled and dep_delay_minutes is not null

),

joined as (

    select
        -- ids
        departed.flight_id,
        departed.carrier_code,
        departed.origin_airport_code,
        departed.dest_airport_code,

        -- label
        departed.is_dep_delayed_15,

        -- calendar and schedule features
        cast({{ flight_delays.date_part('month', 'departed.flight_date') }} as integer) as month_number,
        cast({{ flight_delays.date_part('day', 'departed.flight_date') }} as integer) as day_of_month,
        cast({{ flight_delays.date_part('dow', 'departed.flight_date') }} as integer) as day_of_week,
        departed.scheduled_dep_hour_local,
        departed.distance_miles,
        dates.days_to_nearest_holiday,
        coalesce(congestion.scheduled_departures, 0) as scheduled_departures_origin_hour,

        -- weather at the as-of time
        weather.temp_f,
        weather.dew_point_f,
        weather.relative_humidity_pct,
        weather.wind_direction_deg,
        weather.wind_speed_mph,
        weather.wind_gust_mph,
        weather.precip_in,
        weather.sea_level_pressure_inhg,
        weather.visibility_mi,
        weather.weather_age_minutes,

        -- weather trend over the hours before the as-of observation
        weather.precip_3h_in,
        weather.precip_6h_in,
        weather.min_visibility_3h_mi,
        weather.max_wind_gust_3h_mph,
        weather.max_wind_speed_3h_mph,
        weather.pressure_change_3h_inhg,

        -- recent history of the route and the origin hour (days fully known by the as-of time)
        history.route_carrier_departures_28d,
        history.route_carrier_delay_15_rate_28d,
        history.route_carrier_avg_dep_delay_minutes_28d,
        history.origin_hour_departures_28d,
        history.origin_hour_delay_15_rate_28d,

        -- departures already seen at the as-of time: same origin, same destination
        known_outcomes.origin_departures_known_6h,
        known_outcomes.origin_late_15_share_6h,
        known_outcomes.origin_late_15_share_1h,
        known_outcomes.origin_avg_late_so_far_minutes_3h,
        known_outcomes.origin_overdue_on_ground_6h,
        known_outcomes.carrier_origin_late_15_share_3h,
        known_outcomes.carrier_origin_on_ground_3h,
        known_outcomes.origin_max_late_so_far_minutes_3h,
        known_outcomes.origin_avg_late_so_far_minutes_30m,
        known_outcomes.dest_departures_known_6h,
        known_outcomes.dest_late_15_share_6h,
        known_outcomes.dest_avg_late_so_far_minutes_6h,
        known_outcomes.carrier_late_15_share_3h,

        -- the same flight's runs over the last 7 days, as seen at the as-of time
        recent_runs.flight_number_runs_7d,
        recent_runs.flight_number_late_15_share_7d,
        recent_runs.flight_number_avg_late_so_far_minutes_7d,
        recent_runs.flight_number_last_run_late_so_far_minutes,

        -- the aircraft and its previous leg
        previous_legs.previous_leg_gap_minutes,
        previous_legs.previous_leg_block_minutes,
        previous_legs.previous_leg_late_so_far_minutes,
        previous_legs.previous_leg_known_arr_delay_minutes,
        previous_legs.previous_leg_turnaround_slack_minutes,
        previous_legs.aircraft_age_years,
        previous_legs.aircraft_seat_count,
        previous_legs.aircraft_engine_count,

        -- previous local day's weather summary
        weather.previous_day_tmax_f,
        weather.previous_day_tmin_f,
        weather.previous_day_precip_in,
        weather.previous_day_avg_wind_speed_mph,

        -- dates
        departed.flight_date,

        -- timestamps
        departed.scheduled_departure_at_utc,
        departed.as_of_at_utc

    from departed
    left join weather
        on departed.flight_id = weather.flight_id
    left join history
        on departed.flight_id = history.flight_id
    left join known_outcomes
        on departed.flight_id = known_outcomes.flight_id
    left join previous_legs
        on departed.flight_id = previous_legs.flight_id
    left join recent_runs
        on departed.flight_id = recent_runs.flight_id
    left join congestion
        on departed.origin_airport_code = congestion.origin_airport_code
        and departed.flight_date = congestion.flight_date
        and departed.scheduled_dep_hour_local = congestion.scheduled_dep_hour_local
    left join dates
        on departed.flight_date = dates.calendar_date

),

-- typed as the YAML contract declares, in its order (macros/contract.sql)
final as (

    {{ flight_delays.select_as_contract('joined') }}

)

select * from final
