"""NOAA CDO daily summaries: units, quality flags, station mapping, quarantine; the real JFK extract."""

from __future__ import annotations

import pytest

from flightdelay.warehouse.lake_exposure import committed_lake_table
from spark_prep import cdo_daily, lake_schema
from spark_prep import weather_job as job
from tests.conftest import REAL_SAMPLES
from tests.test_weather_load import write_lcd

pytestmark = pytest.mark.engine  # runs the Spark job

STATIONS = ("airport_code string, station_id string, usaf_id string, wban_id string, station_name string, "
            "lst_utc_offset_hours int")


@pytest.fixture()
def stations(spark):
    return spark.createDataFrame([("JFK", "74486094789", "744860", "94789", "JFK", -5)], STATIONS)


def raw(spark, rows, columns="STATION string, DATE string, TMAX string, TMAX_ATTRIBUTES string, PRCP string"):
    frame = spark.createDataFrame(rows, columns + ", source_file string")
    return cdo_daily.transform_with_all_columns(frame)


def test_metric_units_are_converted_and_flagged_values_nulled(spark, stations):
    parsed = cdo_daily.transform_parse_daily(raw(spark, [
        ("USW00094789", "2014-01-05", "10.0", ",,W", "25.4", "f.csv"),
        ("USW00094789", "2014-01-06", "-40.0", ",I,W", "0", "f.csv"),  # quality flag I: failed QC
    ]), stations, "metric").orderBy("summary_date").collect()
    first, second = parsed
    assert (first.tmax_f, first.precip_in, first.airport_code, first.station_id) == (50.0, 1.0, "JFK", "74486094789")
    assert first.qc_failed_elements == "" and first.rejection_reason is None
    assert second.tmax_f is None and second.qc_failed_elements == "TMAX" and second.precip_in == 0.0
    assert second.tavg_f is None  # element not in the export


def test_unknown_station_and_bad_date_are_quarantined(spark, stations):
    parsed = cdo_daily.transform_parse_daily(raw(spark, [
        ("USW00099999", "2014-01-05", "50", "", "0", "f.csv"),
        ("USC00300000", "2014-01-05", "50", "", "0", "f.csv"),
        ("USW00094789", "05/01/2014", "50", "", "0", "f.csv"),
        ("USW00094789", "2014-01-05", "fifty", "", "0", "f.csv"),
    ]), stations, "standard")
    reasons = sorted(r.rejection_reason for r in parsed.collect())
    assert reasons == [
        "DATE: cannot parse '05/01/2014' as yyyy-MM-dd",
        "STATION: no airport for GHCND id 'USC00300000' (expected USW000 + a WBAN in airport_weather_stations)",
        "STATION: no airport for GHCND id 'USW00099999' (expected USW000 + a WBAN in airport_weather_stations)",
        "TMAX: cannot parse 'fifty' as a number",
    ]


def test_units_must_be_named(spark, stations):
    with pytest.raises(ValueError, match="units must be one of"):
        cdo_daily.transform_parse_daily(raw(spark, []), stations, "kelvin")


def test_real_jfk_extract_reconciles(spark, tmp_path):
    path = REAL_SAMPLES / "noaa_cdo_daily_jfk_2014_2024.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    write_lcd(tmp_path / "lcd", [("2014-01-01T00:51:00", "FM-15", "30")])
    stations = tmp_path / "stations.csv"
    stations.write_text("airport_code,station_id,usaf_id,wban_id,station_name,lst_utc_offset_hours\n"
                        "JFK,74486094789,744860,94789,JFK,-5\n")
    settings = job.JobSettings(
        raw_weather_path=job.to_uri(str(tmp_path / "lcd")), stations_path=job.to_uri(str(stations)),
        lake_uri=job.to_uri(str(tmp_path / "lake")), database="weather_cdo_real", run_id="r1",
        raw_cdo_daily_path=job.to_uri(str(path)), cdo_units="standard",
    )
    result = job.run(spark, settings)
    [counts] = result.cdo_files
    data_lines = len(path.read_text().splitlines()) - 1
    assert counts["rows_read"] == data_lines == 3651
    assert counts["rows_read"] == counts["rows_loaded"] + counts["rows_quarantined"]
    assert result.cdo_daily_rows == counts["rows_loaded"] > 3600
    spark.catalog.clearCache()
    row = spark.sql("select * from weather_cdo_real.cdo_daily_summaries where summary_date = date '2014-12-01'"
                    ).collect()[0]
    assert (row.tavg_f, row.tmax_f, row.tmin_f, row.airport_code) == (54.0, 62.0, 42.0, "JFK")
    # what a warehouse that cannot read Parquet gets copied in (flightdelay/warehouse/lake_exposure.py)
    copied = committed_lake_table(tmp_path / "lake", "cdo_daily_summaries")
    assert copied.num_rows == counts["rows_loaded"]
    assert copied.column_names == [*lake_schema.column_names("cdo_daily_summaries"),
                                   "station_id", "observation_month"]


def test_daily_files_are_read_by_their_exact_names(spark, tmp_path):
    from dataclasses import replace

    from tests.test_weather_load import job_settings

    write_lcd(tmp_path / "lcd", [("2014-01-01T00:51:00", "FM-15", "30")])
    cdo = tmp_path / "cdo"
    cdo.mkdir()
    header = '"STATION","DATE","TMAX"\n'
    # as a glob pattern the first name also matches the second; `+` and `%` are where URL decoding goes wrong
    (cdo / "jfk daily [2014] 100%+1.csv").write_text(header + '"USW00094789","2014-01-05","50"\n')
    (cdo / "jfk daily 2 100%+1.csv").write_text(header + '"USW00094789","2014-01-06","51"\n')
    ghcn = tmp_path / "ghcn"
    ghcn.mkdir()
    day_groups = "  100  W" + "-9999   " * 30  # day 1: 10.0 °C, then missing
    (ghcn / "USW00094789 (copy).dly").write_text(f"USW00094789201402TMAX{day_groups}\n")
    (ghcn / "readme.txt").write_text("not a .dly file\n")
    settings = replace(job_settings(tmp_path, tmp_path / "lcd"),
                       raw_cdo_daily_path=job.to_uri(str(cdo / "jfk daily [2014] 100%+1.csv")),
                       raw_ghcn_daily_path=job.to_uri(str(ghcn)))

    result = job.run(spark, settings)

    assert sorted((f["source_file"], f["rows_read"], f["rows_loaded"]) for f in result.cdo_files) == [
        ("USW00094789 (copy).dly", 1, 1), ("jfk daily [2014] 100%+1.csv", 1, 1)]


def test_each_export_is_read_by_its_own_header(spark, tmp_path):
    """Exports hold the elements their order selected, in the order chosen: one header for every file would put
    one file's TMIN under another's TMAX (found by the new-user trial). A lower-case header and a spreadsheet's
    byte-order mark are read the same; a header-only export is counted with no rows; a file without STATION or
    DATE stops the job naming that file."""
    from dataclasses import replace

    from tests.test_weather_load import job_settings

    write_lcd(tmp_path / "lcd", [("2014-01-01T00:51:00", "FM-15", "30")])
    cdo = tmp_path / "cdo"
    cdo.mkdir()
    (cdo / "a.csv").write_text('"STATION","DATE","TMAX","TMIN","TAVG"\n"USW00094789","2014-01-05","80","60","70"\n')
    (cdo / "b.csv").write_text('"STATION","DATE","PRCP","PRCP_ATTRIBUTES","TMIN","TMAX"\n'
                               '"USW00094789","2014-01-06","0.12",",,W,2400","61","81"\n')
    (cdo / "c.csv").write_text('\ufeff"station","date","tavg","tmax"\n"USW00094789","2014-01-07","71","82"\n',
                               encoding="utf-8")
    (cdo / "header only.csv").write_text('"STATION","DATE","TMAX"\n')  # read, and counted with no rows
    settings = replace(job_settings(tmp_path, tmp_path / "lcd"), raw_cdo_daily_path=job.to_uri(str(cdo)))

    result = job.run(spark, settings)

    assert sorted((f["source_file"], f["rows_read"], f["rows_loaded"]) for f in result.cdo_files) == [
        ("a.csv", 1, 1), ("b.csv", 1, 1), ("c.csv", 1, 1), ("header only.csv", 0, 0)]
    copied = committed_lake_table(tmp_path / "lake", "cdo_daily_summaries").to_pylist()
    assert sorted((str(r["summary_date"]), r["tmax_f"], r["tmin_f"], r["tavg_f"], r["precip_in"]) for r in copied) == [
        ("2014-01-05", 80.0, 60.0, 70.0, None), ("2014-01-06", 81.0, 61.0, None, 0.12),
        ("2014-01-07", 82.0, None, 71.0, None)]

    (cdo / "d.csv").write_text('"STATION","DAY","TMAX"\n"USW00094789","2014-01-08","83"\n')
    with pytest.raises(job.InputError, match=r"CDO daily file \S*/d\.csv: its header lacks \['DATE'\]"):
        job.run(spark, replace(settings, run_id="run2"))
