-- How much does each weather condition raise the delay rate over the factor's calmest bucket?
-- Buckets are ordered by the factor's value, and the calm end differs: precipitation and wind are calmest
-- at their lowest bucket ('none', '< 10 mph'), visibility at its highest ('>= 5 mi'; '< 1 mi' is fog).
with

buckets as (

    select
        weather_factor,
        bucket,
        bucket_order,
        departed_flights,
        dep_delay_15_rate
    from {{ ref('delay_rates_by_weather_condition') }}
    where bucket != 'unknown'

),

calmest_orders as (

    select
        weather_factor,
        case
            when weather_factor = 'visibility' then max(bucket_order)
            else min(bucket_order)
        end as calmest_bucket_order
    from buckets
    group by weather_factor

),

calmest as (

    select
        buckets.weather_factor,
        buckets.bucket as calmest_bucket,
        buckets.dep_delay_15_rate as calm_rate
    from buckets
    inner join calmest_orders
        on buckets.weather_factor = calmest_orders.weather_factor
        and buckets.bucket_order = calmest_orders.calmest_bucket_order

),

final as (

    select
        buckets.weather_factor,
        buckets.bucket,
        calmest.calmest_bucket,
        buckets.departed_flights,
        buckets.dep_delay_15_rate,
        buckets.dep_delay_15_rate / nullif(calmest.calm_rate, 0) as lift_over_calmest
    from buckets
    inner join calmest
        on buckets.weather_factor = calmest.weather_factor

)

select * from final
order by weather_factor, lift_over_calmest
