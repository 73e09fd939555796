{#- Prod targets (var `prod_targets`: the ones the flow builds) use custom schemas as named (raw, staging,
    marts, ...), not prefixed with the target schema: the loader, the GX gates and the ML step address
    `marts.fct_flights` on every engine.
    Write-audit-publish: `flightdelay build` sets var marts_schema=marts_audit, so the marts are built and
    tested there and only copied to `marts` by `flightdelay publish` once every gate has passed.
    Every other target (`dev`, the default) prefixes them with its own schema (`dev_staging`, `dev_marts`,
    ...), so a plain `dbt build` never touches what is published. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {%- set schema_name = target.schema -%}
    {%- elif custom_schema_name | trim == 'marts' -%}
        {%- set schema_name = var('marts_schema', 'marts') -%}
    {%- else -%}
        {%- set schema_name = custom_schema_name | trim -%}
    {%- endif -%}
    {%- if target.name in var('prod_targets') or schema_name == target.schema -%}
        {{ schema_name }}
    {%- else -%}
        {{ target.schema }}_{{ schema_name }}
    {%- endif -%}
{%- endmacro %}
