{#- One row per model and month of flights whose outcome is known: how good its predictions were, month by month,
    as the actuals arrive. ROC AUC is the Mann-Whitney statistic from ranks (ties share their mean rank, as
    scikit-learn's roc_auc_score counts them), so it needs no Python; the Brier skill score compares the model with
    always predicting the month's own delay rate (0: no better; below 0: worse). -#}
{{ config(tags=['predictions']) }}
with

predictions as (

    {{ flight_delays.predictions_with_outcome() }}

),

models as (

    select
        model_id,
        prediction_horizon_minutes,
        validation_last_date
    from {{ ref('stg_ml__registered_models') }}

),

ranked as (

    select
        model_id,
        flight_month,
        delay_15_probability,
        delayed_15,
        rank() over (partition by model_id, flight_month order by delay_15_probability)
        + (count(*) over (partition by model_id, flight_month, delay_15_probability) - 1) / 2.0
            as probability_rank
    from predictions

),

aggregated as (

    select
        model_id,
        flight_month,
        count(*) as flights,
        cast(sum(delayed_15) as bigint) as delayed_flights,
        -- means summed exactly: a float sum depends on the order a parallel scan delivers rows in, and a monthly
        -- run must reproduce a full refresh to the last bit (macros/exact_sum.sql)
        {{ flight_delays.exact_mean('delay_15_probability') }} as mean_delay_15_probability,
        {{ flight_delays.exact_mean('delayed_15') }} as observed_delay_15_rate,
        {{ flight_delays.exact_mean('(delay_15_probability - delayed_15) * (delay_15_probability - delayed_15)') }}
            as brier_score,
        {{ flight_delays.exact_mean('-(delayed_15 * ln(greatest(delay_15_probability, 1e-15))
            + (1 - delayed_15) * ln(greatest(1 - delay_15_probability, 1e-15)))') }} as log_loss,
        sum(case when delayed_15 = 1 then probability_rank else 0 end) as delayed_rank_sum
    from ranked
    group by model_id, flight_month

),

scored as (

    select
        model_id,
        flight_month,
        flights,
        delayed_flights,
        mean_delay_15_probability,
        observed_delay_15_rate,
        brier_score,
        log_loss,
        case
            when delayed_flights > 0 and delayed_flights < flights
                then (delayed_rank_sum - delayed_flights * (delayed_flights + 1) / 2.0)
                    / (cast(delayed_flights as double precision) * (flights - delayed_flights))
        end as roc_auc,
        1 - {{ flight_delays.safe_ratio('brier_score', 'observed_delay_15_rate * (1 - observed_delay_15_rate)') }}
            as brier_skill_score
    from aggregated

),

joined as (

    select
        -- ids
        scored.model_id,

        -- numerics
        models.prediction_horizon_minutes,
        scored.flights,
        scored.delayed_flights,
        scored.observed_delay_15_rate,
        scored.mean_delay_15_probability,
        scored.roc_auc,
        scored.brier_score,
        scored.brier_skill_score,
        scored.log_loss,

        -- booleans
        coalesce(scored.flight_month <= models.validation_last_date, false) as is_seen_in_fit,
        coalesce(
            not coalesce(scored.flight_month <= models.validation_last_date, false)
            and scored.brier_skill_score < {{ var('brier_skill_score_warn_below') }},
            false
        ) as is_below_skill_threshold,

        -- dates
        scored.flight_month
    from scored
    left join models
        on scored.model_id = models.model_id

),

final as (

    select * from joined

)

select * from final
