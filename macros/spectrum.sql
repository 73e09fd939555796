{#- Redshift Spectrum over the lake, without the dbt-external-tables package (the package hub is out of
    reach). Sources carry a `meta.spectrum` block (location, file_format, partitions) and typed columns.

    In production EMR writes the lake with the Glue Data Catalog as its Hive metastore, so the tables and
    their partitions already exist in Glue and the external schema alone exposes them. The table and
    partition statements are for lakes whose catalog is not kept by Spark (or to repair one); they point at
    the copy of each table that a `prep` run committed, `<location>/run-<lake_run_id>/`, where `lake_run_id`
    is the `run_id` in the lake's pointer, lake/weather/_current.json (spark_prep/lake_snapshots.py).

      dbt run-operation stage_spectrum_sources --target redshift \
        --args '{glue_database: flightdelay_lake, iam_role_arn: "arn:aws:iam::...:role/...", region: us-east-1}'
      dbt run-operation stage_spectrum_sources --target redshift \
        --args '{..., create_tables: true, lake_run_id: 3f2a9c01b7de, partitions: {...}}'

    With `dry_run: true` the statements are only printed (deploy --dry-run uses this). -#}

{#- External schema over a Glue Data Catalog database. -#}
{% macro spectrum_create_external_schema(schema_name, glue_database, iam_role_arn, region) -%}
create external schema if not exists {{ schema_name }}
from data catalog
database '{{ glue_database | replace("'", "''") }}'
iam_role '{{ iam_role_arn | replace("'", "''") }}'
region '{{ region | replace("'", "''") }}'
create external database if not exists
{%- endmacro %}

{#- The folder of a table's committed copy: its meta.spectrum location and the committing run. -#}
{% macro spectrum_location(source_node, lake_run_id) -%}
    {%- if not lake_run_id or not modules.re.fullmatch('[0-9a-z]{1,32}', lake_run_id | string) -%}
        {{ exceptions.raise_compiler_error("Spectrum tables and partitions need lake_run_id: the run_id in the lake's "
            ~ "pointer, lake/weather/_current.json (got " ~ (lake_run_id or 'nothing') ~ ")") }}
    {%- endif -%}
    {{ return(source_node.meta.spectrum.location.rstrip('/') ~ '/run-' ~ lake_run_id) }}
{%- endmacro %}

{#- External table for a source node with a meta.spectrum block; partition columns are declared only in
    `partitioned by`, as Spectrum requires. -#}
{% macro spectrum_create_external_table(source_node, lake_run_id) -%}
    {%- set spectrum = source_node.meta.spectrum -%}
    {%- set partition_names = spectrum.partitions | map(attribute='name') | list -%}
    {%- set columns = [] -%}
    {%- for column in source_node.columns.values() if column.name not in partition_names -%}
        {%- if not column.data_type -%}
            {{ exceptions.raise_compiler_error("source " ~ source_node.source_name ~ "." ~ source_node.name
                ~ ": column " ~ column.name ~ " needs a data_type for its Spectrum table") }}
        {%- endif -%}
        {%- do columns.append(column.name ~ ' ' ~ column.data_type) -%}
    {%- endfor -%}
create external table {{ source_node.schema }}.{{ source_node.identifier }} (
    {{ columns | join(',\n    ') }}
)
{%- if spectrum.partitions %}
partitioned by (
    {%- for partition in spectrum.partitions %}
    {{ partition.name }} {{ partition.data_type }}{{ ',' if not loop.last }}
    {%- endfor %}
)
{%- endif %}
stored as {{ spectrum.file_format | default('parquet') }}
location '{{ flight_delays.spectrum_location(source_node, lake_run_id) }}/'
{%- endmacro %}

{#- `alter table ... add partition` statements for a list of partitions (each a dict of partition column
    -> value), at most `batch_size` partitions per statement (Redshift's limit is 100). Hive-style paths
    under the table's location. -#}
{% macro spectrum_add_partitions(source_node, partitions, lake_run_id, batch_size=100) -%}
    {%- if batch_size > 100 -%}
        {{ exceptions.raise_compiler_error("Redshift adds at most 100 partitions per statement") }}
    {%- endif -%}
    {%- set spectrum = source_node.meta.spectrum -%}
    {%- set statements = [] -%}
    {%- for batch in partitions | batch(batch_size) -%}
        {%- set location = flight_delays.spectrum_location(source_node, lake_run_id) -%}
        {%- set clauses = [] -%}
        {%- for partition in batch -%}
            {%- set values = [] -%}
            {%- set path = [] -%}
            {%- for column in spectrum.partitions -%}
                {%- set value = partition[column.name] -%}
                {%- do values.append(column.name ~ " = '" ~ value | replace("'", "''") ~ "'") -%}
                {%- do path.append(column.name ~ '=' ~ value) -%}
            {%- endfor -%}
            {%- set partition_location = (location ~ "/" ~ path | join('/') ~ "/") | replace("'", "''") -%}
            {%- do clauses.append("partition (" ~ values | join(', ') ~ ") location '" ~ partition_location ~ "'") -%}
        {%- endfor -%}
        {%- do statements.append("alter table " ~ source_node.schema ~ "." ~ source_node.identifier
            ~ " add if not exists\n    " ~ clauses | join('\n    ')) -%}
    {%- endfor -%}
    {{ return(statements) }}
{%- endmacro %}

{#- Every statement that exposes the lake to Redshift: the external schema, and optionally the tables and
    their partitions. `partitions` maps a source table name to its partition dicts. -#}
{% macro spectrum_setup_statements(glue_database, iam_role_arn, region, create_tables=false, partitions={}, lake_run_id=none) -%}
    {%- set statements = [] -%}
    {%- set nodes = graph.sources.values() | selectattr('meta.spectrum', 'defined') | list -%}
    {%- set schemas = nodes | map(attribute='schema') | unique | list -%}
    {%- for schema_name in schemas -%}
        {%- do statements.append(flight_delays.spectrum_create_external_schema(schema_name, glue_database, iam_role_arn, region)) -%}
    {%- endfor -%}
    {%- for node in nodes | sort(attribute='name') -%}
        {%- if create_tables -%}
            {%- do statements.append("drop table if exists " ~ node.schema ~ "." ~ node.identifier) -%}
            {%- do statements.append(flight_delays.spectrum_create_external_table(node, lake_run_id)) -%}
        {%- endif -%}
        {%- for statement in flight_delays.spectrum_add_partitions(node, partitions.get(node.name, []), lake_run_id) -%}
            {%- do statements.append(statement) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(statements) }}
{%- endmacro %}

{% macro stage_spectrum_sources(glue_database, iam_role_arn, region, create_tables=false, partitions={}, lake_run_id=none, dry_run=false) %}
    {%- set statements = flight_delays.spectrum_setup_statements(glue_database, iam_role_arn, region, create_tables, partitions, lake_run_id) -%}
    {%- for statement in statements %}
        {%- if dry_run or not execute %}
            {{ print(statement ~ ';\n') }}
        {%- else %}
            {{ log('spectrum: ' ~ statement.split('\n')[0], info=true) }}
            {#- external DDL cannot run inside a transaction block -#}
            {% call statement('spectrum_ddl', fetch_result=false, auto_begin=false) %}{{ statement }}{% endcall %}
        {%- endif %}
    {%- endfor %}
{% endmacro %}
