{#- One row per calendar day (vars calendar_start_date .. calendar_end_date) with its distance to the nearest US federal holiday. -#}
with

calendar as (

    {{ flight_delays.date_spine(var('calendar_start_date'), var('calendar_end_date')) }}

),

holidays as (

    select
        holiday_date,
        holiday_name
    from {{ ref('us_federal_holidays') }}

),

distances as (

    select
        calendar.calendar_date,
        holidays.holiday_name,
        {{ flight_delays.days_between('calendar.calendar_date', 'holidays.holiday_date') }} as days_to_holiday
    from calendar
    cross join holidays

),

summarised as (

    select
        calendar_date,
        min(case when days_to_holiday >= 0 then days_to_holiday end) as days_until_next_holiday,
        min(case when days_to_holiday <= 0 then -days_to_holiday end) as days_since_previous_holiday,
        max(case when days_to_holiday = 0 then holiday_name end) as holiday_name
    from distances
    group by calendar_date

),

final as (

    select
        calendar_date,
        holiday_name,
        days_until_next_holiday,
        days_since_previous_holiday,
        case
            when days_until_next_holiday is null then days_since_previous_holiday
            when days_since_previous_holiday is null then days_until_next_holiday
            when days_until_next_holiday < days_since_previous_holiday then days_until_next_holiday
            else days_since_previous_holiday
        end as days_to_nearest_holiday,
        holiday_name is not null as is_holiday
    from summarised

)

select * from final
