{#- One row per origin airport and scheduled local departure hour (0-23), over all loaded months. -#}
with

flights as (

    select
        origin_airport_code,
        scheduled_departure_at_local,
        has_departed,
        is_cancelled,
        is_dep_delayed_15,
        dep_delay_minutes
    from {{ ref('fct_flights') }}

),

with_hour as (

    select
        flights.*,
        cast({{ flight_delays.date_part('hour', 'scheduled_departure_at_local') }} as integer)
            as scheduled_dep_hour_local
    from flights

),

final as (

    select
        -- ids
        origin_airport_code,

        -- numerics
        scheduled_dep_hour_local,
        count(*) as scheduled_flights,
        sum(case when has_departed then 1 else 0 end) as departed_flights,
        sum(case when is_cancelled then 1 else 0 end) as cancelled_flights,
        sum(case when is_dep_delayed_15 then 1 else 0 end) as dep_delayed_15_flights,
        {{ flight_delays.safe_ratio('sum(case when is_dep_delayed_15 then 1 else 0 end)',
                                    'sum(case when has_departed then 1 else 0 end)') }} as dep_delay_15_rate,
        avg(case when has_departed then dep_delay_minutes end) as avg_dep_delay_minutes

    from with_hour
    group by origin_airport_code, scheduled_dep_hour_local

)

select * from final
