{#- One row per weather factor (precipitation, visibility, wind) and bucket of its value at the origin
    at the as-of time; flights with no usable observation fall in the bucket 'unknown'. -#}
{#- Each factor's buckets: the bound that closes each one (checked in order) and its label; a value past the last
    bound falls in the last label. `bucket_order` sorts them, 'unknown' (no usable observation) last. -#}
{%- set weather_factors = [
    {'name': 'precipitation', 'column': 'precip_in',
     'bounds': ['= 0', '< 0.1', '< 0.3'],
     'labels': ['none', 'light (< 0.1 in/h)', 'moderate (0.1-0.3 in/h)', 'heavy (>= 0.3 in/h)']},
    {'name': 'visibility', 'column': 'visibility_mi',
     'bounds': ['< 1', '< 3', '< 5'],
     'labels': ['< 1 mi', '1-3 mi', '3-5 mi', '>= 5 mi']},
    {'name': 'wind', 'column': 'wind_speed_mph',
     'bounds': ['< 10', '< 20', '< 30'],
     'labels': ['< 10 mph', '10-20 mph', '20-30 mph', '>= 30 mph']},
] -%}
with

flights as (

    select
        flight_id,
        has_departed,
        is_dep_delayed_15,
        dep_delay_minutes
    from {{ ref('fct_flights') }}
    where has_departed

),

weather as (

    select
        flight_id,
        precip_in,
        visibility_mi,
        wind_speed_mph
    from {{ ref('int_flights_joined_to_weather') }}

),

flights_with_weather as (

    select
        flights.is_dep_delayed_15,
        flights.dep_delay_minutes,
        weather.precip_in,
        weather.visibility_mi,
        weather.wind_speed_mph
    from flights
    left join weather
        on flights.flight_id = weather.flight_id

),

-- one row per flight and factor
bucketed as (
    {% for factor in weather_factors %}
        select
            '{{ factor.name }}' as weather_factor,
            case
                when {{ factor.column }} is null then 'unknown'
                {%- for bound in factor.bounds %}
                    when {{ factor.column }} {{ bound }} then '{{ factor.labels[loop.index0] }}'
                {%- endfor %}
                else '{{ factor.labels[-1] }}'
            end as bucket,
            case
                when {{ factor.column }} is null then 9
                {%- for bound in factor.bounds %}
                    when {{ factor.column }} {{ bound }} then {{ loop.index0 }}
                {%- endfor %}
                else {{ factor.bounds | length }}
            end as bucket_order,
            is_dep_delayed_15,
            dep_delay_minutes
        from flights_with_weather
        {% if not loop.last %}
            union all
        {% endif %}
    {%- endfor %}
),

final as (

    select
        -- strings
        weather_factor,
        bucket,

        -- numerics
        bucket_order,
        count(*) as departed_flights,
        cast(sum(case when is_dep_delayed_15 then 1 else 0 end) as bigint) as dep_delayed_15_flights,
        {{ flight_delays.safe_ratio('sum(case when is_dep_delayed_15 then 1 else 0 end)', 'count(*)') }}
            as dep_delay_15_rate,
        avg(dep_delay_minutes) as avg_dep_delay_minutes

    from bucketed
    group by weather_factor, bucket, bucket_order

)

select * from final
