{#- What the departure board showed at an as-of time T about a departure scheduled `minutes_since_scheduled`
    minutes before T: the one rule every "known outcome" feature follows, so no feature can see further.
    - Its 15-minute status is known from 15 minutes after its scheduled time: by then it has left on time
      or it has not (late or cancelled).
    - Its delay is known once it has left (delay <= minutes since scheduled); until then it counts as late by
      the time waited so far.
    Arguments default to the column names the models use. -#}

{% macro is_status_known(minutes_since_scheduled='minutes_since_scheduled') -%}
    case when {{ minutes_since_scheduled }} >= 15 then 1 else 0 end
{%- endmacro %}

{% macro is_late_15(dep_delay_minutes='dep_delay_minutes', is_cancelled='is_cancelled') -%}
    case when {{ is_cancelled }} or {{ dep_delay_minutes }} >= 15 then 1 else 0 end
{%- endmacro %}

{% macro is_known_late_15(minutes_since_scheduled='minutes_since_scheduled', dep_delay_minutes='dep_delay_minutes',
                          is_cancelled='is_cancelled') -%}
    case
        when {{ minutes_since_scheduled }} >= 15 then {{ flight_delays.is_late_15(dep_delay_minutes, is_cancelled) }}
        else 0
    end
{%- endmacro %}

{#- Still on the ground at T: cancelled, no departure reported, or leaving later than the minutes since its
    scheduled time. -#}
{% macro has_not_left(minutes_since_scheduled, dep_delay_minutes, is_cancelled) -%}
    ({{ is_cancelled }} or {{ dep_delay_minutes }} is null or {{ dep_delay_minutes }} > {{ minutes_since_scheduled }})
{%- endmacro %}

{% macro is_on_ground(minutes_since_scheduled='minutes_since_scheduled', dep_delay_minutes='dep_delay_minutes',
                      is_cancelled='is_cancelled') -%}
    case
        when {{ flight_delays.has_not_left(minutes_since_scheduled, dep_delay_minutes, is_cancelled) }} then 1
        else 0
    end
{%- endmacro %}

{% macro late_so_far_minutes(minutes_since_scheduled='minutes_since_scheduled', dep_delay_minutes='dep_delay_minutes',
                             is_cancelled='is_cancelled') -%}
    case
        when {{ flight_delays.has_not_left(minutes_since_scheduled, dep_delay_minutes, is_cancelled) }}
            then {{ minutes_since_scheduled }}
        else {{ dep_delay_minutes }}
    end
{%- endmacro %}
