{#- Sum of a float column, computed over exact decimals and returned as a float. Float addition depends on
    the order rows arrive in, which a parallel join does not fix; a rebuild must reproduce every feature to
    the last bit (the leakage and write-audit-publish tests compare them exactly). -#}
{% macro exact_sum(expression) -%}
    cast(sum(cast({{ expression }} as {{ dbt.type_numeric() }})) as {{ dbt.type_float() }})
{%- endmacro %}
