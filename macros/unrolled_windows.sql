{#- Range joins over time windows as equi-joins. "Within the last N days (hours)" paired with a key makes the
    database pair every row of a key with every other and then filter: work that grows with the square of the
    history a key has (quadratic in years of data). Unrolled, each row appears once per date (hour) its window
    touches, and the join hashes (key, date) - linear in the data; the exact window is still filtered after. -#}

{#- The rows of `from_relation` once per date from `date_column` back `days_back` days, that date in `as_column`. -#}
{% macro dates_back(from_relation, columns, date_column, days_back, as_column) -%}
    {%- for days in range(days_back + 1) %}
        select
            {{ columns | join(',\n            ') }},
            cast({{ dbt.dateadd('day', -days, date_column) }} as date) as {{ as_column }}
        from {{ from_relation }}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- The rows of `from_relation` once per clock hour from `timestamp_column`'s back `hours` hours: the hour's
    start in `as_column`, how many hours back it is in `hours_back`. -#}
{% macro hours_back(from_relation, columns, timestamp_column, hours, as_column) -%}
    {%- for hours_back in range(hours + 1) %}
        select
            {{ columns | join(',\n            ') }},
            {{ hours_back }} as hours_back,
            {{ flight_delays.add_hours(dbt.date_trunc('hour', timestamp_column), -hours_back) }} as {{ as_column }}
        from {{ from_relation }}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}
