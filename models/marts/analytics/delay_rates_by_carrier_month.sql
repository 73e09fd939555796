{#- One row per carrier and flight month: how many flights were scheduled, cancelled and delayed. -#}
with

flights as (

    select
        carrier_code,
        flight_month,
        has_departed,
        is_cancelled,
        is_dep_delayed_15,
        dep_delay_minutes,
        arr_delay_minutes
    from {{ ref('fct_flights') }}

),

carriers as (

    select
        carrier_code,
        carrier_name
    from {{ ref('dim_carriers') }}

),

aggregated as (

    select
        carrier_code,
        flight_month,
        {{ flight_delays.delay_outcome_aggregates() }},
        avg(arr_delay_minutes) as avg_arr_delay_minutes
    from flights
    group by carrier_code, flight_month

),

final as (

    select
        -- ids
        aggregated.carrier_code,

        -- strings
        carriers.carrier_name,

        -- numerics
        aggregated.scheduled_flights,
        aggregated.departed_flights,
        aggregated.cancelled_flights,
        aggregated.dep_delayed_15_flights,
        {{ flight_delays.safe_ratio('aggregated.dep_delayed_15_flights', 'aggregated.departed_flights') }}
            as dep_delay_15_rate,
        {{ flight_delays.safe_ratio('aggregated.cancelled_flights', 'aggregated.scheduled_flights') }}
            as cancellation_rate,
        aggregated.avg_dep_delay_minutes,
        aggregated.avg_arr_delay_minutes,

        -- dates
        aggregated.flight_month

    from aggregated
    left join carriers
        on aggregated.carrier_code = carriers.carrier_code

)

select * from final
