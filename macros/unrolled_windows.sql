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

{#- The daily counts of `days_relation` (keys, `flight_date`, measures) summed over each row's history dates in
    `dates_relation` (from dates_back: the keys, the flight's `flight_date`, `history_date`): one row per keys and
    flight date. -#}
{% macro sum_over_history_dates(dates_relation, days_relation, keys, measures) -%}
    select
        {%- for key in keys %}
        {{ dates_relation }}.{{ key }},
        {%- endfor %}
        {{ dates_relation }}.flight_date,
        {%- for measure in measures %}
        sum({{ days_relation }}.{{ measure }}) as {{ measure }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ dates_relation }}
    inner join {{ days_relation }}
        on {% for key in keys -%}
        {{ dates_relation }}.{{ key }} = {{ days_relation }}.{{ key }}
        and {% endfor -%}
        {{ dates_relation }}.history_date = {{ days_relation }}.flight_date
    group by
        {%- for key in keys %}
        {{ dates_relation }}.{{ key }},
        {%- endfor %}
        {{ dates_relation }}.flight_date
{%- endmacro %}
