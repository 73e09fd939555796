{#- As-of join: each row of `spine` gets the key time of the latest row of `events` with the same key
    at or before the spine's time, and at most `max_age_hours` older; otherwise null.

    Returns a select of all spine columns plus `matched_event_at`. Callers join the events back on
    (key, matched_event_at) to fetch the event's columns. `spine` and `events` are relation or CTE
    names; event times must be unique per key (the Spark job guarantees it for observations). -#}
{% macro asof_join(spine, spine_key, spine_time, events, event_key, event_time, max_age_hours) -%}
    {{ return(adapter.dispatch('asof_join', 'flight_delays')(
        spine, spine_key, spine_time, events, event_key, event_time, max_age_hours)) }}
{%- endmacro %}

{#- DuckDB's native ASOF join: a merge of two sorted inputs, no per-row lookups. -#}
{% macro duckdb__asof_join(spine, spine_key, spine_time, events, event_key, event_time, max_age_hours) -%}
    select
        s.*,
        case
            when e.{{ event_time }} >= {{ flight_delays.add_hours('s.' ~ spine_time, -max_age_hours) }}
                then e.{{ event_time }}
        end as matched_event_at
    from {{ spine }} as s
    asof left join {{ events }} as e
        on s.{{ spine_key }} = e.{{ event_key }}
        and s.{{ spine_time }} >= e.{{ event_time }}
{%- endmacro %}

{#- Engines without ASOF (PostgreSQL, Redshift): interleave both inputs in time order and carry the
    latest event time forward as a running max (event times only grow along the timeline, and max skips
    the spine rows' nulls - portable where `ignore nulls` is not). One sort instead of a lookup per row.
    Events sort before spine rows at the same instant, so an event exactly at the spine time counts. -#}
{% macro default__asof_join(spine, spine_key, spine_time, events, event_key, event_time, max_age_hours) -%}
    select
        s.*,
        case
            when c.latest_event_at >= {{ flight_delays.add_hours('s.' ~ spine_time, -max_age_hours) }}
                then c.latest_event_at
        end as matched_event_at
    from {{ spine }} as s
    left join (
        select
            spine_key_value,
            spine_time_value,
            latest_event_at
        from (
            select
                timeline.*,
                max(event_at) over (
                    partition by key_value
                    order by at_time, is_spine
                    rows between unbounded preceding and current row
                ) as latest_event_at
            from (
                select {{ event_key }} as key_value, {{ event_time }} as at_time, {{ event_time }} as event_at,
                       0 as is_spine, cast(null as {{ dbt.type_string() }}) as spine_key_value,
                       cast(null as timestamp) as spine_time_value
                from {{ events }}
                union all
                select distinct {{ spine_key }}, {{ spine_time }}, cast(null as timestamp), 1,
                       {{ spine_key }}, {{ spine_time }}
                from {{ spine }}
            ) as timeline
        ) as carried
        where is_spine = 1
    ) as c
        on s.{{ spine_key }} = c.spine_key_value
        and s.{{ spine_time }} = c.spine_time_value
{%- endmacro %}
