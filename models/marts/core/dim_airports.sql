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

final as (

    select
        -- ids
        airports.airport_code,
        stations.station_id as weather_station_id,
        stations.wban_id as weather_station_wban_id,

        -- strings
        airports.airport_name,
        airports.iana_time_zone,

        -- numerics
        airports.latitude,
        airports.longitude,
        airports.altitude_ft,

        -- booleans
        stations.station_id is not null as has_weather_station

    from airports
    left join stations
        on airports.airport_code = stations.airport_code

)

select * from final
