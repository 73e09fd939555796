{#- One row per weather factor (precipitation, visibility, wind) and bucket of its value at the origin
    at the as-of time; flights with no usable observation fall in the bucket 'unknown'. -#}
with

flights as (

    select
        flight_id,
        has_departed,
        is_dep_delayed_15,
        dep_delay_minutes
    from {{ ref('fct_flights') }}
    where has_departed

),

weather as (

    select
        flight_id,
        precip_in,
        visibility_mi,
        wind_speed_mph
    from {{ ref('int_flights_joined_to_weather') }}

),

buckets as (

    select
        flights.flight_id,
        flights.is_dep_delayed_15,
        flights.dep_delay_minutes,
        case
            when weather.precip_in is null then 'unknown'
            when weather.precip_in = 0 then 'none'
            when weather.precip_in < 0.1 then 'light (< 0.1 in/h)'
            when weather.precip_in < 0.3 then 'moderate (0.1-0.3 in/h)'
            else 'heavy (>= 0.3 in/h)'
        end as precipitation_bucket,
        case
            when weather.precip_in is null then 9
            when weather.precip_in = 0 then 0
            when weather.precip_in < 0.1 then 1
            when weather.precip_in < 0.3 then 2
            else 3
        end as precipitation_order,
        case
            when weather.visibility_mi is null then 'unknown'
            when weather.visibility_mi < 1 then '< 1 mi'
            when weather.visibility_mi < 3 then '1-3 mi'
            when weather.visibility_mi < 5 then '3-5 mi'
            else '>= 5 mi'
        end as visibility_bucket,
        case
            when weather.visibility_mi is null then 9
            when weather.visibility_mi < 1 then 0
            when weather.visibility_mi < 3 then 1
            when weather.visibility_mi < 5 then 2
            else 3
        end as visibility_order,
        case
            when weather.wind_speed_mph is null then 'unknown'
            when weather.wind_speed_mph < 10 then '< 10 mph'
            when weather.wind_speed_mph < 20 then '10-20 mph'
            when weather.wind_speed_mph < 30 then '20-30 mph'
            else '>= 30 mph'
        end as wind_bucket,
        case
            when weather.wind_speed_mph is null then 9
            when weather.wind_speed_mph < 10 then 0
            when weather.wind_speed_mph < 20 then 1
            when weather.wind_speed_mph < 30 then 2
            else 3
        end as wind_order
    from flights
    left join weather
        on flights.flight_id = weather.flight_id

),

unpivoted as (

    select
        'precipitation' as weather_factor,
        precipitation_bucket as bucket,
        precipitation_order as bucket_order,
        is_dep_delayed_15,
        dep_delay_minutes
    from buckets

    union all

    select
        'visibility' as weather_factor,
        visibility_bucket as bucket,
        visibility_order as bucket_order,
        is_dep_delayed_15,
        dep_delay_minutes
    from buckets

    union all

    select
        'wind' as weather_factor,
        wind_bucket as bucket,
        wind_order as bucket_order,
        is_dep_delayed_15,
        dep_delay_minutes
    from buckets

),

final as (

    select
        -- strings
        weather_factor,
        bucket,

        -- numerics
        bucket_order,
        count(*) as departed_flights,
        cast(sum(case when is_dep_delayed_15 then 1 else 0 end) as bigint) as dep_delayed_15_flights,
        {{ flight_delays.safe_ratio('sum(case when is_dep_delayed_15 then 1 else 0 end)', 'count(*)') }}
            as dep_delay_15_rate,
        avg(dep_delay_minutes) as avg_dep_delay_minutes

    from unpivoted
    group by weather_factor, bucket, bucket_order

)

select * from final
