{#- numerator / denominator as a float, null when the denominator is 0 (no division-by-zero error and no
    integer division on engines that truncate). -#}
{% macro safe_ratio(numerator, denominator) -%}
    cast({{ numerator }} as double precision) / nullif({{ denominator }}, 0)
{%- endmacro %}
