{#- The generated parts of fct_feature_drift_by_month: one expression or query per monitored feature
    (macros/monitored_features.sql), kept here so the model reads as its CTEs. -#}

{#- The flight date, its month and the features, from the feature mart. -#}
{% macro feature_values(relation, features) -%}
    select
        flight_date,
        cast({{ dbt.date_trunc('month', 'flight_date') }} as date) as flight_month
        {%- for feature in features %},
        {{ feature }}
        {%- endfor %}
    from {{ relation }}
{%- endmacro %}

{#- Each flight of `values_cte` once per model of `models_cte`, every feature as its bucket against the model's
    training window: 'decile 1' ... 'decile 10' of `deciles_cte` for a number, the category itself, or 'missing'. -#}
{% macro drift_buckets(values_cte, models_cte, deciles_cte, features) -%}
    select
        {{ models_cte }}.model_id,
        {{ values_cte }}.flight_month,
        {{ values_cte }}.flight_date between {{ models_cte }}.train_first_date and {{ models_cte }}.train_last_date
            as is_training_window
        {%- for feature in features.numeric %},
        case
            when {{ values_cte }}.{{ feature }} is null then 'missing'
            {%- for decile in range(1, 10) %}
            when cast({{ values_cte }}.{{ feature }} as {{ flight_delays.bucket_decimal() }})
                <= {{ deciles_cte }}.{{ feature }}__upper_{{ decile }}
                then 'decile {{ decile }}'
            {%- endfor %}
            else 'decile 10'
        end as {{ feature }}__bucket
        {%- endfor %}
        {%- for feature in features.categorical %},
        coalesce(cast({{ values_cte }}.{{ feature }} as {{ dbt.type_string() }}), 'missing') as {{ feature }}__bucket
        {%- endfor %}
    from {{ values_cte }}
    cross join {{ models_cte }}
    inner join {{ deciles_cte }}
        on {{ models_cte }}.model_id = {{ deciles_cte }}.model_id
{%- endmacro %}

{#- Flights per model, month, training-window flag, feature and bucket, one query per feature stacked. -#}
{% macro drift_bucket_counts(buckets_cte, features) -%}
    {%- for feature in features %}
    select
        model_id,
        flight_month,
        is_training_window,
        '{{ feature }}' as feature_name,
        {{ feature }}__bucket as bucket,
        count(*) as flights
    from {{ buckets_cte }}
    group by model_id, flight_month, is_training_window, {{ feature }}__bucket
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
