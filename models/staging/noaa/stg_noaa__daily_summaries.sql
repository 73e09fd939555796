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
        tmax_f,
        tmin_f,
        precip_in,
        avg_wind_speed_mph,
        max_wind_gust_mph,
        min_visibility_mi,
        observation_count,
        summary_date
    from {{ source('weather_lake', 'daily_summaries') }}

),

renamed as (

    select
        -- ids
        cast(station_id as {{ dbt.type_string() }}) as station_id,
        cast(wban_id as {{ dbt.type_string() }}) as wban_id,
        cast(airport_code as {{ dbt.type_string() }}) as airport_code,

        -- numerics
        tmax_f,
        tmin_f,
        precip_in,
        avg_wind_speed_mph,
        max_wind_gust_mph,
        min_visibility_mi,
        observation_count,

        -- dates (local standard time)
        cast(summary_date as date) as summary_date_lst

    from source

)

select * from renamed
