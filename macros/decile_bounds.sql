{#- The upper bounds of the nine lower deciles of each `features` column of the CTE `relation`, per `group_by`:
    one row per group, with columns <feature>__upper_1 ... <feature>__upper_9 (nulls ignored), as
    bucket_decimal() values: engines that compute a feature's floats to other last bits must still put every
    flight in the same decile (macros/feature_drift.sql compares the values as the same decimal). -#}
{% macro decile_bounds(relation, group_by, features) -%}
    {{ return(adapter.dispatch('decile_bounds', 'flight_delays')(relation, group_by, features)) }}
{%- endmacro %}

{% macro default__decile_bounds(relation, group_by, features) -%}
    select
        {{ group_by }}
        {%- for feature in features %}
        {%- for decile in range(1, 10) %},
        cast(percentile_cont({{ decile / 10 }}) within group (order by {{ feature }}) as {{ flight_delays.bucket_decimal() }})
        as {{ feature }}__upper_{{ decile }}
        {%- endfor %}
        {%- endfor %}
    from {{ relation }}
    group by {{ group_by }}
{%- endmacro %}

{#- DuckDB: the same percentile_cont, computed from each value's count. DuckDB's own percentile_cont holds every
    value of its group in memory, once per call and without spilling: nine calls for each of 56 features over the
    training window took 23 GB at SF=30 (9.6M flights) and were killed. Here the values are counted (a hash
    aggregate, which spills), each distinct value gets the rank its last copy has, and each decile interpolates
    between the values at the two ranks around its position, (flights - 1) x decile, exactly as DuckDB's
    percentile_cont does (lower x (1 - fraction) + upper x fraction, in double precision; `lower + (upper - lower) x
    fraction` differs in the last bit, which moves a bound across a sixth decimal now and then): the same bounds,
    in memory that grows with the distinct values, not the flights. A group whose values are all null still gets
    its row, of null bounds, as with percentile_cont. -#}
{% macro duckdb__decile_bounds(relation, group_by, features) -%}
    select
        groups.{{ group_by }}
        {%- for feature in features %}
        {%- for decile in range(1, 10) %},
        cast(max(case when bounds.feature_name = '{{ feature }}' and bounds.decile = {{ decile }} then bounds.bound end)
            as {{ flight_delays.bucket_decimal() }}) as {{ feature }}__upper_{{ decile }}
        {%- endfor %}
        {%- endfor %}
    from (select distinct {{ group_by }} from {{ relation }}) as groups
    left join (
        select
            {{ group_by }},
            feature_name,
            decile,
            case
                -- a whole position is that value, as percentile_cont takes it (no arithmetic: inf stays inf)
                when position = floor(position) then min(case when rank_end > position then value end)
                else min(case when rank_end > floor(position) then value end) * (1 - (position - floor(position)))
                    + min(case when rank_end > ceil(position) then value end) * (position - floor(position))
            end as bound
        from (
            select
                ranked.{{ group_by }},
                ranked.feature_name,
                ranked.value,
                ranked.rank_end,
                deciles.decile,
                (ranked.values_counted - 1) * deciles.fraction as position
            from (
                select
                    {{ group_by }},
                    feature_name,
                    value,
                    -- how many of the values are at most this one (so it covers 0-based ranks up to rank_end - 1), and of all
                    sum(flights) over (
                        partition by {{ group_by }}, feature_name order by value
                        rows between unbounded preceding and current row
                    ) as rank_end,
                    sum(flights) over (partition by {{ group_by }}, feature_name) as values_counted
                from (
                    {%- for feature in features %}
                    select
                        {{ group_by }},
                        '{{ feature }}' as feature_name,
                        cast({{ feature }} as double) as value,
                        count(*) as flights
                    from {{ relation }}
                    where {{ feature }} is not null
                    group by {{ group_by }}, cast({{ feature }} as double)
                    {%- if not loop.last %}
                    union all
                    {%- endif %}
                    {%- endfor %}
                ) as value_counts
            ) as ranked
            cross join (
                values
                {%- for decile in range(1, 10) %}
                ({{ decile }}, cast('{{ decile / 10 }}' as double)){{ ',' if not loop.last }}
                {%- endfor %}
            ) as deciles (decile, fraction)
        ) as positioned
        group by {{ group_by }}, feature_name, decile, position
    ) as bounds
        on groups.{{ group_by }} = bounds.{{ group_by }}
    group by groups.{{ group_by }}
{%- endmacro %}

{#- Redshift allows one ordering per query for its sort-based aggregates (percentile_cont, median, listagg): the
    tenths come from ntile, a window function, and each bound is the largest value of its tenth. (DuckDB takes
    ten times longer this way: 51 s against 6 s for the sample's 56 features.) -#}
{% macro redshift__decile_bounds(relation, group_by, features) -%}
    select
        {{ group_by }}
        {%- for feature in features %}
        {%- for decile in range(1, 10) %},
        cast(max(case when {{ feature }}__tenth = {{ decile }} then {{ feature }} end) as {{ flight_delays.bucket_decimal() }})
        as {{ feature }}__upper_{{ decile }}
        {%- endfor %}
        {%- endfor %}
    from (
        select
            {{ group_by }}
            {%- for feature in features %},
            {{ feature }},
            ntile(10) over (partition by {{ group_by }}, {{ feature }} is null order by {{ feature }})
            as {{ feature }}__tenth
            {%- endfor %}
        from {{ relation }}
    ) as tenths
    group by {{ group_by }}
{%- endmacro %}


{#- The decimal a feature value and a decile bound are compared as: 6 decimals erase the last-bit differences of
    floats two engines computed differently, and keep every feature's own precision (at most 3 decimals). -#}
{% macro bucket_decimal() -%}
    numeric(38, 6)
{%- endmacro %}
