{#- One row per day from start_date to end_date inclusive, as `calendar_date`, in plain SQL that runs on
    every engine here (Redshift has no generate_series over tables). -#}
{% macro date_spine(start_date, end_date) -%}
    with digits as (
        select 0 as d union all select 1 union all select 2 union all select 3 union all select 4
        union all select 5 union all select 6 union all select 7 union all select 8 union all select 9
    ),

    offsets as (
        select ones.d + 10 * tens.d + 100 * hundreds.d + 1000 * thousands.d + 10000 * ten_thousands.d
            as day_offset
        from digits as ones
        cross join digits as tens
        cross join digits as hundreds
        cross join digits as thousands
        cross join digits as ten_thousands
    )

    select cast({{ dbt.dateadd('day', 'day_offset', "cast('" ~ start_date ~ "' as date)") }} as date) as calendar_date
    from offsets
    where day_offset <= {{ flight_delays.days_between("cast('" ~ start_date ~ "' as date)", "cast('" ~ end_date ~ "' as date)") }}
{%- endmacro %}
