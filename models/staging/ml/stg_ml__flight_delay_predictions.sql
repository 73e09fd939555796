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
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        cast(split_name as {{ dbt.type_string() }}) as split_name,

        -- numerics
        cast(delay_probability as double precision) as delay_15_probability,

        -- timestamps
        cast(scored_at as timestamp) as scored_at_utc
    from source

)

select * from renamed
