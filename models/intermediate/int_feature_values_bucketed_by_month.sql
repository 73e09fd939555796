{#- One row per scoring model, flight month, side of the training window, monitored feature and bucket: the feature
    mart's flights whose value of the feature fell in the bucket (a decile of the model's training window for a
    number, the category itself, or 'missing'; macros/feature_drift.sql), the counts fct_feature_drift_by_month
    turns into population stability indexes. Kept month by month for the scoring model (macros/feature_drift.sql):
    a monthly run counts the months from the first one rescored, not the three years before them. -#}
{%- set features = flight_delays.monitored_features() -%}
{%- set first_month = flight_delays.drift_recount_from_month(
    ref('stg_ml__flight_delay_predictions'), ref('stg_ml__registered_models')) -%}
with

scoring_models as (

    {{ flight_delays.scoring_model_training_windows(
        ref('stg_ml__flight_delay_predictions'), ref('stg_ml__registered_models')) }}

),

-- a column per feature and decile (<feature>__upper_<decile>), generated from the same feature list
deciles as (

    select * from {{ ref('int_training_values_ranked_into_deciles') }}

),

features as (

    {{ flight_delays.feature_values(ref('ml_flight_delay_features'), features.numeric + features.categorical) }}
    {%- if first_month is not none %}
    where flight_date >= cast('{{ first_month }}' as date)
    {%- endif %}

),

counted as (

    {{ flight_delays.drift_bucket_counts('features', 'scoring_models', 'deciles', features) }}

),

final as (

    select * from counted

)

select * from final
