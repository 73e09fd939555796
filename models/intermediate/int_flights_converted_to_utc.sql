{#- A table, not a view: five models and several tests read it, and each would redo its work. Incremental by
    month (macros/incremental_by_month.sql); one row per flight, so it reads only the flights it rebuilds. -#}

with

flights as (

    select
        flight_id,
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        tail_number,
        flight_number,
        scheduled_dep_hhmm,
        scheduled_arr_hhmm,
        dep_delay_minutes,
        arr_delay_minutes,
        air_time_minutes,
        distance_miles,
        is_cancelled,
        is_diverted,
        flight_date,
        scheduled_departure_at_local,
        source_file,
        source_line,
        loaded_at
    from {{ ref('stg_bts__flights') }}
    where {{ flight_delays.is_rebuilt('flight_date') }}

),

airports as (

    select
        airport_code,
        iana_time_zone
    from {{ ref('airports') }}

),

stations as (

    select
        airport_code,
        station_id,
        lst_utc_offset_hours
    from {{ ref('airport_weather_stations') }}

),

converted as (

    select
        flights.flight_id,
        flights.carrier_code,
        flights.origin_airport_code,
        flights.dest_airport_code,
        stations.station_id as origin_station_id,
        flights.tail_number,
        airports.iana_time_zone as origin_time_zone,
        flights.source_file,
        flights.flight_number,
        flights.scheduled_dep_hhmm,
        flights.scheduled_arr_hhmm,
        flights.dep_delay_minutes,
        flights.arr_delay_minutes,
        flights.air_time_minutes,
        flights.distance_miles,
        stations.lst_utc_offset_hours as origin_lst_utc_offset_hours,
        flights.source_line,
        flights.is_cancelled,
        flights.is_diverted,
        flights.flight_date,
        flights.scheduled_departure_at_local,
        flights.loaded_at,
        {{ flight_delays.local_to_utc('flights.scheduled_departure_at_local', 'airports.iana_time_zone') }}
            as scheduled_departure_at_utc,
        {#- BTS gives the arrival as a local clock time only: one earlier than the departure's is the next day -#}
        {{ flight_delays.local_to_utc(flight_delays.hhmm_to_timestamp(
            "case when flights.scheduled_arr_hhmm < flights.scheduled_dep_hhmm then "
            ~ dbt.dateadd('day', 1, 'flights.flight_date') ~ " else flights.flight_date end",
            'flights.scheduled_arr_hhmm'), 'dest_airports.iana_time_zone') }}
            as scheduled_arrival_at_utc
    from flights
    left join airports
        on flights.origin_airport_code = airports.airport_code
    left join airports as dest_airports
        on flights.dest_airport_code = dest_airports.airport_code
    left join stations
        on flights.origin_airport_code = stations.airport_code

),

final as (

    select
        converted.*,
        {{ flight_delays.add_minutes('scheduled_departure_at_utc', -var('prediction_horizon_minutes')) }}
            as as_of_at_utc
    from converted

)

select * from final
