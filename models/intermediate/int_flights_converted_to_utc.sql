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

scheduled as (

    select
        flights.*,
        airports.iana_time_zone as origin_time_zone,
        dest_airports.iana_time_zone as dest_time_zone,
        stations.station_id as origin_station_id,
        stations.lst_utc_offset_hours as origin_lst_utc_offset_hours,
        {#- BTS gives the arrival as a local clock time only: one earlier than the departure's is the next day -#}
        {{ flight_delays.hhmm_to_timestamp(
            "case when flights.scheduled_arr_hhmm < flights.scheduled_dep_hhmm then "
            ~ dbt.dateadd('day', 1, 'flights.flight_date') ~ " else flights.flight_date end",
            'flights.scheduled_arr_hhmm') }} as scheduled_arrival_at_local
    from flights
    left join airports
        on flights.origin_airport_code = airports.airport_code
    left join airports as dest_airports
        on flights.dest_airport_code = dest_airports.airport_code
    left join stations
        on flights.origin_airport_code = stations.airport_code

),

-- every local clock hour a departure or an arrival falls in, per zone
zone_hours as (

    select
        origin_time_zone as iana_time_zone,
        {{ dbt.date_trunc('hour', 'scheduled_departure_at_local') }} as local_hour
    from scheduled
    union
    select
        dest_time_zone as iana_time_zone,
        {{ dbt.date_trunc('hour', 'scheduled_arrival_at_local') }} as local_hour
    from scheduled

),

-- a zone's offset from UTC for a whole local hour, to the second (local mean times before 1972 had seconds), when
-- it is the same at the hour's first and last minute (a zone changes its offset at most once an hour): each flight
-- then takes its zone's offset instead of a time-zone conversion of its own, which costs 25 CPU-seconds per 10M
-- flights on DuckDB. An hour whose offset changes inside it (Lord Howe Island's half-hour change) has no row, and
-- its flights are converted one by one.
zone_hour_offsets as (

    select
        iana_time_zone,
        local_hour,
        {{ dbt.datediff('local_hour', flight_delays.local_to_utc('local_hour', 'iana_time_zone'), 'second') }}
            as utc_minus_local_seconds
    from zone_hours
    where {{ dbt.datediff('local_hour', flight_delays.local_to_utc('local_hour', 'iana_time_zone'), 'second') }}
        = {{ dbt.datediff(
            flight_delays.add_minutes('local_hour', 59),
            flight_delays.local_to_utc(flight_delays.add_minutes('local_hour', 59), 'iana_time_zone'), 'second') }}

),

converted as (

    select
        scheduled.flight_id,
        scheduled.carrier_code,
        scheduled.origin_airport_code,
        scheduled.dest_airport_code,
        scheduled.origin_station_id,
        scheduled.tail_number,
        scheduled.origin_time_zone,
        scheduled.source_file,
        scheduled.flight_number,
        scheduled.scheduled_dep_hhmm,
        scheduled.scheduled_arr_hhmm,
        scheduled.dep_delay_minutes,
        scheduled.arr_delay_minutes,
        scheduled.air_time_minutes,
        scheduled.distance_miles,
        scheduled.origin_lst_utc_offset_hours,
        scheduled.source_line,
        scheduled.is_cancelled,
        scheduled.is_diverted,
        scheduled.flight_date,
        scheduled.scheduled_departure_at_local,
        scheduled.loaded_at,
        {{ flight_delays.local_to_utc_by_hour_offset('scheduled.scheduled_departure_at_local',
            'departure_offsets.utc_minus_local_seconds', 'scheduled.origin_time_zone') }} as scheduled_departure_at_utc,
        {{ flight_delays.local_to_utc_by_hour_offset('scheduled.scheduled_arrival_at_local',
            'arrival_offsets.utc_minus_local_seconds', 'scheduled.dest_time_zone') }} as scheduled_arrival_at_utc
    from scheduled
    left join zone_hour_offsets as departure_offsets
        on scheduled.origin_time_zone = departure_offsets.iana_time_zone
        and {{ dbt.date_trunc('hour', 'scheduled.scheduled_departure_at_local') }} = departure_offsets.local_hour
    left join zone_hour_offsets as arrival_offsets
        on scheduled.dest_time_zone = arrival_offsets.iana_time_zone
        and {{ dbt.date_trunc('hour', 'scheduled.scheduled_arrival_at_local') }} = arrival_offsets.local_hour

),

final as (

    select
        converted.*,
        {{ flight_delays.add_minutes('scheduled_departure_at_utc', -var('prediction_horizon_minutes')) }}
            as as_of_at_utc
    from converted

)

select * from final
