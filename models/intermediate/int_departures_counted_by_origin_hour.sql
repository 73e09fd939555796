{#- One row per origin airport and scheduled local departure hour: how many departures the schedule
    holds then. Schedules are published months ahead, so this is known at any as-of time. -#}
with

flights as (

    select
        origin_airport_code,
        flight_date,
        scheduled_dep_hhmm
    from {{ ref('stg_bts__flights') }}

),

final as (

    select
        origin_airport_code,
        flight_date,
        cast(floor(scheduled_dep_hhmm / 100) as integer) as scheduled_dep_hour_local,
        count(*) as scheduled_departures
    from flights
    group by
        origin_airport_code,
        flight_date,
        cast(floor(scheduled_dep_hhmm / 100) as integer)

)

select * from final
