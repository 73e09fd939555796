"""Fault injection on a published January: each bad delivery is quarantined with reasons or blocked by
the gates, never published and never duplicated. Each test works on its own copy of the flow's folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import FlowRun, copy_of, run_cli

pytestmark = pytest.mark.integration

BTS_FILE = "bts_ontime_2013_01.csv"
JFK_FILE = "LCD_74486094789_2013.csv"


@pytest.fixture()
def published(january_run: FlowRun, tmp_path) -> FlowRun:
    return copy_of(january_run, tmp_path / "copy")


def warehouse(run: FlowRun) -> str:
    return run.env["FLIGHTDELAY_WAREHOUSE"]


def checksum(run: FlowRun) -> str:
    with duckdb.connect(warehouse(run), read_only=True) as con:
        return con.execute(
            "select md5(string_agg(cast(f as varchar), '|' order by flight_id)) "
            "from marts.ml_flight_delay_features as f"
        ).fetchone()[0]


def scalar(run: FlowRun, sql: str):
    with duckdb.connect(warehouse(run), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def rewrite_lines(path: Path, change) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "".join(change(i, line) for i, line in enumerate(lines[1:], start=2)))


def test_corrupted_month_is_quarantined_and_blocks_publishing(published):
    before = checksum(published)
    path = published.root / "raw" / "bts" / BTS_FILE

    def corrupt(line_number: int, line: str) -> str:
        if line_number % 20 == 0:
            return "13/45/2013 12:00:00 AM," + line.split(",", 1)[1]  # impossible date
        if line_number % 25 == 0:
            return line.replace(",", ",,", 1)  # a shifted column
        return line

    rewrite_lines(path, corrupt)
    result = run_cli(published.env, "run", "--skip-sample")
    assert result.returncode == 1, result.stdout[-2000:]
    assert "raw_files.critical" in result.stderr and "quarantined_share" in result.stderr
    assert "nothing was published" in result.stderr
    assert checksum(published) == before

    reasons = dict(scalar_rows(published, """
        select case when rejection_reason like 'FL_DATE%' then 'date' else 'csv' end, count(*)
        from raw.flights_rejected where source_file = 'bts_ontime_2013_01.csv' group by all"""))
    assert reasons["date"] > 1000 and reasons["csv"] > 800
    read, loaded, quarantined = scalar_rows(published, f"""
        select rows_read, rows_loaded, rows_quarantined from raw.data_quality_summary
        where source_file = '{BTS_FILE}'""")[0]
    assert read == loaded + quarantined == published.flight_rows


def scalar_rows(run: FlowRun, sql: str) -> list[tuple]:
    with duckdb.connect(warehouse(run), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_weather_in_celsius_labelled_fahrenheit_blocks_publishing(published):
    before = checksum(published)
    path = published.root / "raw" / "lcd" / JFK_FILE
    header = path.read_text().splitlines()[0].replace('"', "").split(",")
    temp, dew = header.index("HourlyDryBulbTemperature"), header.index("HourlyDewPointTemperature")

    def to_celsius(_: int, line: str) -> str:
        fields = line.rstrip("\n").split('","')
        for index in (temp, dew):
            value = fields[index].strip('"')
            if value:
                fields[index] = str(round((float(value) - 32) * 5 / 9))
        return '","'.join(fields) + "\n"

    rewrite_lines(path, to_celsius)
    result = run_cli(published.env, "run", "--skip-sample")
    assert result.returncode == 1, result.stdout[-2000:]
    assert "lake_weather.critical" in result.stderr
    assert "station_month_humidity_error_pct" in result.stderr
    assert checksum(published) == before


def test_same_file_delivered_twice_is_refused_not_duplicated(published):
    before = checksum(published)
    flights = scalar(published, "select count(*) from raw.flights")
    bts = published.root / "raw" / "bts"
    shutil.copyfile(bts / BTS_FILE, bts / "bts_ontime_2013_01 (1).csv")
    result = run_cli(published.env, "run", "--skip-sample")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "duplicate of bts_ontime_2013_01.csv" in result.stdout
    assert scalar(published, "select count(*) from raw.flights") == flights
    assert scalar(published, "select count(*) from marts.fct_flights") == flights
    assert checksum(published) == before


def test_empty_file_stops_the_run_naming_the_file(published):
    before = checksum(published)
    (published.root / "raw" / "bts" / "bts_ontime_2013_02.csv").write_text("")
    result = run_cli(published.env, "run", "--skip-sample")
    assert result.returncode == 2
    assert "bts_ontime_2013_02.csv: file is empty" in result.stderr
    assert checksum(published) == before


def test_truncated_redelivery_is_quarantined_and_blocks_publishing(published):
    before = checksum(published)
    path = published.root / "raw" / "bts" / BTS_FILE
    data = path.read_bytes()
    cut = data.index(b"\n", len(data) * 6 // 10) + 30  # a download cut off in the middle of a line
    path.write_bytes(data[:cut])
    result = run_cli(published.env, "run", "--skip-sample")
    assert result.returncode == 1, result.stdout[-2000:]
    assert "rows_vs_previous_load" in result.stderr
    assert checksum(published) == before
    reason = scalar(published, f"select rejection_reason from raw.flights_rejected where source_file = '{BTS_FILE}'")
    assert "missing, and every field after it (expected 17 fields as in the header" in reason
