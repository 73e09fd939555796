{#- Deterministic key from business columns: md5 of the values joined with a separator that cannot
    occur in them, nulls spelled out so (a, null) and (null, a) differ. -#}
{% macro surrogate_key(columns) -%}
    {{ return(adapter.dispatch('surrogate_key', 'flight_delays')(columns)) }}
{%- endmacro %}

{% macro default__surrogate_key(columns) -%}
    md5(
        {%- for column in columns %}
        coalesce(cast({{ column }} as {{ dbt.type_string() }}), '<null>'){% if not loop.last %} || '|' ||{% endif %}
        {%- endfor %}
    )
{%- endmacro %}
