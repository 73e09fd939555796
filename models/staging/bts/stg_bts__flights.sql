with

source as (

    select
        fl_date,
        op_unique_carrier,
        tail_num,
        op_carrier_fl_num,
        origin,
        dest,
        crs_dep_time,
        dep_time,
        dep_delay,
        crs_arr_time,
        arr_time,
        arr_delay,
        cancelled,
        diverted,
        air_time,
        distance,
        source_file,
        source_line,
        loaded_at
    from {{ source('bts', 'flights') }}

),

-- Extracts without a flight number (course and Kaggle files, the BTS form with few boxes ticked) key a
-- flight by date, carrier, origin, destination and scheduled minute; the rare flights that share all five
-- (two aircraft on one route in the same minute) are numbered in file order.
numbered as (

    select
        *,
        cast(null as bigint) as same_minute_ordinal
    from source
    where op_carrier_fl_num is not null

    union all

    select
        *,
        row_number() over (
            partition by fl_date, op_unique_carrier, origin, dest, crs_dep_time
            order by source_file, source_line
        ) as same_minute_ordinal
    from source
    where op_carrier_fl_num is null

),

renamed as (

    select
        -- ids
        case
            when op_carrier_fl_num is not null
                then {{ flight_delays.surrogate_key(
                    ['fl_date', 'op_unique_carrier', 'op_carrier_fl_num', 'origin', 'crs_dep_time']
                ) }}
            else {{ flight_delays.surrogate_key(
                ['fl_date', 'op_unique_carrier', 'origin', 'dest', 'crs_dep_time', 'same_minute_ordinal']
            ) }}
        end as flight_id,
        op_unique_carrier as carrier_code,
        origin as origin_airport_code,
        dest as dest_airport_code,

        -- strings
        tail_num as tail_number,
        source_file,

        -- numerics
        op_carrier_fl_num as flight_number,
        crs_dep_time as scheduled_dep_hhmm,
        dep_time as actual_dep_hhmm,
        crs_arr_time as scheduled_arr_hhmm,
        arr_time as actual_arr_hhmm,
        dep_delay as dep_delay_minutes,
        arr_delay as arr_delay_minutes,
        air_time as air_time_minutes,
        distance as distance_miles,
        source_line,

        -- booleans
        coalesce(cancelled = 1, false) as is_cancelled,
        coalesce(diverted = 1, false) as is_diverted,

        -- dates
        fl_date as flight_date,

        -- timestamps
        {{ flight_delays.hhmm_to_timestamp('fl_date', 'crs_dep_time') }} as scheduled_departure_at_local,
        loaded_at

    from numbered

)

select * from renamed
