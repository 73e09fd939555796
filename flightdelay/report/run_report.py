"""The run report: one static HTML page (charts as inline SVG, no server, no scripts) written by every run.

It shows what happened to the data (rows per stage, data-quality summary), where delays happen
(scheduled hour, carrier, month, weather buckets, routes) and how good the model is next to the
baseline (ROC, precision-recall, calibration, feature importance), with links to dbt docs and Data Docs.
"""

from __future__ import annotations

import html
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
from matplotlib.figure import Figure  # figures without pyplot: no display backend, no global state

from flightdelay.report.explained_flights import explained_flights, explained_flights_html
from flightdelay.report.figures import BASELINE_COLOR, MODEL_COLOR, Chart, svg
from flightdelay.report.monitoring import MONITORING_TABLES, drifted_features, monitoring_charts
from flightdelay.settings import Settings, describe_horizon


def _bar(frame: pd.DataFrame, label: str, value: str, title: str, xlabel: str, ylabel: str,
         horizontal: bool = False) -> str:
    fig = Figure(figsize=(7, 3.6 if not horizontal else 4.8))
    ax = fig.subplots()
    if horizontal:
        ax.barh(frame[label].astype(str), frame[value], color=MODEL_COLOR)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
    else:
        ax.bar(frame[label].astype(str), frame[value], color=MODEL_COLOR)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="x" if horizontal else "y", alpha=0.3)
    return svg(fig)


# The small published tables the report reads; copied from the backend's warehouse into an in-memory DuckDB,
# so the report's SQL is one dialect whatever the warehouse is.
REPORT_TABLES = ("marts.delay_rates_by_scheduled_hour", "marts.delay_rates_by_carrier_month",
                 "marts.delay_rates_by_weather_condition", "marts.delay_rates_by_route", "raw.data_quality_summary",
                 *MONITORING_TABLES)


def report_tables(settings: Settings) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    warehouse = settings.warehouse()
    with warehouse.connect(read_only=True) as source:
        for relation in REPORT_TABLES:
            schema = relation.split(".")[0]
            con.execute(f"create schema if not exists {schema}")
            con.register("copied", warehouse.query_arrow(source, f"select * from {relation}"))
            con.execute(f"create table {relation} as select * from copied")
            con.unregister("copied")
    return con


def _query(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    return con.execute(sql).df()


def delay_charts(con: duckdb.DuckDBPyConnection) -> list[Chart]:
    """Delay patterns, read from the published analytics marts (the run report is their exposure)."""
    by_hour = _query(con, """
        select scheduled_dep_hour_local as hour,
               sum(dep_delayed_15_flights) / sum(departed_flights) as delay_rate, sum(departed_flights) as flights
        from marts.delay_rates_by_scheduled_hour group by all order by hour""")
    by_carrier = _query(con, """
        select coalesce(max(carrier_name), carrier_code) || ' (' || carrier_code || ')' as carrier,
               sum(dep_delayed_15_flights) / sum(departed_flights) as delay_rate, sum(departed_flights) as flights
        from marts.delay_rates_by_carrier_month
        group by carrier_code having sum(departed_flights) >= 100 order by delay_rate desc""")
    by_month = _query(con, """
        select month(flight_month) as month, sum(dep_delayed_15_flights) / sum(departed_flights) as delay_rate
        from marts.delay_rates_by_carrier_month group by all order by month""")
    weather = _query(con, """
        select weather_factor as factor, bucket, dep_delay_15_rate as delay_rate, departed_flights as flights,
               bucket_order
        from marts.delay_rates_by_weather_condition""")
    routes = _query(con, """
        select origin_airport_code || '-' || dest_airport_code as route, departed_flights as flights,
               dep_delay_15_rate as delay_rate
        from marts.delay_rates_by_route order by departed_flights desc, route limit 15""")

    weather = weather[weather["bucket"] != "unknown"].sort_values(["factor", "bucket_order"])
    fig = Figure(figsize=(10, 3.4))
    axes = fig.subplots(1, 3, sharey=True)
    for ax, (factor, rows) in zip(axes, weather.groupby("factor", sort=True), strict=True):
        ax.bar(rows["bucket"], rows["delay_rate"], color=MODEL_COLOR)
        ax.set_title(factor)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("share delayed >= 15 min")
    weather_svg = svg(fig)

    return [
        Chart("delay-by-hour", "Delay rate by scheduled departure hour",
              "Share of departures delayed 15+ minutes, by local scheduled hour: delays build up during the day.",
              _bar(by_hour, "hour", "delay_rate", "Delay rate by scheduled hour", "local hour", "share delayed")),
        Chart("delay-by-carrier", "Delay rate by carrier",
              "Share of each carrier's departures delayed 15+ minutes (carriers with 100+ flights).",
              _bar(by_carrier, "carrier", "delay_rate", "Delay rate by carrier", "", "share delayed",
                   horizontal=True)),
        Chart("delay-by-month", "Delay rate by month",
              "Seasonality: share of departures delayed 15+ minutes per month.",
              _bar(by_month, "month", "delay_rate", "Delay rate by month", "month", "share delayed")),
        Chart("delay-by-weather", "Delay rate by weather at the as-of time",
              "Delay rate by the origin's precipitation, visibility and wind in the last report before the as-of time.",
              weather_svg),
        Chart("top-routes", "Busiest routes",
              "The 15 busiest routes and the share of their departures delayed 15+ minutes.",
              _bar(routes, "route", "delay_rate", "Delay rate on the 15 busiest routes", "", "share delayed",
                   horizontal=True)),
    ]


def _model_and_baseline(series: list[tuple[list, list, str | None]], xlabel: str, ylabel: str, title: str,
                        legend: str, diagonal: bool = False, style: str = "-") -> str:
    """One chart of the model's and the baseline's curves (`series`: each one's x, y and what its label adds),
    with the diagonal a perfect calibration or a random ranking would draw."""
    fig = Figure(figsize=(4.8, 4.4))
    ax = fig.subplots()
    for (x, y, detail), name, color in zip(series, ("XGBoost", "baseline"), (MODEL_COLOR, BASELINE_COLOR),
                                           strict=True):
        ax.plot(x, y, style, color=color, label=f"{name} ({detail})" if detail else name)
    if diagonal:
        ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(loc=legend)
    return svg(fig)


def model_charts(evaluation: dict) -> list[Chart]:
    model = evaluation["binary_classification_metrics"]
    base = evaluation["baseline"]["binary_classification_metrics"]

    roc = [(m["receiver_operating_characteristic_curve"]["false_positive_rates"],
            m["receiver_operating_characteristic_curve"]["true_positive_rates"], f"AUC {m['auc']['value']:.3f}")
           for m in (model, base)]
    roc_svg = _model_and_baseline(roc, "false positive rate", "true positive rate", "ROC, test period",
                                  "lower right", diagonal=True)
    pr = [(m["precision_recall_curve"]["recalls"], m["precision_recall_curve"]["precisions"],
           f"PR AUC {m['pr_auc']['value']:.3f}") for m in (model, base)]
    pr_svg = _model_and_baseline(pr, "recall", "precision", "Precision-recall, test period", "upper right")
    calibration = [([r["mean_predicted"] for r in table], [r["observed_rate"] for r in table], None)
                   for table in (evaluation["model"]["calibration"], evaluation["baseline"]["calibration"])]
    calibration_svg = _model_and_baseline(calibration, "mean predicted probability", "observed delay rate",
                                          "Calibration, test period", "upper left", diagonal=True, style="o-")

    importance = pd.DataFrame(
        list(evaluation["model"]["feature_importance_gain"].items())[:15], columns=["feature", "gain"]
    )
    return [
        Chart("roc", "ROC curve", "True vs false positive rate on the test period, model and baseline.", roc_svg),
        Chart("precision-recall", "Precision-recall curve",
              "Precision against recall on the test period; the delayed class is the minority.", pr_svg),
        Chart("calibration", "Calibration",
              "Predicted probability against the observed delay rate, in ten probability bins.", calibration_svg),
        Chart("feature-importance", "Feature importance",
              "XGBoost total gain of the 15 most useful features.",
              _bar(importance, "feature", "gain", "Feature importance (gain)", "", "gain", horizontal=True)),
    ]


def quality_rows(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return _query(con, """
        select source_kind, source_file, rows_read, rows_loaded, rows_quarantined,
               coalesce(blank_lines, 0) as blank_lines
        from raw.data_quality_summary
        order by source_kind, source_file""")


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metrics_table(evaluation: dict) -> pd.DataFrame:
    model = evaluation["binary_classification_metrics"]
    base = evaluation["baseline"]["binary_classification_metrics"]
    return pd.DataFrame([
        {"metric": name, "XGBoost": f"{model[key]['value']:.4f}", "baseline": f"{base[key]['value']:.4f}"}
        for name, key in (("ROC AUC", "auc"), ("PR AUC", "pr_auc"), ("log loss", "log_loss"),
                          ("accuracy @0.5", "accuracy"))
    ])


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
figure.chart { margin: 0; padding: 0.5rem; border: 1px solid #eee; max-width: 100%; }
figure.chart svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: #555; max-width: 640px; }
.meta { color: #666; font-size: 0.9rem; }
.explained h3 { margin-bottom: 0.2rem; } .explained p { margin: 0.2rem 0; }
"""


def render(settings: Settings, run_record: dict, charts_delay: list[Chart], charts_model: list[Chart],
           quality: pd.DataFrame, evaluation: dict, report_dir: Path, explained: str = "",
           charts_monitoring: list[Chart] | None = None, drifted: pd.DataFrame | None = None) -> str:
    stages = pd.DataFrame(
        [{"step": s["name"], "seconds": f"{s['seconds']:.1f}",
          "facts": "; ".join(f"{k}: {v}" for k, v in s["facts"].items()
                             if not isinstance(v, list | dict) or v == [])}
         for s in run_record.get("steps", [])]
    )

    def link(target: Path, text: str) -> str:
        return f'<a href="{html.escape(os.path.relpath(target, report_dir))}">{text}</a>'

    def figures(charts: list[Chart]) -> str:
        return "".join(
            f'<figure class="chart" data-chart="{c.key}"><h3>{html.escape(c.title)}</h3>{c.svg}'
            f"<figcaption>{html.escape(c.caption)}</figcaption></figure>"
            for c in charts
        )

    reconciled = bool((quality["rows_read"] == quality["rows_loaded"] + quality["rows_quarantined"]).all())
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    # the model's horizon, as the flow recorded it when it trained (this command's setting for an older evaluation)
    horizon = describe_horizon(evaluation.get("training_data", {}).get("prediction_horizon_minutes")
                               or settings.prediction_horizon_minutes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flightdelay run report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<style>{STYLE}</style></head>
<body>
<h1>flightdelay run report</h1>
<p class="meta">Generated {generated}; prediction horizon {horizon}.
Docs: {link(settings.artifacts_dir / "dbt_docs" / "index.html", "dbt docs")} ·
{link(settings.data_docs_dir / "index.html", "Data Docs")} ·
{link(settings.ml_dir / "evaluation.json", "evaluation.json")}</p>

<h2 id="stages">Rows per stage</h2>
{_table(stages) if len(stages) else "<p>No run record.</p>"}

<h2 id="quality">Data quality</h2>
<p>Every raw row (BTS flights, LCD weather) is loaded or quarantined with a reason: read = loaded + quarantined
<strong>{"holds" if reconciled else "DOES NOT HOLD"}</strong> for every file.</p>
{_table(quality)}

<h2 id="delays">Where delays happen</h2>
<div class="charts">{figures(charts_delay)}</div>

<h2 id="model">Model</h2>
<p>XGBoost model <code>{html.escape(str(evaluation.get("model_id", "?")))}</code> on features known
{horizon} before departure, against a logistic
regression on the 2016 AWS blog's features; test period {evaluation["dataset"]["test"]["first_date"]} to
{evaluation["dataset"]["test"]["last_date"]} ({evaluation["dataset"]["test"]["rows"]:,} flights).</p>
{_table(_metrics_table(evaluation))}
<div class="charts">{figures(charts_model)}</div>

<h2 id="reasons">Why the model says so</h2>
<p>Three flights of the test period (the highest, the median and the lowest predicted chance of a delay), each with
the features that moved its prediction most: XGBoost's own feature contributions, in log-odds, told in words.</p>
{explained}

<h2 id="monitoring">The model month by month</h2>
<p>As each month's actuals arrive (dbt models <code>fct_model_performance_by_month</code>,
<code>fct_model_calibration_by_month</code>, <code>fct_feature_drift_by_month</code>): how well the model did, and
which features moved away from its training window further than any month of that window did (population
stability index above 0.25 and above every training month's).</p>
<div class="charts">{figures(charts_monitoring or [])}</div>
{_table(drifted) if drifted is not None and len(drifted) else "<p>No feature drifted past the threshold.</p>"}
</body></html>
"""


def write_report(settings: Settings) -> Path:
    record_path = settings.artifacts_dir / "run_summary.json"
    run_record = json.loads(record_path.read_text()) if record_path.exists() else {}
    evaluation_path = settings.ml_dir / "evaluation.json"
    if not evaluation_path.exists():
        raise FileNotFoundError(f"{evaluation_path} not found; run `flightdelay train` first")
    evaluation = json.loads(evaluation_path.read_text())
    with report_tables(settings) as con:
        charts_delay = delay_charts(con)
        quality = quality_rows(con)
        charts_monitoring = monitoring_charts(con)
        drifted = drifted_features(con)
    charts_model = model_charts(evaluation)
    explained = explained_flights_html(explained_flights(settings))
    report_dir = settings.artifacts_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / "index.html"
    path.write_text(render(settings, run_record, charts_delay, charts_model, quality, evaluation, report_dir,
                           explained, charts_monitoring, drifted),
                    encoding="utf-8")
    return path
