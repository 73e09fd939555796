{#- The outcome counts every delay-rate mart reports, over rows of fct_flights (or its columns):
    scheduled, departed, cancelled and 15+-minute-delayed flights and the mean departure delay.
    Counts are bigint on every engine (DuckDB's sum of integers is a hugeint), as the marts' contracts say. -#}
{% macro delay_outcome_aggregates() -%}
        count(*) as scheduled_flights,
        cast(sum(case when has_departed then 1 else 0 end) as bigint) as departed_flights,
        cast(sum(case when is_cancelled then 1 else 0 end) as bigint) as cancelled_flights,
        cast(sum(case when is_dep_delayed_15 then 1 else 0 end) as bigint) as dep_delayed_15_flights,
        avg(case when has_departed then dep_delay_minutes end) as avg_dep_delay_minutes
{%- endmacro %}
