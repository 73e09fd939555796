{#- The model's columns in its YAML contract's order, each cast to the contract's `data_type`: a mart's types are
    declared once, in its YAML, and the cast makes every engine build them (on PostgreSQL an id built by `||` is
    `text`; DuckDB types a sum of integers as hugeint). Reads `model.columns`, which dbt fills from the YAML when
    it renders the model to run it; names are quoted, so a reserved word is a column too. A column `relation` has
    and the YAML lacks is not selected: tests/test_redshift_sql.py checks that the feature mart's `joined` CTE
    selects exactly its contract's columns. -#}
{% macro select_as_contract(relation) -%}
    {%- if execute and not model.columns -%}
        {{ exceptions.raise_compiler_error(
            "select_as_contract in " ~ model.name ~ ": the model's YAML declares no columns") }}
    {%- endif -%}
    {%- for column in model.columns.values() if execute and not column.data_type %}
        {{ exceptions.raise_compiler_error(
            "select_as_contract in " ~ model.name ~ ": column " ~ column.name ~ " has no data_type in the YAML") }}
    {%- endfor %}
    select
    {%- for column in model.columns.values() %}
        cast({{ adapter.quote(column.name) }} as {{ column.data_type }}) as {{ adapter.quote(column.name) }}
        {{- "," if not loop.last }}
    {%- endfor %}
    from {{ relation }}
{%- endmacro %}
