{#- Tagged `predictions`: it reads what `flightdelay score` writes, so the default selector (selectors.yml)
    leaves it out of `dbt build` and the score step builds it after scoring. -#}
{{ config(tags=['predictions']) }}
with

source as (

    select * from {{ source('ml', 'flight_delay_predictions') }}

),

renamed as (

    select
        -- ids
        cast(flight_id as {{ dbt.type_string() }}) as flight_id,

        -- strings
        cast(model_id as {{ dbt.type_string() }}) as model_id,
        cast(split_name as {{ dbt.type_string() }}) as split_name,
        cast(reason_1_feature as {{ dbt.type_string() }}) as reason_1_feature,
        cast(reason_2_feature as {{ dbt.type_string() }}) as reason_2_feature,
        cast(reason_3_feature as {{ dbt.type_string() }}) as reason_3_feature,

        -- numerics
        cast(delay_probability as double precision) as delay_15_probability,
        cast(base_log_odds as double precision) as base_log_odds,
        cast(reason_1_log_odds as double precision) as reason_1_log_odds,
        cast(reason_2_log_odds as double precision) as reason_2_log_odds,
        cast(reason_3_log_odds as double precision) as reason_3_log_odds,
        cast(other_features_log_odds as double precision) as other_features_log_odds,

        -- timestamps
        cast(scored_at as timestamp) as scored_at_utc
    from source

)

select * from renamed
