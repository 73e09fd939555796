{#- One row per station and hourly observation, with the weather trend over the hours before it:
    precipitation sums, pressure change, lowest visibility and strongest gust. Only observations at or
    before the row's own time are used, so joining a flight to its as-of observation leaks nothing. -#}
{#- A table, not a view: every flight's as-of lookup reads it, so the windows are computed once. -#}
{{ config(materialized='table') }}
with

observations as (

    select
        station_id,
        observed_at_utc,
        precip_in,
        sea_level_pressure_inhg,
        visibility_mi,
        wind_gust_mph,
        wind_speed_mph
    from {{ ref('stg_noaa__hourly_observations') }}

),

observations_by_hour as (

    select
        *,
        {{ dbt.date_trunc('hour', 'observed_at_utc') }} as observed_hour_at_utc
    from observations

),

-- each observation once per clock hour its 6-hour window touches (macros/unrolled_windows.sql)
current_observation_hours as (

    {{ flight_delays.hours_back(
        'observations',
        ['station_id', 'observed_at_utc', 'sea_level_pressure_inhg'],
        'observed_at_utc', 6, 'earlier_hour_at_utc'
    ) }}

),

-- a self-join on a 6-hour window instead of RANGE frames, which Redshift lacks
windowed as (

    select
        current_obs.station_id,
        current_obs.observed_at_utc,
        current_obs.sea_level_pressure_inhg,
        earlier_obs.observed_at_utc as earlier_observed_at_utc,
        earlier_obs.precip_in as earlier_precip_in,
        earlier_obs.sea_level_pressure_inhg as earlier_pressure_inhg,
        earlier_obs.visibility_mi as earlier_visibility_mi,
        earlier_obs.wind_gust_mph as earlier_wind_gust_mph,
        earlier_obs.wind_speed_mph as earlier_wind_speed_mph,
        earlier_obs.observed_at_utc > {{ flight_delays.add_hours('current_obs.observed_at_utc', -3) }}
            as is_within_3h
    from current_observation_hours as current_obs
    inner join observations_by_hour as earlier_obs
        on current_obs.station_id = earlier_obs.station_id
        and current_obs.earlier_hour_at_utc = earlier_obs.observed_hour_at_utc
        and current_obs.observed_at_utc >= earlier_obs.observed_at_utc
        and earlier_obs.observed_at_utc > {{ flight_delays.add_hours('current_obs.observed_at_utc', -6) }}

),

final as (

    select
        -- ids
        station_id,

        -- numerics
        -- sums and means over exact decimals: float sums depend on the order the join delivers rows in,
        -- which is not fixed, and a rerun must reproduce every feature to the last bit
        {{ flight_delays.exact_sum('case when is_within_3h then earlier_precip_in end') }} as precip_3h_in,
        {{ flight_delays.exact_sum('earlier_precip_in') }} as precip_6h_in,
        min(case when is_within_3h then earlier_visibility_mi end) as min_visibility_3h_mi,
        max(case when is_within_3h then earlier_wind_gust_mph end) as max_wind_gust_3h_mph,
        max(case when is_within_3h then earlier_wind_speed_mph end) as max_wind_speed_3h_mph,
        -- change against the reports 3 to 2 hours earlier (one report on the hourly cycle)
        max(sea_level_pressure_inhg) - cast(avg(
            case
                when earlier_observed_at_utc <= {{ flight_delays.add_hours('observed_at_utc', -2) }}
                    and earlier_observed_at_utc >= {{ flight_delays.add_hours('observed_at_utc', -3) }}
                    then cast(earlier_pressure_inhg as {{ flight_delays.exact_decimal() }})
            end
        ) as double precision) as pressure_change_3h_inhg,
        count(*) as observations_6h,

        -- timestamps
        observed_at_utc

    from windowed
    group by station_id, observed_at_utc

)

select * from final
