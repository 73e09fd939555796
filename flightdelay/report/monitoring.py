"""The report's monitoring section: the model's metrics month by month and the features that drifted, from the
dbt monitoring marts (models/marts/ml/fct_model_*_by_month.sql, fct_feature_drift_by_month.sql)."""

from __future__ import annotations

import duckdb
import pandas as pd
from matplotlib.figure import Figure

from flightdelay.report.figures import BASELINE_COLOR, MODEL_COLOR, Chart, svg

MONITORING_TABLES = ("marts.fct_model_performance_by_month", "marts.fct_model_calibration_by_month",
                     "marts.fct_feature_drift_by_month")
FIT_SHADE = "#eeeeee"


def monitoring_charts(con: duckdb.DuckDBPyConnection) -> list[Chart]:
    months = con.execute("""
        select flight_month, roc_auc, brier_skill_score, observed_delay_15_rate, mean_delay_15_probability,
               is_seen_in_fit
        from marts.fct_model_performance_by_month order by flight_month""").df()
    if months.empty:
        return []
    labels = months["flight_month"].astype(str).str[:7]

    fig = Figure(figsize=(7.2, 5.2))
    top, bottom = fig.subplots(2, 1, sharex=True)
    for ax in (top, bottom):  # the months the fit saw, shaded: only the others are an honest test
        for position, seen in enumerate(months["is_seen_in_fit"]):
            if seen:
                ax.axvspan(position - 0.5, position + 0.5, color=FIT_SHADE, zorder=0)
    top.plot(labels, months["roc_auc"], "o-", color=MODEL_COLOR, label="ROC AUC")
    top.plot(labels, months["brier_skill_score"], "s-", color=BASELINE_COLOR, label="Brier skill score")
    top.set(title="Model metrics by month (shaded: months the fit saw)", ylabel="score")
    top.legend(loc="lower left")
    top.grid(axis="y", alpha=0.3)
    bottom.plot(labels, months["observed_delay_15_rate"], "o-", color="#2ca02c", label="observed delay rate")
    bottom.plot(labels, months["mean_delay_15_probability"], "x--", color=MODEL_COLOR, label="mean predicted")
    bottom.set(ylabel="share of flights")
    bottom.legend(loc="upper left")
    bottom.grid(axis="y", alpha=0.3)
    bottom.tick_params(axis="x", rotation=45)
    by_month = svg(fig)

    calibration = con.execute("""
        select c.flight_month, c.probability_decile, c.mean_delay_15_probability, c.observed_delay_15_rate
        from marts.fct_model_calibration_by_month as c
        join marts.fct_model_performance_by_month as p using (model_id, flight_month)
        where not p.is_seen_in_fit
        order by c.flight_month, c.probability_decile""").df()
    fig = Figure(figsize=(4.8, 4.4))
    ax = fig.subplots()
    for month, deciles in calibration.groupby("flight_month"):
        ax.plot(deciles["mean_delay_15_probability"], deciles["observed_delay_15_rate"], "o-",
                label=str(month)[:7])
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="mean predicted probability (decile)", ylabel="observed delay rate",
           title="Calibration by month after the fit")
    if not calibration.empty:
        ax.legend(loc="upper left")
    charts = [
        Chart("model-by-month", "Model metrics by month",
              "ROC AUC and Brier skill score (against predicting the month's own delay rate) of each month's "
              "predictions, and the delay rate observed against predicted.", by_month),
        Chart("calibration-by-month", "Calibration by month",
              "Observed delay rate against the mean prediction in each tenth of a month's predictions, for the "
              "months the fit never saw.", svg(fig)),
    ]

    drift = con.execute("""
        select feature_name, max(population_stability_index) as psi, max(max_training_month_psi) as training_psi
        from marts.fct_feature_drift_by_month
        where not is_seen_in_fit
        group by feature_name
        order by psi - training_psi desc, feature_name
        limit 12""").df()
    if not drift.empty:
        fig = Figure(figsize=(7, 4.8))
        ax = fig.subplots()
        ax.barh(drift["feature_name"], drift["psi"], color=MODEL_COLOR, label="largest after the fit")
        ax.scatter(drift["training_psi"], drift["feature_name"], color=BASELINE_COLOR, zorder=3,
                   label="largest of the training months")
        ax.axvline(0.25, color="grey", linestyle="--", linewidth=0.8)
        ax.invert_yaxis()
        ax.set(xlabel="population stability index", title="Feature drift against the training window")
        ax.legend(loc="lower right")
        charts.append(Chart("feature-drift", "Feature drift",
                            "The 12 features whose largest monthly index after the fit (bars) is furthest above "
                            "the largest of their training months (dots), in that order; dashed: 0.25.", svg(fig)))
    return charts


def drifted_features(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute("""
        select strftime(flight_month, '%Y-%m') as month, feature_name as feature,
               round(population_stability_index, 3) as psi,
               round(max_training_month_psi, 3) as "training months' largest",
               round(missing_share, 3) as "missing share"
        from marts.fct_feature_drift_by_month
        where is_drifted
        order by flight_month, population_stability_index desc""").df()
