{#- Unit tests on a dev target that has not been built yet. A dict/csv fixture takes its column types from
    the input's relation, which a fresh dev target does not have (dbt's own answer is `--defer --state` or a
    prior `dbt build --empty`); here it falls back to the same relation in the published schemas, as
    `--defer` would. Everything else is dbt's get_fixture_sql (dbt-adapters 1.24, global_project/macros/
    unit_test_sql/get_fixture_sql.sql), which a root-project macro of the same name overrides. -#}

{#- The relation a dev target's relation stands for in the published (prod) schemas: `dev_staging.x` ->
    `staging.x`; a prod target's relation is its own. -#}
{% macro published_relation(relation) -%}
    {%- set prefix = target.schema ~ '_' -%}
    {%- if target.name in var('prod_targets') or not relation.schema.startswith(prefix) -%}
        {{ return(relation) }}
    {%- endif -%}
    {{ return(relation.incorporate(path={'schema': relation.schema[prefix | length:]})) }}
{%- endmacro %}

{% macro get_fixture_sql(rows, column_name_to_data_types) %}
-- Fixture for {{ model.name }}
{% set default_row = {} %}

{%- if not column_name_to_data_types -%}
{#-- Use defer_relation IFF it is available in the manifest and 'this' is missing from the database;
      without --defer, the published relation (this project's change) --#}
{%-   set this_or_defer_relation = this -%}
{%-   if not load_relation(this) -%}
{%-     set this_or_defer_relation = defer_relation or flight_delays.published_relation(this) -%}
{%-   endif -%}
{%-   set columns_in_relation = adapter.get_columns_in_relation(this_or_defer_relation) -%}

{%-   set column_name_to_data_types = {} -%}
{%-   set column_name_to_quoted = {} -%}
{%-   for column in columns_in_relation -%}

{#-- This needs to be a case-insensitive comparison --#}
{%-     do column_name_to_data_types.update({column.name|lower: column.data_type}) -%}
{%-     do column_name_to_quoted.update({column.name|lower: column.quoted}) -%}
{%-   endfor -%}
{%- endif -%}

{%- if not column_name_to_data_types -%}
    {{ exceptions.raise_compiler_error("Not able to get columns for unit test '" ~ model.name ~ "' from relation " ~ this ~ " because the relation doesn't exist") }}
{%- endif -%}

{%- for column_name, column_type in column_name_to_data_types.items() -%}
    {%- do default_row.update({column_name: (safe_cast("null", column_type) | trim )}) -%}
{%- endfor -%}

{{ validate_fixture_rows(rows, row_number) }}

{%- for row in rows -%}
{%-   set formatted_row = format_row(row, column_name_to_data_types) -%}
{%-   set default_row_copy = default_row.copy() -%}
{%-   do default_row_copy.update(formatted_row) -%}
select
{%-   for column_name, column_value in default_row_copy.items() %} {{ column_value }} as {{ column_name_to_quoted[column_name] }}{% if not loop.last -%}, {%- endif %}
{%-   endfor %}
{%-   if not loop.last %}
union all
{%    endif %}
{%- endfor -%}

{%- if (rows | length) == 0 -%}
    select
    {%- for column_name, column_value in default_row.items() %} {{ column_value }} as {{ column_name_to_quoted[column_name] }}{% if not loop.last -%},{%- endif %}
    {%- endfor %}
    limit 0
{%- endif -%}
{% endmacro %}
