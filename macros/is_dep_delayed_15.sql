{#- The label, `is_dep_delayed_15`: the one rule, read by every model that says a flight was delayed.
    A departed flight left its gate 15 minutes or more after schedule (BTS `DEP_DEL15`): true or false.
    A cancelled flight never left, so it has no label: null. A boolean on every engine; where a number is
    needed (a rate, a sum, XGBoost's labels) the reader converts it.
    Arguments default to the column names the models use. -#}
{% macro is_dep_delayed_15(dep_delay_minutes='dep_delay_minutes', is_cancelled='is_cancelled') -%}
    case when not {{ is_cancelled }} then {{ dep_delay_minutes }} >= 15 end
{%- endmacro %}
