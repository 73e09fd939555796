with

source as (

    select * from {{ source('weather_lake', 'cdo_daily_summaries') }}

),

renamed as (

    select
        -- ids
        cast(station_id as {{ dbt.type_string() }}) as station_id,
        cast(wban_id as {{ dbt.type_string() }}) as wban_id,
        cast(airport_code as {{ dbt.type_string() }}) as airport_code,
        cast(ghcnd_station_id as {{ dbt.type_string() }}) as ghcnd_station_id,

        -- numerics
        tmax_f,
        tmin_f,
        tavg_f,
        precip_in,
        snowfall_in,
        avg_wind_speed_mph,

        -- strings
        cast(qc_failed_elements as {{ dbt.type_string() }}) as qc_failed_elements,
        cast(source_file as {{ dbt.type_string() }}) as source_file,

        -- dates (local standard time)
        cast(summary_date as date) as summary_date_lst

    from source

)

select * from renamed
