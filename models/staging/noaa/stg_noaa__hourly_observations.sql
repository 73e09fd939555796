{#- A table on DuckDB, not a view: the lake's files are named by its pointer when the model builds, and a
    view would keep naming that run's folder, which a later `prep` deletes. The table holds what this build
    read, so every model of the build sees one lake run. Spectrum (Redshift) keeps the late-binding view. -#}
{{ config(materialized='table' if target.type == 'duckdb' else 'view') }}

with

source as (

    select
        station_id,
        wban_id,
        airport_code,
        temp_f,
        dew_point_f,
        relative_humidity_pct,
        wind_direction_deg,
        wind_speed_mph,
        wind_gust_mph,
        precip_in,
        sea_level_pressure_inhg,
        visibility_mi,
        is_variable_wind,
        has_trace_precip,
        has_suspect_value,
        observed_at_lst,
        observed_at_utc
    from {{ source('weather_lake', 'hourly_observations') }}

),

renamed as (

    select
        -- ids
        cast(station_id as {{ dbt.type_string() }}) as station_id,
        cast(wban_id as {{ dbt.type_string() }}) as wban_id,
        cast(airport_code as {{ dbt.type_string() }}) as airport_code,

        -- numerics
        temp_f,
        dew_point_f,
        relative_humidity_pct,
        wind_direction_deg,
        wind_speed_mph,
        wind_gust_mph,
        precip_in,
        sea_level_pressure_inhg,
        visibility_mi,

        -- booleans
        is_variable_wind,
        has_trace_precip,
        has_suspect_value,

        -- timestamps (Parquet stores instants; the session time zone is UTC, so these are UTC wall clock)
        cast(observed_at_lst as timestamp) as observed_at_lst,
        cast(observed_at_utc as timestamp) as observed_at_utc

    from source

)

select * from renamed
