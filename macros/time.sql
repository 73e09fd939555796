{#- Time arithmetic and time-zone conversion. Timestamps in this project are naive and named for
    their zone (`_at_utc`, `_at_local`, `_at_lst`); these macros are the only place a zone rule lives. -#}

{#- Local wall-clock timestamp in an IANA zone -> naive UTC timestamp. -#}
{% macro local_to_utc(local_timestamp, iana_time_zone) -%}
    {{ return(adapter.dispatch('local_to_utc', 'flight_delays')(local_timestamp, iana_time_zone)) }}
{%- endmacro %}

{% macro duckdb__local_to_utc(local_timestamp, iana_time_zone) -%}
    timezone('UTC', timezone({{ iana_time_zone }}, {{ local_timestamp }}))
{%- endmacro %}

{% macro postgres__local_to_utc(local_timestamp, iana_time_zone) -%}
    (({{ local_timestamp }}) at time zone {{ iana_time_zone }}) at time zone 'UTC'
{%- endmacro %}

{% macro redshift__local_to_utc(local_timestamp, iana_time_zone) -%}
    convert_timezone({{ iana_time_zone }}, 'UTC', {{ local_timestamp }})
{%- endmacro %}

{#- Local wall-clock timestamp -> naive UTC by its hour's known offset (UTC minus local, in seconds), or by its own
    conversion in the IANA zone when the offset is null (int_flights_converted_to_utc says when). -#}
{% macro local_to_utc_by_hour_offset(local_timestamp, utc_minus_local_seconds, iana_time_zone) -%}
    case
        when {{ utc_minus_local_seconds }} is not null
            then {{ flight_delays.add_interval(local_timestamp, utc_minus_local_seconds, 'second') }}
        else {{ flight_delays.local_to_utc(local_timestamp, iana_time_zone) }}
    end
{%- endmacro %}

{#- Timestamp shifted by a whole number of hours or minutes (the number may be a column). -#}
{% macro add_hours(timestamp, hours) -%}
    {{ flight_delays.add_interval(timestamp, hours, 'hour') }}
{%- endmacro %}

{% macro add_minutes(timestamp, minutes) -%}
    {{ flight_delays.add_interval(timestamp, minutes, 'minute') }}
{%- endmacro %}

{% macro add_interval(timestamp, amount, unit) -%}
    {{ return(adapter.dispatch('add_interval', 'flight_delays')(timestamp, amount, unit)) }}
{%- endmacro %}

{% macro default__add_interval(timestamp, amount, unit) -%}
    {{ dbt.dateadd(unit, amount, timestamp) }}
{%- endmacro %}

{#- dbt's postgres dateadd leaves the sum unparenthesised, which a cast or a comparison around it would split -#}
{% macro postgres__add_interval(timestamp, amount, unit) -%}
    ({{ timestamp }} + ({{ amount }}) * interval '1 {{ unit }}')
{%- endmacro %}

{#- Whole local days before a flight's own date that its as-of time (scheduled departure minus
    `prediction_horizon_minutes`, in UTC) can fall on: the horizon plus the hour a spring-forward change adds to
    the local clock between the two. Up to 23 hours: the day before at most; from 23 h 01 min: two days before. -#}
{% macro horizon_days_back() -%}
    {{ return(((var('prediction_horizon_minutes') | int) + 59) // 1440) }}
{%- endmacro %}

{#- Local timestamp from a date and a BTS hhmm clock time; 2400 is midnight at the end of the day. -#}
{% macro hhmm_to_timestamp(date_column, hhmm_column) -%}
    {{ return(adapter.dispatch('hhmm_to_timestamp', 'flight_delays')(date_column, hhmm_column)) }}
{%- endmacro %}

{% macro default__hhmm_to_timestamp(date_column, hhmm_column) -%}
    {{ dbt.dateadd('minute', '(floor(' ~ hhmm_column ~ ' / 100) * 60 + ' ~ hhmm_column ~ ' % 100)',
                   'cast(' ~ date_column ~ ' as timestamp)') }}
{%- endmacro %}

{% macro postgres__hhmm_to_timestamp(date_column, hhmm_column) -%}
    (cast({{ date_column }} as timestamp)
        + (floor({{ hhmm_column }} / 100) * 60 + {{ hhmm_column }} % 100) * interval '1 minute')
{%- endmacro %}

{#- Whole minutes from `start` to `end` (end - start). -#}
{% macro minutes_between(start_timestamp, end_timestamp) -%}
    {{ return(adapter.dispatch('minutes_between', 'flight_delays')(start_timestamp, end_timestamp)) }}
{%- endmacro %}

{% macro default__minutes_between(start_timestamp, end_timestamp) -%}
    {{ dbt.datediff(start_timestamp, end_timestamp, 'minute') }}
{%- endmacro %}

{% macro postgres__minutes_between(start_timestamp, end_timestamp) -%}
    cast(floor(extract(epoch from ({{ end_timestamp }} - {{ start_timestamp }})) / 60) as integer)
{%- endmacro %}

{#- Whole days from `start` to `end` (dbt's postgres datediff is `((end)::date - (start)::date)`). -#}
{% macro days_between(start_date, end_date) -%}
    {{ dbt.datediff(start_date, end_date, 'day') }}
{%- endmacro %}

{#- A date part as a number: year, month, day, dow (Sunday = 0 on every engine here), hour. -#}
{% macro date_part(part, expression) -%}
    {{ return(adapter.dispatch('date_part', 'flight_delays')(part, expression)) }}
{%- endmacro %}

{% macro default__date_part(part, expression) -%}
    extract({{ part }} from {{ expression }})
{%- endmacro %}

{#- The current time as a naive UTC timestamp, whatever the session's time zone. -#}
{% macro utc_now() -%}
    {{ return(adapter.dispatch('utc_now', 'flight_delays')()) }}
{%- endmacro %}

{% macro default__utc_now() -%}
    cast({{ dbt.current_timestamp() }} as timestamp)
{%- endmacro %}

{% macro duckdb__utc_now() -%}
    timezone('UTC', current_timestamp)
{%- endmacro %}

{% macro postgres__utc_now() -%}
    (now() at time zone 'UTC')
{%- endmacro %}

{% macro redshift__utc_now() -%}
    sysdate
{%- endmacro %}
