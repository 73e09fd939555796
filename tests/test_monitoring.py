"""The monitoring marts on a warehouse the flow built: the monthly AUC in SQL is scikit-learn's, and a month whose
temperatures moved past anything the training window saw fires the drift warning, naming the feature."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from sklearn.metrics import roc_auc_score

from flightdelay.flow.downstream_steps import monitoring_warnings
from flightdelay.settings import load_settings
from tests.conftest import PROJECT_ROOT, FlowRun, copy_of, differing_rows

pytestmark = pytest.mark.integration


def dbt(env: dict[str, str], *args: str, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), *args, "--project-dir", str(PROJECT_ROOT),
         "--profiles-dir", str(PROJECT_ROOT), "--target", "local", "--vars",
         json.dumps({"marts_schema": "marts", **variables})],
        env={**os.environ, **env}, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)


def test_the_monthly_auc_in_sql_is_scikit_learns(january_run: FlowRun):
    assert january_run.first.returncode == 0, january_run.first.stdout[-3000:]
    with duckdb.connect(january_run.env["FLIGHTDELAY_WAREHOUSE"], read_only=True) as con:
        rows = con.execute("select is_dep_delayed_15, delay_15_probability from marts.fct_flight_delay_predictions "
                           "where is_dep_delayed_15 is not null").fetchall()
        [(auc, flights, seen)] = con.execute("select roc_auc, flights, is_seen_in_fit "
                                             "from marts.fct_model_performance_by_month").fetchall()
        deciles = con.execute("select count(*), sum(flights) from marts.fct_model_calibration_by_month").fetchone()
    assert flights == len(rows) and seen  # January is the whole split here: the fit saw it
    assert auc == pytest.approx(roc_auc_score([r[0] for r in rows], [r[1] for r in rows]), abs=1e-12)
    assert deciles == (10, len(rows))


def test_a_shifted_month_fires_the_drift_warning_naming_the_feature(january_run: FlowRun, tmp_path: Path):
    run = copy_of(january_run, tmp_path / "drift")
    warehouse = run.env["FLIGHTDELAY_WAREHOUSE"]
    # February arrives as a copy of the training window's flights (January 1-14), a month on and 60 degrees
    # warmer: the same values of every other feature, so temperature alone moved
    with duckdb.connect(warehouse) as con:
        con.execute("""
            insert into marts.ml_flight_delay_features
            select * replace (flight_id || '-feb' as flight_id, flight_date + interval 31 day as flight_date,
                              temp_f + 60 as temp_f)
            from marts.ml_flight_delay_features
            where flight_date between date '2013-01-01' and date '2013-01-14'""")
    # the month's counts are added to the kept ones (the training window's deciles stay), then the drift mart
    built = dbt(run.env, "build", "--select", "int_feature_values_bucketed_by_month+")
    assert built.returncode == 0, built.stdout[-4000:]
    assert "Warning in test expression_is_true_fct_feature_drift_by_month" in built.stdout, built.stdout[-4000:]
    assert "WARN=1" in built.stdout
    with duckdb.connect(warehouse, read_only=True) as con:
        drifted = con.execute("select flight_month, feature_name from marts.fct_feature_drift_by_month "
                              "where is_drifted").fetchall()
        [(psi, most)] = con.execute("select population_stability_index, max_training_month_psi "
                                    "from marts.fct_feature_drift_by_month "
                                    "where feature_name = 'temp_f' and flight_month = date '2013-02-01'").fetchall()
    assert [(str(month), feature) for month, feature in drifted] == [("2013-02-01", "temp_f")]
    assert psi > 0.25 and psi > most

    # and the flow says so: the score step reports what the monitoring marts flag
    with pytest.MonkeyPatch.context() as patch:
        for name, value in run.env.items():
            patch.setenv(name, value)
        facts = monitoring_warnings(load_settings())
    assert facts == {"monitoring: features drifted": f"2013-02 temp_f (PSI {psi:.2f}, training months up to "
                                                     f"{most:.2f}) (marts.fct_feature_drift_by_month)"}


DRIFT_TABLES = {"intermediate": ("int_training_values_ranked_into_deciles", "int_feature_values_bucketed_by_month"),
                "marts": ("fct_feature_drift_by_month",)}


def test_a_monthly_run_into_the_training_window_ranks_and_counts_again(january_run: FlowRun, tmp_path: Path):
    """The drift monitor keeps the training window's deciles between monthly runs (macros/feature_drift.sql). A run
    whose rebuild reaches into the window (a re-delivered month the fit may have seen only a sample of, so the
    model keeps its id) must rank the window again and recount every month: the tables equal a full refresh."""
    monthly, full = copy_of(january_run, tmp_path / "monthly"), copy_of(january_run, tmp_path / "full")
    for run in (monthly, full):
        with duckdb.connect(run.env["FLIGHTDELAY_WAREHOUSE"]) as con:  # January is the training window here
            con.execute("update marts.ml_flight_delay_features set temp_f = temp_f + 30 "
                        "where flight_date between date '2013-01-10' and date '2013-01-20'")
    built = dbt(monthly.env, "build", "--select", "int_training_values_ranked_into_deciles+",
                rebuild_from_month="2013-01-01")
    assert built.returncode == 0, built.stdout[-4000:]
    built = dbt(full.env, "build", "--select", "int_training_values_ranked_into_deciles+", "--full-refresh")
    assert built.returncode == 0, built.stdout[-4000:]
    for schema, tables in DRIFT_TABLES.items():
        differences = differing_rows(monthly.env["FLIGHTDELAY_WAREHOUSE"], full.env["FLIGHTDELAY_WAREHOUSE"], schema)
        for table in tables:
            rows, only_monthly, only_full = differences[table]
            assert rows > 0 and only_monthly == only_full == 0, (schema, table, differences[table])
