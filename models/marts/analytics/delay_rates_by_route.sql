{#- One row per route (origin -> destination airport), over all loaded months. -#}
with

flights as (

    select
        origin_airport_code,
        dest_airport_code,
        carrier_code,
        distance_miles,
        has_departed,
        is_cancelled,
        is_dep_delayed_15,
        dep_delay_minutes,
        arr_delay_minutes
    from {{ ref('fct_flights') }}

),

aggregated as (

    select
        origin_airport_code,
        dest_airport_code,
        {{ flight_delays.delay_outcome_aggregates() }},
        count(distinct carrier_code) as carriers_flying,
        avg(arr_delay_minutes) as avg_arr_delay_minutes,
        max(distance_miles) as distance_miles
    from flights
    group by origin_airport_code, dest_airport_code

),

final as (

    select
        -- ids
        {{ flight_delays.surrogate_key(['origin_airport_code', 'dest_airport_code']) }} as route_id,
        origin_airport_code,
        dest_airport_code,

        -- numerics
        scheduled_flights,
        carriers_flying,
        departed_flights,
        cancelled_flights,
        dep_delayed_15_flights,
        {{ flight_delays.safe_ratio('dep_delayed_15_flights', 'departed_flights') }} as dep_delay_15_rate,
        {{ flight_delays.safe_ratio('cancelled_flights', 'scheduled_flights') }} as cancellation_rate,
        avg_dep_delay_minutes,
        avg_arr_delay_minutes,
        distance_miles

    from aggregated

)

select * from final
