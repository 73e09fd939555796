{#- The rows of `from_relation` once per date from `date_column` back `days_back` days, the date in `as_column`.
    A range join over dates ("within the last N days") becomes an equi-join on that date: the database hashes
    (key, date) instead of pairing every row of a key with every other and filtering, which grows with the
    square of the history a key has. -#}
{% macro dates_back(from_relation, columns, date_column, days_back, as_column) -%}
    {%- for days in range(days_back + 1) %}
        select
            {{ columns | join(',\n            ') }},
            cast({{ dbt.dateadd('day', -days, date_column) }} as date) as {{ as_column }}
        from {{ from_relation }}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}
