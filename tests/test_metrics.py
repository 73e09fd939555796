"""The semantic layer (models/marts/_metrics.yml) answers `mf query` on a built warehouse with the numbers the
run report draws and the analytics marts hold, cut by carrier, scheduled hour and weather."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.test_conventions import copy_dbt_project

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def metricflow(january_run, tmp_path_factory):
    """`mf query` as an analyst runs it on the built warehouse: in the project, after `dbt parse --target prod`
    (the semantic manifest then names the published marts). A copy of the project, so this parse leaves the
    checkout's target/ alone."""
    assert january_run.first.returncode == 0, january_run.first.stdout + january_run.first.stderr
    project = copy_dbt_project(tmp_path_factory.mktemp("dbt_project"))
    env = {**os.environ, **january_run.env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    parsed = subprocess.run([str(BIN / "dbt"), "parse", "--target", "prod", "--profiles-dir", "."], cwd=project,
                            env=env, capture_output=True, text=True, timeout=600)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr

    def query(metrics: str, group_by: str) -> dict[str, dict[str, float | None]]:
        out = project / "mf_result.csv"
        done = subprocess.run([str(BIN / "mf"), "query", "--metrics", metrics, "--group-by", group_by,
                               "--csv", str(out), "--quiet"],
                              cwd=project, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        with out.open() as rows:
            return {row[group_by]: {name: float(value) if value else None for name, value in row.items()
                                    if name != group_by}
                    for row in csv.DictReader(rows)}

    return query


@pytest.fixture(scope="module")
def report_figures(january_run, monkeypatch_module) -> dict[str, object]:
    """The frames the run report draws its delay bar charts from, by chart title."""
    from flightdelay.report import run_report as report

    drawn: dict[str, object] = {}

    def capture(frame, label, value, title, *args, **kwargs) -> str:
        drawn[title] = frame
        return ""

    monkeypatch_module.setattr(report, "_bar", capture)
    with duckdb.connect(january_run.env["FLIGHTDELAY_WAREHOUSE"], read_only=True) as con:
        report.delay_charts(con)
    return drawn


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _same(mine: float | None, theirs: float | None) -> bool:
    """Equal to float precision; a rate over no departed flights is missing (NULL) or NaN, never a number."""
    def missing(x):
        return x is None or math.isnan(x)

    if missing(mine) or missing(theirs):
        return missing(mine) and missing(theirs)
    return mine == pytest.approx(theirs, rel=1e-12)


def test_delay_rate_by_carrier_is_the_reports(metricflow, report_figures):
    answer = metricflow("delay_rate,departed_flights", "carrier")
    figure = report_figures["Delay rate by carrier"]
    # the report labels carriers "Name (CODE)" and leaves out those with fewer than 100 departures
    drawn = {label.rsplit("(", 1)[1].rstrip(")"): rate for label, rate in zip(figure["carrier"], figure["delay_rate"],
                                                                             strict=True)}
    assert set(drawn) == {carrier for carrier, row in answer.items() if row["departed_flights"] >= 100}
    assert len(drawn) >= 10
    assert {carrier: rate for carrier, rate in drawn.items() if not _same(answer[carrier]["delay_rate"], rate)} == {}


def test_delay_rate_by_scheduled_hour_is_the_reports(metricflow, report_figures):
    answer = metricflow("delay_rate", "flight__scheduled_dep_hour_local")
    figure = report_figures["Delay rate by scheduled hour"]
    drawn = {str(hour): rate for hour, rate in zip(figure["hour"], figure["delay_rate"], strict=True)}
    assert set(drawn) == set(answer)
    assert {hour: rate for hour, rate in drawn.items() if not _same(answer[hour]["delay_rate"], rate)} == {}


@pytest.mark.parametrize("factor", ["precipitation", "visibility", "wind"])
def test_delay_rate_by_weather_is_the_marts(metricflow, january_run, factor):
    answer = metricflow("delay_rate,departed_flights", f"flight__{factor}_bucket")
    with duckdb.connect(january_run.env["FLIGHTDELAY_WAREHOUSE"], read_only=True) as con:
        mart = {bucket: (rate, flights) for bucket, rate, flights in con.execute(
            "select bucket, dep_delay_15_rate, departed_flights from marts.delay_rates_by_weather_condition "
            "where weather_factor = ?", [factor]).fetchall()}
    # cancelled flights have no weather bucket (they never reach the feature mart) and no departures
    assert answer.pop("", {"departed_flights": 0.0})["departed_flights"] == 0
    assert set(answer) == set(mart)
    for bucket, (rate, flights) in mart.items():
        assert answer[bucket]["departed_flights"] == flights, bucket
        assert _same(answer[bucket]["delay_rate"], rate), bucket
