{#- Incremental by flight month, equal to a full refresh row for row.

    A new BTS month changes the flights dated in it, and, through the windows the features look back over
    (28 days of route history, 7 days of runs, the previous legs, hours of departures), flights after it. Windows
    look back in UTC while months are cut by local date, and local dates run up to 21 hours apart, so a flight
    dated the last day before the month may see one of its flights too; never an earlier one. So a run rebuilds
    every flight dated on or after `rebuild_margin_days` before one month M: the model's pre-hook
    (`delete_rebuilt_flights`) deletes them, its query recomputes them (`is_rebuilt`), reading its inputs from
    `lookback_days` before that (`is_in_lookback`) so every window a rebuilt flight looks through is whole.

    M comes from `var('rebuild_from_month')` ('YYYY-MM-01'): `flightdelay build` passes the first month whose raw
    flights or weather changed since what is published (flightdelay/flow/build_inputs.py). A hand-run `dbt run`
    without it rebuilds from the newest month already built, which covers months appended since; a re-delivered
    older month needs the variable or `--full-refresh`.

    The marts with an enforced contract set on_schema_change 'append_new_columns' (what dbt allows with a contract
    besides 'fail'): the contract checks their columns on every run, and 'fail' would also refuse PostgreSQL typing
    the new rows' strings `text` where the contract's table has `varchar`.

    Not dbt's `microbatch`: it runs one query per batch, and each month's query would re-read its own lookback,
    so a full refresh of three years would read most inputs twice; the models here are one query each. -#}

{% macro rebuild_from_date() -%}
    {#- unit tests have no relation of their own (`this`), and render full refreshes -#}
    {%- if this is none -%}
        {{ return(none) }}
    {%- endif -%}
    {#- `dbt compile --no-populate-cache --vars '{compile_without_warehouse: true}'` renders SQL with no
        connection (is_incremental() asks the warehouse whether the table exists; dbt's cache would list its
        tables first): a full refresh, or the incremental query from `rebuild_from_month` when that is given too.
        Only for compile: a run must see what really exists. -#}
    {%- if var('compile_without_warehouse', false) -%}
        {%- if flags.WHICH != 'compile' -%}
            {{ exceptions.raise_compiler_error(
                "var compile_without_warehouse is for `dbt compile` only, not `dbt " ~ flags.WHICH ~ "`") }}
        {%- endif -%}
    {%- elif not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set month = var('rebuild_from_month', none) -%}
    {%- if month is none and var('compile_without_warehouse', false) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if month is none and execute -%}
        {%- set newest = run_query('select max(flight_date) from ' ~ this).columns[0].values()[0] -%}
        {%- if newest is none -%}
            {{ return(none) }}
        {%- endif -%}
        {%- set month = newest.strftime('%Y-%m-01') -%}
    {%- endif -%}
    {%- if month is not none and not modules.re.fullmatch('[0-9]{4}-(0[1-9]|1[0-2])-01', month | string) -%}
        {{ exceptions.raise_compiler_error(
            "var rebuild_from_month must be the first day of a month as YYYY-MM-01, not " ~ (month | string)) }}
    {%- endif -%}
    {%- if month is none -%}
        {{ return(none) }}
    {%- endif -%}
    {#- the first flight date rebuilt: the margin before the month (see the top of this file) -#}
    {%- set margin = var('rebuild_margin_days') | string -%}
    {%- if not modules.re.fullmatch('[0-9]{1,3}', margin) -%}
        {{ exceptions.raise_compiler_error(
            "var rebuild_margin_days must be a whole number of days, 0 or more, not " ~ margin) }}
    {%- endif -%}
    {%- set first_day = modules.datetime.date.fromisoformat(month | string)
        - modules.datetime.timedelta(days=margin | int) -%}
    {{ return(first_day.isoformat()) }}
{%- endmacro %}

{#- A predicate: the row's flight is rebuilt by this run (every row on a full refresh). -#}
{% macro is_rebuilt(date_column) -%}
    {%- set first_day = flight_delays.rebuild_from_date() -%}
    {%- if first_day is none -%}
        true
    {%- else -%}
        {{ date_column }} >= cast('{{ first_day }}' as date)
    {%- endif -%}
{%- endmacro %}

{#- A predicate: the row is an input a rebuilt flight may read, `lookback_days` before the first rebuilt day. -#}
{% macro is_in_lookback(date_column, lookback_days) -%}
    {%- set first_day = flight_delays.rebuild_from_date() -%}
    {%- if first_day is none -%}
        true
    {%- else -%}
        {{ date_column }} >= {{ dbt.dateadd('day', -(lookback_days | int), "cast('" ~ first_day ~ "' as date)") }}
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of every model incremental by month: deletes the flights this run rebuilds, so a month that
    lost rows (a re-delivered file) loses them here too. -#}
{% macro delete_rebuilt_flights() -%}
    {%- set first_day = flight_delays.rebuild_from_date() -%}
    {%- if first_day is not none -%}
        delete from {{ this }} where flight_date >= cast('{{ first_day }}' as date)
    {%- endif -%}
{%- endmacro %}

{#- The rows of `relation` (an import CTE) that this run rebuilds. A model whose windows look back imports its
    inputs from `lookback_days` before (is_in_lookback), and writes only these. -#}
{% macro rebuilt_rows(relation, date_column='flight_date') -%}
    select *
    from {{ relation }}
    where {{ flight_delays.is_rebuilt(date_column) }}
{%- endmacro %}
