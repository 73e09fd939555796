{#- The generated parts of the drift monitor (int_training_values_ranked_into_deciles,
    int_feature_values_bucketed_by_month, fct_feature_drift_by_month): one expression or query per monitored
    feature (macros/monitored_features.sql), kept here so the models read as their CTEs, and how the two tables
    are kept up to date month by month. -#}

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

{#- The training and validation windows of each model that scored flights: the models the drift monitor compares
    months for. -#}
{% macro scoring_model_training_windows(scoring_relation, registry_relation) -%}
    select
        model_id,
        train_first_date,
        train_last_date,
        validation_last_date
    from {{ registry_relation }}
    where model_id in (select model_id from {{ scoring_relation }})
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

{#- The drift monitor's two tables (int_training_values_ranked_into_deciles, int_feature_values_bucketed_by_month)
    are kept for the scoring model: `flightdelay score` rebuilds them whole (--full-refresh) when the model changes
    and otherwise from the first month it rescored (var rebuild_from_month), so a monthly run ranks nothing and
    counts a month's values, not three years'.
    The first flight day a run recounts from (YYYY-MM-DD), or none when it must rank and count everything again:
    - not an incremental run, or no rebuild_from_month (a hand-run `dbt build` cannot say what changed);
    - the scoring models (the model ids of `scoring_relation`) are not exactly those the table holds: its deciles and
      counts belong to the models it was built for;
    - the rebuild reaches into a scoring model's training window (its train_last_date in `registry_relation`): the
      window's data changed, so its deciles, and every month's buckets, move, even when the fit (which may have seen
      a sample of the window) kept its id. -#}
{% macro drift_recount_from_day(scoring_relation, registry_relation) -%}
    {%- if var('rebuild_from_month', none) is none -%}
        {{ return(none) }}
    {%- endif -%}
    {#- `dbt compile` without a warehouse (macros/incremental_by_month.sql) renders the monthly run for the same model -#}
    {%- if var('compile_without_warehouse', false) -%}
        {{ return(flight_delays.rebuild_from_date()) }}
    {%- endif -%}
    {%- if this is none or not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set first_day = flight_delays.rebuild_from_date() -%}
    {%- set query -%}
        select
            (select count(*) from (
                (select model_id from {{ scoring_relation }} except select model_id from {{ this }})
                union all
                (select model_id from {{ this }} except select model_id from {{ scoring_relation }})
            ) as differing) as models_differing,
            (select count(*) from {{ registry_relation }}
                where model_id in (select model_id from {{ scoring_relation }})
                    and (train_last_date is null or train_last_date >= cast('{{ first_day }}' as date))) as windows_reached
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {{ return(first_day if row[0] == 0 and row[1] == 0 else none) }}
{%- endmacro %}

{#- The first month (YYYY-MM-01) an incremental run of int_feature_values_bucketed_by_month counts again, or none
    for every month: the month of the first day recounted, whole, so a month the rebuild margin reaches back into
    is counted again whole. -#}
{% macro drift_recount_from_month(scoring_relation, registry_relation) -%}
    {%- set first_day = flight_delays.drift_recount_from_day(scoring_relation, registry_relation) -%}
    {{ return(none if first_day is none else (first_day | string)[:8] ~ '01') }}
{%- endmacro %}

{#- Pre-hook of the drift monitor's tables: what this run recounts (or everything) goes first. `by_month`: the
    table has a flight_month (the counts); the deciles are per model only, kept whole or ranked again whole. -#}
{% macro delete_drift_rows_recounted(scoring_relation, registry_relation, by_month) -%}
    {%- if execute and this is not none and not var('compile_without_warehouse', false) and is_incremental() -%}
        {%- set first_month = flight_delays.drift_recount_from_month(scoring_relation, registry_relation) -%}
        {%- if first_month is none -%}
            delete from {{ this }}
        {%- elif by_month -%}
            delete from {{ this }} where flight_month >= cast('{{ first_month }}' as date)
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
