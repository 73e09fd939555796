{#- Custom schemas are used as named (raw, staging, marts, ...), not prefixed with the target schema:
    the loader, the GX gates and the ML step address `marts.fct_flights` on every engine. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
