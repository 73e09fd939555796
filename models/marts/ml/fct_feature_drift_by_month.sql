{#- One row per scoring model, month and feature: how far the month's values of the feature have moved from the
    model's training window, as a population stability index over the training window's deciles (numeric
    features; a category is its own bucket; a missing value is a bucket too, so a feature that goes missing
    drifts), with the share missing on both sides. PSI = sum over buckets of (month share - training share) x
    ln(month share / training share), shares floored at 0.0001; below 0.1 is usually read as stable, above 0.25
    as a shift.

    A month compared with a training window of several months differs from it by nature (a winter month's
    temperatures fill two deciles of a year's), so a feature is flagged as drifted only when, in a month the fit
    never saw, its index exceeds both var `feature_drift_psi_warn_above` and the largest index of the training
    window's own months: a shift beyond the month-to-month variation the model was trained on.

    The deciles and the counts come from int_training_values_ranked_into_deciles and
    int_feature_values_bucketed_by_month, which a monthly run updates for its months only; this table is rebuilt
    from the counts, a few rows per month and feature, every time. -#}
{{ config(tags=['predictions']) }}
with

models as (

    {{ flight_delays.scoring_model_training_windows(
        ref('stg_ml__flight_delay_predictions'), ref('stg_ml__registered_models')) }}

),

-- flights per feature bucket against each model's training window, by month, kept month by month
counted as (

    select
        model_id,
        flight_month,
        is_training_window,
        feature_name,
        bucket,
        flights
    from {{ ref('int_feature_values_bucketed_by_month') }}

),

month_buckets as (

    select
        model_id,
        flight_month,
        feature_name,
        bucket,
        sum(flights) as flights
    from counted
    group by model_id, flight_month, feature_name, bucket

),

training_buckets as (

    select
        model_id,
        feature_name,
        bucket,
        sum(flights) as flights
    from counted
    where is_training_window
    group by model_id, feature_name, bucket

),

month_totals as (

    select
        model_id,
        flight_month,
        feature_name,
        sum(flights) as flights
    from month_buckets
    group by model_id, flight_month, feature_name

),

training_totals as (

    select
        model_id,
        feature_name,
        sum(flights) as flights
    from training_buckets
    group by model_id, feature_name

),

-- every bucket either side has, for every month: a bucket the month lacks still counts against it
bucket_keys as (

    select
        model_id,
        flight_month,
        feature_name,
        bucket
    from month_buckets
    union
    select
        training_buckets.model_id,
        month_totals.flight_month,
        training_buckets.feature_name,
        training_buckets.bucket
    from training_buckets
    inner join month_totals
        on training_buckets.model_id = month_totals.model_id
        and training_buckets.feature_name = month_totals.feature_name

),

shares as (

    select
        bucket_keys.model_id,
        bucket_keys.flight_month,
        bucket_keys.feature_name,
        bucket_keys.bucket,
        month_totals.flights as month_flights,
        greatest({{ flight_delays.safe_ratio('coalesce(month_buckets.flights, 0)', 'month_totals.flights') }}, 0.0001)
            as month_share,
        greatest(
            {{ flight_delays.safe_ratio('coalesce(training_buckets.flights, 0)', 'training_totals.flights') }}, 0.0001
        ) as training_share,
        {{ flight_delays.safe_ratio('coalesce(month_buckets.flights, 0)', 'month_totals.flights') }}
            as month_share_unfloored,
        {{ flight_delays.safe_ratio('coalesce(training_buckets.flights, 0)', 'training_totals.flights') }}
            as training_share_unfloored
    from bucket_keys
    inner join month_totals
        on bucket_keys.model_id = month_totals.model_id
        and bucket_keys.flight_month = month_totals.flight_month
        and bucket_keys.feature_name = month_totals.feature_name
    inner join training_totals
        on bucket_keys.model_id = training_totals.model_id
        and bucket_keys.feature_name = training_totals.feature_name
    left join month_buckets
        on bucket_keys.model_id = month_buckets.model_id
        and bucket_keys.flight_month = month_buckets.flight_month
        and bucket_keys.feature_name = month_buckets.feature_name
        and bucket_keys.bucket = month_buckets.bucket
    left join training_buckets
        on bucket_keys.model_id = training_buckets.model_id
        and bucket_keys.feature_name = training_buckets.feature_name
        and bucket_keys.bucket = training_buckets.bucket

),

drift as (

    select
        -- ids
        shares.model_id,

        -- strings
        shares.feature_name,

        -- numerics
        cast(max(shares.month_flights) as bigint) as flights,
        -- summed exactly, so a monthly run reproduces a full refresh to the last bit (macros/exact_sum.sql)
        {{ flight_delays.exact_sum(
            '(shares.month_share - shares.training_share) * ln(shares.month_share / shares.training_share)',
            'numeric(38, 18)'
        ) }} as population_stability_index,
        {{ flight_delays.exact_sum(
            "case when shares.bucket = 'missing' then shares.month_share_unfloored else 0 end", 'numeric(38, 18)'
        ) }} as missing_share,
        {{ flight_delays.exact_sum(
            "case when shares.bucket = 'missing' then shares.training_share_unfloored else 0 end", 'numeric(38, 18)'
        ) }} as training_missing_share,

        -- booleans
        coalesce(shares.flight_month <= max(models.validation_last_date), false) as is_seen_in_fit,
        coalesce(
            shares.flight_month >= cast({{ dbt.date_trunc('month', 'max(models.train_first_date)') }} as date)
            and shares.flight_month <= max(models.train_last_date),
            false
        ) as is_training_month,

        -- dates
        shares.flight_month
    from shares
    inner join models
        on shares.model_id = models.model_id
    group by shares.model_id, shares.feature_name, shares.flight_month

),

training_variation as (

    select
        model_id,
        feature_name,
        max(population_stability_index) as max_training_month_psi
    from drift
    where is_training_month
    group by model_id, feature_name

),

flagged as (

    select
        -- ids
        drift.model_id,

        -- strings
        drift.feature_name,

        -- numerics
        drift.flights,
        drift.population_stability_index,
        training_variation.max_training_month_psi,
        drift.missing_share,
        drift.training_missing_share,

        -- booleans
        drift.is_seen_in_fit,
        coalesce(
            not drift.is_seen_in_fit
            and drift.population_stability_index > {{ var('feature_drift_psi_warn_above') }}
            and drift.population_stability_index > coalesce(training_variation.max_training_month_psi, 0),
            false
        ) as is_drifted,

        -- dates
        drift.flight_month
    from drift
    left join training_variation
        on drift.model_id = training_variation.model_id
        and drift.feature_name = training_variation.feature_name

),

final as (

    select * from flagged

)

select * from final
