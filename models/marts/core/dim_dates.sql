with

dates as (

    select
        calendar_date,
        holiday_name,
        days_until_next_holiday,
        days_since_previous_holiday,
        days_to_nearest_holiday,
        is_holiday
    from {{ ref('int_dates_joined_to_holidays') }}

),

final as (

    select
        -- ids
        calendar_date as date_day,

        -- strings
        holiday_name,

        -- numerics
        cast({{ flight_delays.date_part('year', 'calendar_date') }} as integer) as year_number,
        cast({{ flight_delays.date_part('month', 'calendar_date') }} as integer) as month_number,
        cast({{ flight_delays.date_part('day', 'calendar_date') }} as integer) as day_of_month,
        cast({{ flight_delays.date_part('dow', 'calendar_date') }} as integer) as day_of_week,
        -- bigint on every engine (PostgreSQL's date difference is an integer), as the contract says
        cast(days_until_next_holiday as bigint) as days_until_next_holiday,
        cast(days_since_previous_holiday as bigint) as days_since_previous_holiday,
        cast(days_to_nearest_holiday as bigint) as days_to_nearest_holiday,

        -- booleans
        is_holiday,
        cast({{ flight_delays.date_part('dow', 'calendar_date') }} as integer) in (0, 6) as is_weekend

    from dates

)

select * from final
