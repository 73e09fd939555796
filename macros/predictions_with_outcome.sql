{#- The scored flights whose outcome is known, one row per model and flight: the month and the 0/1 outcome the
    monitoring marts (fct_model_performance_by_month, fct_model_calibration_by_month) aggregate. -#}
{% macro predictions_with_outcome() -%}
    select
        model_id,
        cast({{ dbt.date_trunc('month', 'flight_date') }} as date) as flight_month,
        delay_15_probability,
        case when is_dep_delayed_15 then 1 else 0 end as delayed_15
    from {{ ref('fct_flight_delay_predictions') }}
    where is_dep_delayed_15 is not null
{%- endmacro %}
