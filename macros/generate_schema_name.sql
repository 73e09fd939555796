{#- Custom schemas are used as named (raw, staging, marts, ...), not prefixed with the target schema:
    the loader, the GX gates and the ML step address `marts.fct_flights` on every engine.
    Write-audit-publish: `flightdelay build` sets var marts_schema=marts_audit, so the marts are built and
    tested there and only copied to `marts` by `flightdelay publish` once every gate has passed. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif custom_schema_name | trim == 'marts' -%}
        {{ var('marts_schema', 'marts') }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
