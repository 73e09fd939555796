"""The models are incremental by month: a new month of raw data is processed alone (with the last days before it,
the rebuild margin), earlier days stay exactly as they were (same rows, same build time), and the result equals a
full refresh."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from flightdelay.raw.sample import write_sample
from tests.conftest import PROJECT_ROOT, FlowRun, copy_of, differing_rows, run_cli

pytestmark = pytest.mark.integration


def month_state(warehouse: str, schema: str) -> dict[str, tuple]:
    """Per month (January's last two days apart: the rebuild margin before February), rows, first and last build
    time, content hash."""
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = con.execute(f"""
            select case when flight_date between date '2013-01-30' and date '2013-01-31' then '2013-01 margin'
                        else strftime(flight_month, '%Y-%m') end,
                   count(*), min(transformed_at_utc), max(transformed_at_utc),
                   sum(hash(flight_id, dep_delay_minutes, scheduled_departure_at_utc))
            from {schema}.fct_flights group by 1 order by 1""").fetchall()
    return {month: rest for month, *rest in rows}


def test_new_month_is_processed_alone_and_earlier_months_are_untouched(january_run: FlowRun, tmp_path):
    assert january_run.first.returncode == 0, january_run.first.stderr[-2000:]
    root = tmp_path / "flow"
    shutil.copytree(january_run.root, root, ignore=shutil.ignore_patterns("screenshots"))
    env = {key: value.replace(str(january_run.root), str(root)) for key, value in january_run.env.items()}
    warehouse = env["FLIGHTDELAY_WAREHOUSE"]

    before = month_state(warehouse, "marts")
    assert list(before) == ["2013-01", "2013-01 margin"]

    february = write_sample(root / "raw", PROJECT_ROOT / "seeds", months=[2])
    loaded = run_cli(env, "load")
    assert loaded.returncode == 0, loaded.stdout[-2000:] + loaded.stderr[-2000:]
    built = run_cli(env, "build")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]

    after = month_state(warehouse, "marts_audit")
    assert list(after) == ["2013-01", "2013-01 margin", "2013-02"]
    # January to the 29th: the very rows published before, built at the same instant -> not reprocessed
    assert after["2013-01"] == before["2013-01"]
    # its last two days: rebuilt, to the same content
    margin, margin_before = after["2013-01 margin"], before["2013-01 margin"]
    assert (margin[0], margin[3]) == (margin_before[0], margin_before[3]) and margin[1] > margin_before[2]
    # February: all its rows, built by this run
    assert after["2013-02"][0] == february.flight_rows == 24951
    assert after["2013-02"][1] > before["2013-01"][2]

    # a full refresh rebuilds every month, with the same content
    refreshed = run_cli(env, "build", "--full-refresh")
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    again = month_state(warehouse, "marts_audit")
    assert again["2013-01"][0] == before["2013-01"][0] and again["2013-01"][3] == before["2013-01"][3]
    assert again["2013-01"][1] > before["2013-01"][2]


def test_a_new_month_equals_a_full_refresh_and_a_rerun_recomputes_nothing(january_run: FlowRun, tmp_path):
    """Issue 16: the flow on January, then February arrives. The run rebuilds from February on, scores February
    alone, and its marts and predictions equal a full refresh over both months row for row; run again with nothing
    changed, every step skips itself."""
    run = copy_of(january_run, tmp_path / "incremental")
    write_sample(run.root / "raw", PROJECT_ROOT / "seeds", months=[1, 2])  # February's file; the rest is unchanged
    monthly = run_cli(run.env, "run", "--skip-sample")
    assert monthly.returncode == 0, monthly.stdout[-3000:] + monthly.stderr[-3000:]
    # February, and the last days of January, whose windows may reach into February (the rebuild margin)
    assert "rebuilt: flights from 2013-01-30 on" in monthly.stdout
    assert "months of the marts validated: 2013-01 to 2013-02 (rebuilt)" in monthly.stdout
    # February is after the test period: the model stays, and only February is scored
    assert "the model in" in monthly.stdout and "--retrain trains anew" in monthly.stdout
    assert "scored: flights from 2013-01-30 on" in monthly.stdout

    # the same files, every model and every prediction computed afresh
    full = copy_of(FlowRun(run.root, run.env, run.flight_rows, monthly), tmp_path / "full")
    for args in (("build", "--full-refresh"), ("validate",), ("publish",), ("score", "--force")):
        done = run_cli(full.env, *args)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for schema in ("marts", "intermediate", "ml"):
        differences = differing_rows(run.env["FLIGHTDELAY_WAREHOUSE"], full.env["FLIGHTDELAY_WAREHOUSE"], schema)
        differences.pop("scoring_runs", None)  # the ledger of when each scored, not a result
        assert differences, schema
        assert {table: d for table, d in differences.items() if d[1] or d[2]} == {}, schema
    assert differing_rows(run.env["FLIGHTDELAY_WAREHOUSE"], full.env["FLIGHTDELAY_WAREHOUSE"], "marts")[
        "fct_flights"][0] == january_run.flight_rows + 24951

    with duckdb.connect(run.env["FLIGHTDELAY_WAREHOUSE"], read_only=True) as con:
        builds = con.execute("select count(*) from wap.builds").fetchone()[0]
    rerun = run_cli(run.env, "run", "--skip-sample")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    for step in ("build", "validate", "publish", "train", "score"):
        section = rerun.stdout.split(f"\n{step:<9}", 1)[1].split("\n", 2)[1]
        assert section.strip().startswith("skipped:"), (step, rerun.stdout[-3000:])
    assert "weather job: skipped: " in rerun.stdout
    assert "dbt docs skipped" in rerun.stdout
    with duckdb.connect(run.env["FLIGHTDELAY_WAREHOUSE"], read_only=True) as con:
        assert con.execute("select count(*) from wap.builds").fetchone()[0] == builds


def test_a_redelivered_month_rebuilds_the_days_before_it_whose_windows_reach_into_it(january_run: FlowRun, tmp_path):
    """Windows look back in UTC, months are cut by local date: a Los Angeles red-eye dated January 31 has its as-of
    time on February 1 in UTC, after a New York departure dated February 1. Re-delivering February must rebuild it
    (found by an attack on the incremental build: without the rebuild margin its carrier share stayed stale)."""
    run = copy_of(january_run, tmp_path / "incremental")
    flights = run.root / "raw" / "bts"
    header = (flights / "bts_ontime_2013_01.csv").read_text().splitlines()[0]
    with open(flights / "bts_ontime_2013_01.csv", "a") as january:
        january.write("1/31/2013 12:00:00 AM,B6,N999JB,1999,LAX,JFK,2330,2330,0.00,0.00,0745,0745,0.00,0.00,0.00,"
                      "300.00,2475.00\n")
    february = flights / "bts_ontime_2013_02.csv"
    february.write_text(f"{header}\n2/1/2013 12:00:00 AM,B6,N998JB,1998,JFK,BOS,0005,0005,0.00,0.00,0110,0110,0.00,"
                        "0.00,0.00,40.00,187.00\n")
    for step in ("load", "build", "validate", "publish"):
        done = run_cli(run.env, step)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # February again: the New York departure left two hours late
    february.write_text(f"{header}\n2/1/2013 12:00:00 AM,B6,N998JB,1998,JFK,BOS,0005,0205,120.00,1.00,0110,0310,"
                        "120.00,0.00,0.00,40.00,187.00\n")
    for step in ("load", "build"):
        done = run_cli(run.env, step)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "rebuilt: flights from 2013-01-30 on" in done.stdout

    full = copy_of(FlowRun(run.root, run.env, run.flight_rows, done), tmp_path / "full")
    refreshed = run_cli(full.env, "build", "--full-refresh")
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    for schema in ("marts_audit", "intermediate"):
        differences = differing_rows(run.env["FLIGHTDELAY_WAREHOUSE"], full.env["FLIGHTDELAY_WAREHOUSE"], schema)
        assert {table: d for table, d in differences.items() if d[1] or d[2]} == {}, schema


def test_train_does_not_skip_when_the_model_file_is_gone(january_run: FlowRun, tmp_path):
    run = copy_of(january_run, tmp_path / "copy")
    (run.artifacts / "ml" / "model" / "model.json").unlink()
    trained = run_cli(run.env, "train")
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    assert "skipped" not in trained.stdout and (run.artifacts / "ml" / "model" / "model.json").exists()


def test_a_month_inside_the_test_period_is_evaluated_not_refit(january_run: FlowRun, tmp_path):
    """The test period reaches into February, which arrives: the data the model was fit on (to the test period's
    start) is unchanged, so the model is kept and evaluated again on the grown test period, and the evaluation is
    the one a refit reports."""
    import json

    run = copy_of(january_run, tmp_path / "incremental")
    run.env["FLIGHTDELAY_TEST_END"] = "2013-02-28"
    model = run.artifacts / "ml" / "model" / "model.json"
    fit_before = model.read_bytes()
    write_sample(run.root / "raw", PROJECT_ROOT / "seeds", months=[1, 2])
    monthly = run_cli(run.env, "run", "--skip-sample")
    assert monthly.returncode == 0, monthly.stdout[-3000:] + monthly.stderr[-3000:]
    assert "evaluated again because: split changed; data of 2013-02 changed (after the fit's data" in monthly.stdout
    assert model.read_bytes() == fit_before
    evaluation = json.loads((run.artifacts / "ml" / "evaluation.json").read_text())
    assert evaluation["dataset"]["test"]["last_date"] == "2013-02-28"
    assert evaluation["training_data"]["fit_months"] == ["2013-01"]

    refit = copy_of(FlowRun(run.root, run.env, run.flight_rows, monthly), tmp_path / "refit")
    retrained = run_cli(refit.env, "train", "--retrain")
    assert retrained.returncode == 0, retrained.stdout[-3000:] + retrained.stderr[-3000:]
    assert "trained because: --retrain" in retrained.stdout
    assert (refit.artifacts / "ml" / "model" / "model.json").read_bytes() == fit_before  # the same fit
    again = json.loads((refit.artifacts / "ml" / "evaluation.json").read_text())
    for part in ("binary_classification_metrics", "dataset", "training_data"):
        assert again[part] == evaluation[part], part
    assert again["baseline"]["binary_classification_metrics"] == evaluation["baseline"]["binary_classification_metrics"]


def test_a_kept_model_that_cannot_be_evaluated_is_refit_and_a_failed_fit_leaves_no_record(january_run: FlowRun,
                                                                                          tmp_path):
    """A folder that is not one fit is refit, saying why; a fit that fails after it started leaves no record of
    the old inputs beside whatever it wrote, so the next run refits instead of taking the folder for the old model."""
    run = copy_of(january_run, tmp_path / "copy")
    model_dir = run.artifacts / "ml" / "model"
    (model_dir / "baseline.json").write_text("nope")
    later = {**run.env, "FLIGHTDELAY_TEST_END": "2013-01-30"}
    refit = run_cli(later, "train")
    assert refit.returncode == 0, refit.stdout[-3000:] + refit.stderr[-3000:]
    assert "baseline.json is not the file the fit wrote" in refit.stdout + refit.stderr
    assert "trained because: the kept model could not be evaluated again (ml/train.py exit 2, above)" in refit.stdout

    failed = run_cli({**run.env, "FLIGHTDELAY_TEST_START": "2013-03-01", "FLIGHTDELAY_TEST_END": "2013-03-31"},
                     "train")
    assert failed.returncode != 0 and "leaves channels ['test'] empty" in failed.stdout + failed.stderr
    assert not (model_dir / "training_inputs.json").exists()
    again = run_cli(later, "train")
    assert again.returncode == 0 and "trained because: no model trained on recorded inputs yet" in again.stdout, \
        again.stdout[-3000:]
