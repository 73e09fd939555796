"""fct_flights is incremental by month: a new month of raw data is processed alone, earlier months stay
exactly as they were (same rows, same build time)."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from flightdelay.raw.sample import write_sample
from tests.conftest import PROJECT_ROOT, FlowRun, copy_of, run_cli

pytestmark = pytest.mark.integration


def month_state(warehouse: str, schema: str) -> dict[str, tuple]:
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = con.execute(f"""
            select strftime(flight_month, '%Y-%m'), count(*), min(transformed_at_utc), max(transformed_at_utc),
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
    assert list(before) == ["2013-01"]

    february = write_sample(root / "raw", PROJECT_ROOT / "seeds", months=[2])
    loaded = run_cli(env, "load")
    assert loaded.returncode == 0, loaded.stdout[-2000:] + loaded.stderr[-2000:]
    built = run_cli(env, "build")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]

    after = month_state(warehouse, "marts_audit")
    assert list(after) == ["2013-01", "2013-02"]
    # January: the very rows published before, built at the same instant -> not reprocessed
    assert after["2013-01"] == before["2013-01"]
    # February: all its rows, built by this run
    assert after["2013-02"][0] == february.flight_rows == 24951
    assert after["2013-02"][1] > before["2013-01"][2]

    # a full refresh rebuilds every month, with the same content
    refreshed = run_cli(env, "build", "--full-refresh")
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    again = month_state(warehouse, "marts_audit")
    assert again["2013-01"][0] == before["2013-01"][0] and again["2013-01"][3] == before["2013-01"][3]
    assert again["2013-01"][1] > before["2013-01"][2]


RUN_TIME_COLUMNS = {"loaded_at", "source_loaded_at", "transformed_at_utc", "scored_at", "scored_at_utc"}


def differing_rows(left: str, right: str, schema: str) -> dict[str, tuple[int, int, int]]:
    """Per base table of `schema`: (rows, rows only in left, rows only in right), run-time columns left out."""
    out = {}
    with duckdb.connect() as con:
        for alias, path in (("l", left), ("r", right)):
            con.execute(f"attach '{path.replace(chr(39), chr(39) * 2)}' as {alias} (read_only)")
        tables = [row[0] for row in con.execute(
            "select table_name from duckdb_tables() where database_name = 'l' and schema_name = ? order by 1",
            [schema]).fetchall()]
        for table in tables:
            names = [row[0] for row in con.execute(
                "select column_name from duckdb_columns() where database_name = 'l' and schema_name = ? "
                "and table_name = ? order by column_index", [schema, table]).fetchall()]
            columns = ", ".join(f'"{name}"' for name in names if name not in RUN_TIME_COLUMNS)
            relation = f"{schema}.{table}"
            out[table] = tuple(con.execute(f"""
                select (select count(*) from l.{relation}),
                       (select count(*) from (select {columns} from l.{relation} except all
                                              select {columns} from r.{relation})),
                       (select count(*) from (select {columns} from r.{relation} except all
                                              select {columns} from l.{relation}))""").fetchone())
    return out


def test_a_new_month_equals_a_full_refresh_and_a_rerun_recomputes_nothing(january_run: FlowRun, tmp_path):
    """Issue 16: the flow on January, then February arrives. The run rebuilds from February on, scores February
    alone, and its marts and predictions equal a full refresh over both months row for row; run again with nothing
    changed, every step skips itself."""
    run = copy_of(january_run, tmp_path / "incremental")
    write_sample(run.root / "raw", PROJECT_ROOT / "seeds", months=[1, 2])  # February's file; the rest is unchanged
    monthly = run_cli(run.env, "run", "--skip-sample")
    assert monthly.returncode == 0, monthly.stdout[-3000:] + monthly.stderr[-3000:]
    assert "rebuilt: flights from 2013-02-01 on" in monthly.stdout
    assert "months of the marts validated: 2013-02 to 2013-02 (rebuilt)" in monthly.stdout
    # February is after the test period: the model stays, and only February is scored
    assert "the model in" in monthly.stdout and "--retrain trains anew" in monthly.stdout
    assert "scored: flights from 2013-02-01 on" in monthly.stdout

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
