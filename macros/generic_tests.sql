{#- Generic data tests (the dbt package hub is out of reach, so these live here).
    Severity is set where they are used: `warn` for drift, `error` for broken contracts. -#}

{#- Every row satisfies a SQL boolean expression. -#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not ({{ expression }})
{% endtest %}

{#- At least `at_least` (0-1) of the column's values are not null. -#}
{% test not_null_proportion(model, column_name, at_least) %}
    with counts as (
        select
            count(*) as total_rows,
            count({{ column_name }}) as non_null_rows
        from {{ model }}
    )

    select *
    from counts
    where total_rows > 0
        and cast(non_null_rows as double precision) / total_rows < {{ at_least }}
{% endtest %}

{#- The model has exactly as many rows as `compare_model` (optionally filtered by `compare_condition`). -#}
{% test row_count_equals(model, compare_model, compare_condition='1 = 1') %}
    with model_rows as (
        select count(*) as row_count from {{ model }}
    ),

    compare_rows as (
        select count(*) as row_count from {{ compare_model }} where {{ compare_condition }}
    )

    select
        model_rows.row_count as model_row_count,
        compare_rows.row_count as compare_row_count
    from model_rows
    cross join compare_rows
    where model_rows.row_count <> compare_rows.row_count
{% endtest %}

{#- The combination of columns identifies a row (a composite key). -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    select
        {{ combination_of_columns | join(', ') }},
        count(*) as occurrences
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}
