{#- Incremental by month (macros/incremental_by_month.sql): a run rebuilds the flights dated on or after the
    first month whose raw files changed, deleting and re-inserting them, so rows dropped from a re-delivered
    file disappear too. Earlier months are not touched. -#}

with

flights as (

    select *
    from {{ ref('int_flights_converted_to_utc') }}
    where {{ flight_delays.is_rebuilt('flight_date') }}

),

final as (

    select
        -- ids
        -- varchar as the contract declares it: on PostgreSQL the id built by || is `text`, and an incremental
        -- run refuses a column whose type differs from the table's (on_schema_change = 'fail')
        cast(flight_id as varchar) as flight_id,
        carrier_code,
        origin_airport_code,
        dest_airport_code,

        -- strings
        tail_number,
        source_file,

        -- numerics
        flight_number,
        dep_delay_minutes,
        arr_delay_minutes,
        air_time_minutes,
        distance_miles,
        source_line,

        -- booleans
        is_cancelled,
        is_diverted,
        not is_cancelled as has_departed,
        {{ flight_delays.is_dep_delayed_15() }} as is_dep_delayed_15,

        -- dates
        flight_date,
        cast({{ dbt.date_trunc('month', 'flight_date') }} as date) as flight_month,

        -- timestamps
        scheduled_departure_at_local,
        scheduled_departure_at_utc,
        loaded_at as source_loaded_at,
        {{ flight_delays.utc_now() }} as transformed_at_utc

    from flights

)

select * from final
