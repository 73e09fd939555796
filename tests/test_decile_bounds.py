"""The drift mart's decile bounds on DuckDB (macros/decile_bounds.sql) are percentile_cont's to the last digit the
mart keeps, though computed from each value's count: DuckDB's own percentile_cont holds every value in memory once
per call and was killed at 23 GB on SF=30's training window."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.engine  # compiles the macro with dbt

DBT = str(Path(sys.executable).with_name("dbt"))
FEATURES = ("delay_minutes", "legs_today", "share_late")
# per group: ties across decile positions, negatives, nulls, a single value, two values, integer positions
# ((n - 1) x 0.1 whole when n = 11) and fractional ones, and floats whose interpolation needs every bit
ROWS = [
    *[(1, float(v), i % 4, None if i % 5 == 0 else i / 7) for i, v in enumerate([-12, -3, 0, 0, 0, 4, 7, 7, 19, 240,
                                                                                 1415])],
    *[(2, v, 3, None) for v in (2.5, 2.5, 2.5, 2.5, 9.75)],
    (3, 1.0, None, 0.1), (3, 2.0, None, 0.2),
    (4, None, 5, None),
    *[(5, 0.1 * i + 1e-9 * i * i, i * i, 1 / (i + 3)) for i in range(1, 100)],
    # where `lower + (upper - lower) x 0.5` (5.3320635) and percentile_cont's `lower x 0.5 + upper x 0.5`
    # (5.332063499999999) round to different sixth decimals
    (6, 1.90551, None, None), (6, 8.758617, None, None),
    (7, None, None, None),  # every value null: the group's row has null bounds
]


def compiled_bounds(tmp_path: Path) -> str:
    env = {**os.environ, "FLIGHTDELAY_WAREHOUSE": str(tmp_path / "unused.duckdb"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run(
        [DBT, "compile", "--project-dir", str(PROJECT_ROOT), "--profiles-dir", str(PROJECT_ROOT), "--target", "local",
         "--quiet", "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
         "--vars", "{compile_without_warehouse: true}", "--inline",
         "{{ flight_delays.decile_bounds('flights', 'group_id', " + repr(list(FEATURES)) + ") }}"],
        env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "percentile_cont(" not in done.stdout  # the counted form, not DuckDB's own
    return done.stdout


def test_deciles_from_value_counts_are_percentile_conts(tmp_path):
    bounds_sql = compiled_bounds(tmp_path)
    expected_sql = "select group_id, " + ", ".join(
        f"cast(percentile_cont({decile / 10}) within group (order by {feature}) as numeric(38, 6)) "
        f"as {feature}__upper_{decile}" for feature in FEATURES for decile in range(1, 10)
    ) + " from flights group by group_id"
    with duckdb.connect() as con:
        con.execute("create table flights (group_id integer, delay_minutes double, legs_today integer, "
                    "share_late double)")
        con.executemany("insert into flights values (?, ?, ?, ?)", ROWS)
        got = con.execute(f"select * from ({bounds_sql}) as bounds order by group_id").fetchall()
        expected = con.execute(f"select * from ({expected_sql}) as bounds order by group_id").fetchall()
    assert [row[0] for row in got] == [1, 2, 3, 4, 5, 6, 7]
    assert got == expected
    assert got[3][1:10] == (None,) * 9  # a feature with no value has no bounds, as with percentile_cont
    assert str(got[5][5]) == "5.332063" and got[6][1:] == (None,) * 27
