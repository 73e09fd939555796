-- Are flights near a federal holiday later than usual? Delay rate by distance to the nearest holiday.
with

flights as (

    select
        flight_date,
        is_dep_delayed_15
    from {{ ref('fct_flights') }}
    where has_departed

),

dates as (

    select
        date_day,
        days_to_nearest_holiday
    from {{ ref('dim_dates') }}

),

final as (

    select
        least(dates.days_to_nearest_holiday, 8) as days_to_nearest_holiday_capped,
        count(*) as departed_flights,
        avg(case when flights.is_dep_delayed_15 then 1.0 else 0.0 end) as dep_delay_15_rate
    from flights
    inner join dates
        on flights.flight_date = dates.date_day
    group by least(dates.days_to_nearest_holiday, 8)

)

select * from final
order by days_to_nearest_holiday_capped
