{#- One row per calendar day (vars calendar_start_date .. calendar_end_date): MetricFlow's time spine, which
    it joins to fill days without flights and to compute cumulative and offset metrics. Built from the
    same spine as dim_dates rather than selected from it, so it does not wait for the marts' publish. -#}
with

calendar as (

    {{ flight_delays.date_spine(var('calendar_start_date'), var('calendar_end_date')) }}

),

final as (

    select calendar_date as date_day
    from calendar

)

select * from final
