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
