{#- One row per scored flight: the model's prediction beside what happened, for analysts and for monitoring
    (calibration by carrier, airport or month is a group-by away). Built by `flightdelay score`, after scoring,
    incremental by month (macros/incremental_by_month.sql) like the predictions: from the first month rescored. -#}
with

predictions as (

    select
        flight_id,
        model_id,
        split_name,
        delay_15_probability,
        base_log_odds,
        reason_1_feature,
        reason_1_log_odds,
        reason_2_feature,
        reason_2_log_odds,
        reason_3_feature,
        reason_3_log_odds,
        other_features_log_odds,
        scored_at_utc
    from {{ ref('stg_ml__flight_delay_predictions') }}

),

flights as (

    select
        flight_id,
        carrier_code,
        origin_airport_code,
        dest_airport_code,
        flight_number,
        tail_number,
        dep_delay_minutes,
        is_cancelled,
        is_dep_delayed_15,
        flight_date,
        scheduled_departure_at_local,
        scheduled_departure_at_utc
    from {{ ref('fct_flights') }}
    where {{ flight_delays.is_rebuilt('flight_date') }}

),

joined as (

    select
        -- ids
        predictions.flight_id,
        flights.carrier_code,
        flights.origin_airport_code,
        flights.dest_airport_code,
        flights.flight_number,
        flights.tail_number,

        -- strings
        predictions.model_id,
        predictions.split_name,
        predictions.reason_1_feature,
        predictions.reason_2_feature,
        predictions.reason_3_feature,

        -- numerics
        predictions.delay_15_probability,
        predictions.base_log_odds,
        predictions.reason_1_log_odds,
        predictions.reason_2_log_odds,
        predictions.reason_3_log_odds,
        predictions.other_features_log_odds,
        flights.dep_delay_minutes,

        -- booleans
        predictions.delay_15_probability >= {{ var('delay_probability_threshold') }} as is_predicted_delayed_15,
        flights.is_dep_delayed_15,
        flights.is_cancelled,

        -- dates
        flights.flight_date,

        -- timestamps
        flights.scheduled_departure_at_local,
        flights.scheduled_departure_at_utc,
        predictions.scored_at_utc
    from predictions
    inner join flights
        on predictions.flight_id = flights.flight_id

),

final as (

    select * from joined

)

select * from final
