"""fct_flights is incremental by month: a new month of raw data is processed alone, earlier months stay
exactly as they were (same rows, same build time)."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from flightdelay.raw.sample import write_sample
from tests.conftest import PROJECT_ROOT, FlowRun, run_cli

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
