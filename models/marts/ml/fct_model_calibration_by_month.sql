{#- One row per model, month and decile of predicted probability (decile 1 the lowest tenth of the month's
    predictions): what share of those flights was delayed against what the model said. A calibrated model's
    two columns agree in every decile.

    Flights with the same probability share a decile (the one their rank starts in). With ntile, tied flights
    across a boundary were dealt to two deciles in whatever order the scan gave them, so a decile's delay rate
    changed from one build to the next; a tenth can now hold more flights than a tenth, and a decile none. -#}
{{ config(tags=['predictions']) }}
with

predictions as (

    {{ flight_delays.predictions_with_outcome() }}

),

ranked as (

    select
        model_id,
        flight_month,
        delay_15_probability,
        delayed_15,
        rank() over (partition by model_id, flight_month order by delay_15_probability) as probability_rank,
        count(*) over (partition by model_id, flight_month) as month_flights
    from predictions

),

in_deciles as (

    select
        model_id,
        flight_month,
        delay_15_probability,
        delayed_15,
        cast(floor(10.0 * (probability_rank - 1) / month_flights) as integer) + 1 as probability_decile
    from ranked

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
