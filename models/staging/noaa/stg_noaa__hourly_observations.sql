with

source as (

    select * from {{ source('weather_lake', 'hourly_observations') }}

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
