{#- One row per scoring model: the upper bounds of the nine lower deciles of each monitored numeric feature
    (macros/monitored_features.sql) over the model's training window, the buckets fct_feature_drift_by_month
    compares months in. A monthly run for the same scoring model whose rebuild starts after its training window
    ranks nothing (macros/feature_drift.sql): at 10M flights ranking 50 features takes over a minute. -#}
{%- set features = flight_delays.monitored_features() -%}
{%- set kept = flight_delays.drift_recount_from_day(
    ref('stg_ml__flight_delay_predictions'), ref('stg_ml__registered_models')) is not none -%}
with

scoring_models as (

    {{ flight_delays.scoring_model_training_windows(
        ref('stg_ml__flight_delay_predictions'), ref('stg_ml__registered_models')) }}

),

features as (

    {{ flight_delays.feature_values(ref('ml_flight_delay_features'), features.numeric) }}

),

-- the models this run ranks for: none when the table's deciles still hold (macros/feature_drift.sql)
models as (

    select * from scoring_models
    {%- if kept %}
    where false
    {%- endif %}

),

training_values as (

    select
        models.model_id,
        features.*
    from models
    inner join features
        on features.flight_date between models.train_first_date and models.train_last_date

),

-- macros/decile_bounds.sql
deciles as (

    {{ flight_delays.decile_bounds('training_values', 'model_id', features.numeric) }}

),

final as (

    select * from deciles

)

select * from final
