{#- The weather lake's Parquet tables as dbt sources. A lake source names its table relative to the lake
    (`meta.lake_table`, e.g. weather/hourly_observations); which folder holds the table's committed copy is
    read from the lake's pointer (weather/_current.json, spark_prep/lake_snapshots.py) when a model compiles,
    so every model of a build reads one `prep` run's tables even if another run was killed half-way. Where the
    lake is also gets settled at compile time, never when dbt parses, so the location stays out of the
    manifest: moving the lake (FLIGHTDELAY_LAKE) does not make the sources `state:modified`, and dbt runs from
    any working directory.

    On DuckDB, `source()` reads such a source's files in place; on PostgreSQL and Redshift it is the table of
    the same name (copied in by `expose_lake` in flightdelay/warehouse/postgres_warehouse.py; a Spectrum
    external table, macros/spectrum.sql). -#}

{#- The lake's root: FLIGHTDELAY_LAKE, else the folder `lake` of the project (as flightdelay/settings.py). -#}
{% macro lake_root() -%}
    {%- set root = env_var('FLIGHTDELAY_LAKE', '') or ((invocation_args_dict.project_dir or '.') ~ '/lake') -%}
    {{ return(root.rstrip('/')) }}
{%- endmacro %}

{#- A string literal for DuckDB SQL. -#}
{% macro lake_sql_string(text) -%}
    {{ return("'" ~ text | replace("'", "''") ~ "'") }}
{%- endmacro %}

{#- `path` as a glob that matches only itself (DuckDB's glob, read_text and read_parquet take patterns):
    each of `[ ] * ?` in a class of its own, as spark_prep/lake_snapshots.py literal_glob. -#}
{% macro lake_literal_glob(path) -%}
    {%- set out = [] -%}
    {%- for c in path -%}
        {%- do out.append('[' ~ c ~ ']' if c in '[]*?' else c) -%}
    {%- endfor -%}
    {{ return(out | join('')) }}
{%- endmacro %}

{#- The folder of a lake table's committed copy, from the lake's pointer; checked before it goes into SQL.
    None when the lake has no pointer. -#}
{% macro lake_committed_folder(lake_table) -%}
    {%- set area, table = lake_table.split('/') -%}
    {%- set pointer = flight_delays.lake_root() ~ '/' ~ area ~ '/_current.json' -%}
    {%- set pointer_glob = flight_delays.lake_sql_string(flight_delays.lake_literal_glob(pointer)) -%}
    {%- set found = run_query("select count(*) from glob(" ~ pointer_glob ~ ")") -%}
    {%- if found.columns[0].values()[0] == 0 -%}
        {#- No commit yet (a fresh clone, or a lake written before the pointer): the layout before snapshots,
            partitions directly under the table. The model still compiles (SQLFluff, docs, CI on a clone
            without a lake); reading it fails with DuckDB's "No files found" until `flightdelay prep` runs. -#}
        {{ return(none) }}
    {%- endif -%}
    {#- the checks spark_prep/lake_snapshots.py parse() makes, so dbt and the Python readers (gates, mirror,
        deploy) never take different runs from one pointer: its format, its run id, no key given twice -#}
    {%- set read = run_query("select json_extract_string(content, " ~ flight_delays.lake_sql_string('$.tables.' ~ table)
        ~ "), json_extract_string(content, '$.format'), json_extract_string(content, '$.run_id'), "
        ~ "len(json_keys(content)) = len(list_distinct(json_keys(content))) "
        ~ "and len(json_keys(content, '$.tables')) = len(list_distinct(json_keys(content, '$.tables'))) "
        ~ "from read_text(" ~ pointer_glob ~ ")") -%}
    {%- set folder, format, run_id, no_duplicates = read.rows[0] -%}
    {%- if format != '1' or not modules.re.fullmatch('[0-9a-z]{1,32}', run_id or '') or not no_duplicates -%}
        {{ exceptions.raise_compiler_error(pointer ~ " is not a lake pointer this version wrote; move it away and "
            ~ "run `flightdelay prep` to rebuild the lake") }}
    {%- endif -%}
    {%- if not folder or not modules.re.fullmatch(table ~ '/run-[0-9a-z]{1,32}', folder) -%}
        {{ exceptions.raise_compiler_error(pointer ~ " names no committed copy of " ~ table ~ " (found "
            ~ (folder or 'nothing') ~ "). Run `flightdelay prep`.") }}
    {%- endif -%}
    {{ return(area ~ '/' ~ folder) }}
{%- endmacro %}

{#- SQL that reads a lake table's committed Hive-partitioned Parquet files, partition columns kept as strings.
    A committed copy without a file (a table committed empty, as the daily files' table is until such files are
    given) is no rows in the source's declared columns: read_parquet would refuse a pattern that matches nothing. -#}
{% macro lake_read_parquet(lake_table, source_node) -%}
    {%- set committed = flight_delays.lake_committed_folder(lake_table) -%}
    {%- set folder = flight_delays.lake_root() ~ '/' ~ (committed or lake_table) -%}
    {%- set path = flight_delays.lake_sql_string(flight_delays.lake_literal_glob(folder) ~ '/*/*/*.parquet') -%}
    {%- if committed and run_query("select count(*) from glob(" ~ path ~ ")").columns[0].values()[0] == 0 -%}
        {{ return(flight_delays.lake_empty_relation(source_node)) }}
    {%- endif -%}
    {{ return("read_parquet(" ~ path ~ ", hive_partitioning = true, hive_types_autocast = false)") }}
{%- endmacro %}

{#- No rows, in the columns and data types a source declares (the lake's schema, tests/test_lake_schema.py). -#}
{% macro lake_empty_relation(source_node) -%}
    {%- set columns = [] -%}
    {%- for column in source_node.columns.values() -%}
        {%- do columns.append('cast(null as ' ~ column.data_type ~ ') as ' ~ adapter.quote(column.name)) -%}
    {%- endfor -%}
    {{ return('(select ' ~ columns | join(', ') ~ ' where false)') }}
{%- endmacro %}

{#- dbt's `source()`, with lake sources resolved to their files on DuckDB (unit-test fixtures untouched). -#}
{% macro source(source_name, table_name) -%}
    {%- set relation = builtins.source(source_name, table_name) -%}
    {%- set resource_type = model.resource_type if model is defined and model else none -%}
    {%- if execute and target.type == 'duckdb' and resource_type != 'unit_test' -%}
        {%- set node = graph.sources.get('source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name) -%}
        {%- set lake_table = node.config.meta.get('lake_table') if node else none -%}
        {%- if lake_table -%}
            {{ return(relation.incorporate(external=flight_delays.lake_read_parquet(lake_table, node))) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}
