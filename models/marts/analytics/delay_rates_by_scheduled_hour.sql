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

aggregated as (

    select
        origin_airport_code,
        scheduled_dep_hour_local,
        {{ flight_delays.delay_outcome_aggregates() }}
    from with_hour
    group by origin_airport_code, scheduled_dep_hour_local

),

final as (

    select
        -- ids
        origin_airport_code,

        -- numerics
        scheduled_dep_hour_local,
        scheduled_flights,
        departed_flights,
        cancelled_flights,
        dep_delayed_15_flights,
        {{ flight_delays.safe_ratio('dep_delayed_15_flights', 'departed_flights') }} as dep_delay_15_rate,
        avg_dep_delay_minutes

    from aggregated

)

select * from final
