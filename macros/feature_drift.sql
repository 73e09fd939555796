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

{#- Flights per model of `models_cte`, month, training-window flag, feature and bucket, one query per feature
    stacked. A bucket is the value's decile of `deciles_cte` for a number ('decile 1' ... 'decile 10'), the
    category itself, or 'missing'. Each feature's values are counted first and the buckets assigned to the counts:
    far fewer rows than flights to compare with nine bounds, and nothing to hold but the counts (bucketing every
    flight's 56 features first took 14 minutes at SF=30). -#}
{% macro drift_bucket_counts(values_cte, models_cte, deciles_cte, features) -%}
    {%- for feature in features.numeric + features.categorical %}
    select
        value_counts.model_id,
        value_counts.flight_month,
        value_counts.is_training_window,
        '{{ feature }}' as feature_name,
        {%- if feature in features.numeric %}
        case
            when value_counts.feature_value is null then 'missing'
            {%- for decile in range(1, 10) %}
            when cast(value_counts.feature_value as {{ flight_delays.bucket_decimal() }})
                <= {{ deciles_cte }}.{{ feature }}__upper_{{ decile }}
                then 'decile {{ decile }}'
            {%- endfor %}
            else 'decile 10'
        end as bucket,
        {%- else %}
        coalesce(cast(value_counts.feature_value as {{ dbt.type_string() }}), 'missing') as bucket,
        {%- endif %}
        cast(sum(value_counts.flights) as bigint) as flights
    from (
        select
            {{ models_cte }}.model_id,
            {{ values_cte }}.flight_month,
            {{ values_cte }}.flight_date between {{ models_cte }}.train_first_date and {{ models_cte }}.train_last_date
                as is_training_window,
            {{ values_cte }}.{{ feature }} as feature_value,
            count(*) as flights
        from {{ values_cte }}
        cross join {{ models_cte }}
        group by
            {{ models_cte }}.model_id,
            {{ values_cte }}.flight_month,
            {{ values_cte }}.flight_date between {{ models_cte }}.train_first_date and {{ models_cte }}.train_last_date,
            {{ values_cte }}.{{ feature }}
    ) as value_counts
    inner join {{ deciles_cte }}
        on value_counts.model_id = {{ deciles_cte }}.model_id
    group by
        value_counts.model_id,
        value_counts.flight_month,
        value_counts.is_training_window,
        bucket
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
