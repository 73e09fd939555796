with

source as (

    select * from {{ source('weather_lake', 'daily_summaries') }}

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
