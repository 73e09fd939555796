{#- Unknown members: an airport code that appears in the flights but not in the airports seed gets an
    inferred row (name 'Unknown airport XXX', no location or time zone), so every fact row joins. -#}
with

airports as (

    select
        airport_code,
        airport_name,
        latitude,
        longitude,
        altitude_ft,
        iana_time_zone
    from {{ ref('airports') }}

),

stations as (

    select
        airport_code,
        station_id,
        wban_id
    from {{ ref('airport_weather_stations') }}

),

flight_airports as (

    select origin_airport_code as airport_code
    from {{ ref('stg_bts__flights') }}

    union

    select dest_airport_code as airport_code
    from {{ ref('stg_bts__flights') }}

),

-- a union matches columns by position: both branches name theirs in the same order
with_inferred as (

    select
        airport_code,
        airport_name,
        latitude,
        longitude,
        altitude_ft,
        iana_time_zone,
        false as is_inferred_member
    from airports

    union all

    select
        flight_airports.airport_code,
        'Unknown airport ' || flight_airports.airport_code as airport_name,
        cast(null as double precision) as latitude,
        cast(null as double precision) as longitude,
        cast(null as integer) as altitude_ft,
        cast(null as {{ dbt.type_string() }}) as iana_time_zone,
        true as is_inferred_member
    from flight_airports
    left join airports
        on flight_airports.airport_code = airports.airport_code
    where airports.airport_code is null

),

final as (

    select
        -- ids
        with_inferred.airport_code,
        stations.station_id as weather_station_id,
        stations.wban_id as weather_station_wban_id,

        -- strings
        with_inferred.airport_name,
        with_inferred.iana_time_zone,

        -- numerics
        with_inferred.latitude,
        with_inferred.longitude,
        with_inferred.altitude_ft,

        -- booleans
        stations.station_id is not null as has_weather_station,
        with_inferred.is_inferred_member

    from with_inferred
    left join stations
        on with_inferred.airport_code = stations.airport_code

)

select * from final
