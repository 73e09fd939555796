-- Which routes with real volume are most often late? Routes with at least 1,000 departures, worst first.
with

routes as (

    select
        origin_airport_code,
        dest_airport_code,
        departed_flights,
        dep_delay_15_rate,
        avg_dep_delay_minutes
    from {{ ref('delay_rates_by_route') }}
    where departed_flights >= 1000

)

select *
from routes
order by dep_delay_15_rate desc
limit 20
