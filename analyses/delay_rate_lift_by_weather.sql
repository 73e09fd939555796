-- How much does each weather condition raise the delay rate over the factor's calmest bucket?
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

calmest as (

    select
        weather_factor,
        dep_delay_15_rate as calm_rate
    from buckets
    where bucket_order = 0

),

final as (

    select
        buckets.weather_factor,
        buckets.bucket,
        buckets.departed_flights,
        buckets.dep_delay_15_rate,
        buckets.dep_delay_15_rate / nullif(calmest.calm_rate, 0) as lift_over_calmest
    from buckets
    inner join calmest
        on buckets.weather_factor = calmest.weather_factor

)

select * from final
order by weather_factor, lift_over_calmest
