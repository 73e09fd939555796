{#- One row per model, month and decile of predicted probability (decile 1 the lowest tenth of the month's
    predictions): what share of those flights was delayed against what the model said. A calibrated model's
    two columns agree in every decile. -#}
{{ config(tags=['predictions']) }}
with

predictions as (

    {{ flight_delays.predictions_with_outcome() }}

),

in_deciles as (

    select
        model_id,
        flight_month,
        delay_15_probability,
        delayed_15,
        cast(ntile(10) over (partition by model_id, flight_month order by delay_15_probability) as integer)
            as probability_decile
    from predictions

),

aggregated as (

    select
        -- ids
        model_id,

        -- numerics
        probability_decile,
        count(*) as flights,
        min(delay_15_probability) as min_delay_15_probability,
        max(delay_15_probability) as max_delay_15_probability,
        {{ flight_delays.exact_mean('delay_15_probability') }} as mean_delay_15_probability,
        {{ flight_delays.exact_mean('delayed_15') }} as observed_delay_15_rate,

        -- dates
        flight_month
    from in_deciles
    group by model_id, flight_month, probability_decile

),

final as (

    select * from aggregated

)

select * from final
