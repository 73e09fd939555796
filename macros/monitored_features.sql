{#- The feature mart's features whose drift fct_feature_drift_by_month watches: every column of
    ml_flight_delay_features with a `reason` sentence in its contract (the model's features), but those whose meta
    says `drift_monitored: false` (the calendar month: every month after the training window is new by
    construction). Read from the graph, so a feature added to the mart's contract is watched with no edit here.
    Returns
    {'numeric': [...], 'categorical': [...]}; empty lists at parse time. -#}
{% macro monitored_features() %}
    {%- set features = {'numeric': [], 'categorical': []} -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
                if node.resource_type == 'model' and node.name == 'ml_flight_delay_features' -%}
            {%- for column in node.columns.values() -%}
                {%- set meta = column.get('meta') or (column.get('config') or {}).get('meta') or {} -%}
                {%- if meta.get('reason') and meta.get('drift_monitored', true) -%}
                    {%- set kind = 'categorical' if (column.get('data_type') or '') == 'varchar' else 'numeric' -%}
                    {%- do features[kind].append(column['name']) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(features) }}
{% endmacro %}
