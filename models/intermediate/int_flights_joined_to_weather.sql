{#- A table, not a view: five models and several tests read it, and each would redo its work. Incremental by
    month (macros/incremental_by_month.sql): it reads only the flights it rebuilds, each matched on its own. -#}

{#- One row per flight: the origin's latest hourly observation at or before the as-of time
    (scheduled departure minus the prediction horizon), and the origin's daily summary for the last
    local-standard-time day that had ended by then: the one the Spark job made from the LCD hourly reports,
    or, for a day those reports do not cover, NOAA's own (CDO exports, GHCN-Daily files). Nothing observed
    after the as-of time is used. -#}

{#- what both daily sources give, in one order: `union all` pairs columns by position -#}
{%- set daily_summary_columns = ['station_id', 'tmax_f', 'tmin_f', 'precip_in', 'avg_wind_speed_mph',
                                 'summary_date_lst'] %}

with

flights as (

    select
        flight_id,
        origin_station_id,
        origin_lst_utc_offset_hours,
        flight_date,
        as_of_at_utc
    from {{ ref('int_flights_converted_to_utc') }}
    where {{ flight_delays.is_rebuilt('flight_date') }}

),

observations as (

    select
        station_id,
        temp_f,
        dew_point_f,
        relative_humidity_pct,
        wind_direction_deg,
        wind_speed_mph,
        wind_gust_mph,
        precip_in,
        sea_level_pressure_inhg,
        visibility_mi,
        observed_at_utc
    from {{ ref('stg_noaa__hourly_observations') }}

),

trends as (

    select
        station_id,
        observed_at_utc,
        precip_3h_in,
        precip_6h_in,
        min_visibility_3h_mi,
        max_wind_gust_3h_mph,
        max_wind_speed_3h_mph,
        pressure_change_3h_inhg
    from {{ ref('int_hourly_observations_rolled_up') }}

),

lcd_daily_summaries as (

    select {{ daily_summary_columns | join(', ') }}
    from {{ ref('stg_noaa__daily_summaries') }}

),

noaa_daily_summaries as (

    select {{ daily_summary_columns | join(', ') }}
    from {{ ref('stg_noaa__cdo_daily_summaries') }}

),

-- a whole day's summary from one source, never fields of two: the LCD's where it has the day
daily_summaries as (

    select * from lcd_daily_summaries

    union all

    select noaa_daily_summaries.*
    from noaa_daily_summaries
    left join lcd_daily_summaries
        on noaa_daily_summaries.station_id = lcd_daily_summaries.station_id
        and noaa_daily_summaries.summary_date_lst = lcd_daily_summaries.summary_date_lst
    where lcd_daily_summaries.station_id is null

),

matched as (

    {{ flight_delays.asof_join(
        spine='flights',
        spine_key='origin_station_id',
        spine_time='as_of_at_utc',
        events='observations',
        event_key='station_id',
        event_time='observed_at_utc',
        max_age_hours=var('max_weather_staleness_hours')
    ) }}

),

with_previous_day as (

    select
        matched.flight_id,
        matched.origin_station_id,
        matched.flight_date,
        matched.as_of_at_utc,
        matched.matched_event_at,
        -- the LST day before the one containing the as-of time is the last complete day
        cast({{ flight_delays.add_hours('matched.as_of_at_utc', 'matched.origin_lst_utc_offset_hours - 24') }} as date)
            as previous_day_lst
    from matched

),

final as (

    select
        -- ids
        with_previous_day.flight_id,
        with_previous_day.origin_station_id as weather_station_id,

        -- numerics
        observations.temp_f,
        observations.dew_point_f,
        observations.relative_humidity_pct,
        observations.wind_direction_deg,
        observations.wind_speed_mph,
        observations.wind_gust_mph,
        observations.precip_in,
        observations.sea_level_pressure_inhg,
        observations.visibility_mi,
        {{ flight_delays.minutes_between('observations.observed_at_utc', 'with_previous_day.as_of_at_utc') }}
            as weather_age_minutes,
        trends.precip_3h_in,
        trends.precip_6h_in,
        trends.min_visibility_3h_mi,
        trends.max_wind_gust_3h_mph,
        trends.max_wind_speed_3h_mph,
        trends.pressure_change_3h_inhg,
        daily_summaries.tmax_f as previous_day_tmax_f,
        daily_summaries.tmin_f as previous_day_tmin_f,
        daily_summaries.precip_in as previous_day_precip_in,
        daily_summaries.avg_wind_speed_mph as previous_day_avg_wind_speed_mph,

        -- dates
        with_previous_day.flight_date,
        with_previous_day.previous_day_lst,

        -- timestamps
        with_previous_day.as_of_at_utc,
        observations.observed_at_utc as weather_observed_at_utc

    from with_previous_day
    left join observations
        on with_previous_day.origin_station_id = observations.station_id
        and with_previous_day.matched_event_at = observations.observed_at_utc
    left join trends
        on with_previous_day.origin_station_id = trends.station_id
        and with_previous_day.matched_event_at = trends.observed_at_utc
    left join daily_summaries
        on with_previous_day.origin_station_id = daily_summaries.station_id
        and with_previous_day.previous_day_lst = daily_summaries.summary_date_lst

)

select * from final
