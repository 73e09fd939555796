{#- Sum of a float column, computed over exact decimals and returned as a float. Float addition depends on
    the order rows arrive in, which a parallel join does not fix; a rebuild must reproduce every feature to
    the last bit (the leakage and write-audit-publish tests compare them exactly). -#}
{% macro exact_sum(expression, decimal=none) -%}
    cast(sum(cast({{ expression }} as {{ decimal or flight_delays.exact_decimal() }})) as double precision)
{%- endmacro %}

{#- Mean of a float expression, summed as exact_sum sums but to 18 decimals: the monitoring marts' probabilities,
    squared errors and logs need more than the 6 weather values do. Null when every value is. -#}
{% macro exact_mean(expression) -%}
    {{ flight_delays.exact_sum(expression, 'numeric(38, 18)') }} / nullif(count({{ expression }}), 0)
{%- endmacro %}

{#- The decimal the exact sums and means go through, spelled out: dbt.type_numeric() is numeric(28,6) on DuckDB but
    unbounded `numeric` on PostgreSQL, and the two engines must compute the same features to the last bit.
    Weather values have at most 3 decimals (inches of rain, inches of mercury); 6 keep every mean of them exact
    enough that its double is the same. -#}
{% macro exact_decimal() -%}
    numeric(28, 6)
{%- endmacro %}
