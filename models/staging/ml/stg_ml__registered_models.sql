{#- Tagged `predictions`, like everything over the source `ml`: built by `flightdelay score`, after `train` has
    written the model's row. -#}
{{ config(tags=['predictions']) }}
with

source as (

    select * from {{ source('ml', 'model_registry') }}

),

renamed as (

    select
        -- ids
        cast(model_id as {{ dbt.type_string() }}) as model_id,
        cast(data_id as {{ dbt.type_string() }}) as data_id,
        cast(fit_id as {{ dbt.type_string() }}) as fit_id,
        cast(build_id as {{ dbt.type_string() }}) as build_id,

        -- strings
        cast(algorithm as {{ dbt.type_string() }}) as algorithm,
        cast(evaluated_on as {{ dbt.type_string() }}) as evaluated_on,

        -- numerics
        cast(prediction_horizon_minutes as integer) as prediction_horizon_minutes,
        cast(num_boosted_rounds as integer) as num_boosted_rounds,
        cast(train_rows as bigint) as train_rows,
        cast(test_rows as bigint) as test_rows,
        cast(test_roc_auc as double precision) as test_roc_auc,
        cast(test_pr_auc as double precision) as test_pr_auc,
        cast(test_log_loss as double precision) as test_log_loss,
        cast(baseline_test_roc_auc as double precision) as baseline_test_roc_auc,

        -- dates
        cast(train_first_date as date) as train_first_date,
        cast(train_last_date as date) as train_last_date,
        cast(validation_first_date as date) as validation_first_date,
        cast(validation_last_date as date) as validation_last_date,
        cast(test_first_date as date) as test_first_date,
        cast(test_last_date as date) as test_last_date,

        -- timestamps
        cast(evaluated_at as timestamp) as evaluated_at_utc
    from source

)

select * from renamed
