{#- The weather lake's Parquet tables as dbt sources. A lake source names its files relative to the lake
    (`meta.lake_glob`, e.g. weather/hourly_observations/*/*/*.parquet); where the lake is gets settled when a
    model compiles, never when dbt parses, so the location stays out of the manifest: moving the lake
    (FLIGHTDELAY_LAKE) does not make the sources `state:modified`, and dbt runs from any working directory.

    On DuckDB, `source()` reads such a source's files in place; on PostgreSQL and Redshift it is the table of
    the same name (copied by flightdelay.postgres_mirror; a Spectrum external table, macros/spectrum.sql). -#}

{#- The lake's root: FLIGHTDELAY_LAKE, else the folder `lake` of the project (as flightdelay/settings.py). -#}
{% macro lake_root() -%}
    {%- set root = env_var('FLIGHTDELAY_LAKE', '') or ((invocation_args_dict.project_dir or '.') ~ '/lake') -%}
    {{ return(root.rstrip('/')) }}
{%- endmacro %}

{#- SQL that reads a lake table's Hive-partitioned Parquet files, partition columns kept as strings. -#}
{% macro lake_read_parquet(lake_glob) -%}
    {%- set path = (flight_delays.lake_root() ~ '/' ~ lake_glob) | replace("'", "''") -%}
    {{ return("read_parquet('" ~ path ~ "', hive_partitioning = true, hive_types_autocast = false)") }}
{%- endmacro %}

{#- dbt's `source()`, with lake sources resolved to their files on DuckDB (unit-test fixtures untouched). -#}
{% macro source(source_name, table_name) -%}
    {%- set relation = builtins.source(source_name, table_name) -%}
    {%- set resource_type = model.resource_type if model is defined and model else none -%}
    {%- if execute and target.type == 'duckdb' and resource_type != 'unit_test' -%}
        {%- set node = graph.sources.get('source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name) -%}
        {%- set lake_glob = node.config.meta.get('lake_glob') if node else none -%}
        {%- if lake_glob -%}
            {{ return(relation.incorporate(external=flight_delays.lake_read_parquet(lake_glob))) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}
