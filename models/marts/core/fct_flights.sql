with

flights as (

    select
        flight_id,
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        tail_number,
        source_file,
        flight_number,
        dep_delay_minutes,
        arr_delay_minutes,
        air_time_minutes,
        distance_miles,
        source_line,
        is_cancelled,
        is_diverted,
        flight_date,
        scheduled_departure_at_local,
        scheduled_departure_at_utc
    from {{ ref('int_flights_converted_to_utc') }}

),

final as (

    select
        -- ids
        flight_id,
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
        case when not is_cancelled then dep_delay_minutes >= 15 end as is_dep_delayed_15,

        -- dates
        flight_date,

        -- timestamps
        scheduled_departure_at_local,
        scheduled_departure_at_utc

    from flights

)

select * from final
