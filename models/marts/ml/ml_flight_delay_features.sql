{#- One row per flight that departed, with the label and only features observable at the as-of time
    (scheduled departure minus `prediction_horizon_hours`). Consumed by ml/train.py and ml/score.py. -#}
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
        previous_day_tmax_f,
        previous_day_tmin_f,
        previous_day_precip_in,
        previous_day_avg_wind_speed_mph
    from {{ ref('int_flights_joined_to_weather') }}

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
        case when dep_delay_minutes >= 15 then 1 else 0 end as is_dep_delayed_15,
        flight_date,
        scheduled_departure_at_utc,
        as_of_at_utc
    from flights
    where not is_cancelled

),

final as (

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
    left join congestion
        on departed.origin_airport_code = congestion.origin_airport_code
        and departed.flight_date = congestion.flight_date
        and departed.scheduled_dep_hour_local = congestion.scheduled_dep_hour_local
    left join dates
        on departed.flight_date = dates.calendar_date

)

select * from final
