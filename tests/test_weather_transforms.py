"""Pure transforms of the Spark weather job, on tiny inline frames."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_prep import weather_job as job

LCD_SCHEMA = (
    "STATION string, DATE string, REPORT_TYPE string, HourlyDryBulbTemperature string, "
    "HourlyDewPointTemperature string, HourlyRelativeHumidity string, HourlyWindDirection string, "
    "HourlyWindSpeed string, HourlyWindGustSpeed string, HourlyPrecipitation string, "
    "HourlySeaLevelPressure string, HourlyVisibility string, source_file string"
)
STATIONS_SCHEMA = (
    "airport_code string, station_id string, usaf_id string, wban_id string, station_name string, "
    "lst_utc_offset_hours int"
)


@pytest.fixture()
def stations(spark):
    return spark.createDataFrame(
        [("JFK", "74486094789", "744860", "94789", "JFK", -5)], STATIONS_SCHEMA
    )


def lcd(spark, rows):
    """Rows as (DATE, REPORT_TYPE, temp, dew, rh, dir, speed, gust, precip, slp, vis[, STATION])."""
    full = []
    for r in rows:
        station = r[11] if len(r) > 11 else "74486094789"
        full.append((station, *r[:11], "lcd.csv"))
    return spark.createDataFrame(full, LCD_SCHEMA)


def parse(spark, stations, rows):
    raw = job.transform_with_all_columns(lcd(spark, rows))
    return job.transform_parse_observations(job.transform_hourly_reports(raw), stations)


def test_keeps_hourly_and_special_reports_not_summaries(spark):
    raw = lcd(spark, [
        ("2013-01-01T00:51:00", "FM-15", "30", "", "", "", "", "", "", "", ""),
        ("2013-01-01T01:10:00", "FM-16", "30", "", "", "", "", "", "", "", ""),
        ("2013-01-01T23:59:00", "SOD  ", "", "", "", "", "", "", "", "", ""),
        ("2013-01-31T23:59:00", "SOM  ", "", "", "", "", "", "", "", "", ""),
        ("2013-01-01T02:51:00", "FM-15 ", "31", "", "", "", "", "", "", "", ""),
    ])
    kept = job.transform_hourly_reports(raw).select("DATE").collect()
    assert [r.DATE for r in kept] == ["2013-01-01T00:51:00", "2013-01-01T01:10:00", "2013-01-01T02:51:00"]


def test_special_report_used_only_for_an_hour_without_a_routine_one(spark, stations):
    raw = job.transform_with_all_columns(lcd(spark, [
        # hour 00 (LST): routine report present -> the special is not needed
        ("2013-01-01T00:51:00", "FM-15", "30", "", "", "", "", "", "", "", ""),
        ("2013-01-01T00:20:00", "FM-16", "29", "", "", "", "", "", "", "", ""),
        # hour 01: no routine report -> the latest special stands in, the earlier one is quarantined
        ("2013-01-01T01:10:00", "FM-16", "28", "", "", "", "", "", "", "", ""),
        ("2013-01-01T01:40:00", "FM-16", "27", "", "", "", "", "", "", "", ""),
        ("2013-01-01T23:59:00", "SOD", "", "", "", "", "", "", "", "", ""),
    ]))
    parsed = job.transform_parse_observations(job.transform_hourly_reports(raw), stations)
    chosen = job.transform_choose_hourly_reports(parsed)
    ranked = job.transform_rank_duplicates(chosen.filter("superseded_reason is null"))
    kept = sorted((r.raw_date, r.report_type, r.temp_f) for r in ranked.collect())
    assert kept == [("2013-01-01T00:51:00", "FM-15", 30.0), ("2013-01-01T01:40:00", "FM-16", 27.0)]
    quarantine = job.transform_quarantine(raw, parsed, ranked, chosen)
    reasons = sorted((r.raw_date, r.quarantine_reason) for r in quarantine.collect())
    assert reasons == [
        ("2013-01-01T00:20:00", "FM-16: a routine FM-15 report exists for this station and hour"),
        ("2013-01-01T01:10:00", "FM-16: a later special report of the same hour is used"),
        ("2013-01-01T23:59:00", "REPORT_TYPE: 'SOD' is not an hourly report (FM-15 or FM-16)"),
    ]
    assert raw.count() == ranked.count() + quarantine.count()


def test_lcd_value_quirks(spark, stations):
    out = parse(spark, stations, [
        # suspect suffix, trace precipitation, variable wind, missing and blank values
        ("2013-01-01T00:51:00", "FM-15", "30s", "M", "", "VRB", "5", "", "T", "30.01", "10.00"),
        # amended value (*), calm wind, a non-numeric leftover
        ("2013-01-01T01:51:00", "FM-15", "31*", "20", "60", "000", "0", "", "0.02", "xx", "0.25"),
    ]).orderBy("observed_at_lst").collect()
    first, second = out
    assert first.temp_f == 30.0 and first.has_suspect_value is True
    assert first.dew_point_f is None and first.relative_humidity_pct is None
    assert first.wind_direction_deg is None and first.is_variable_wind is True
    assert first.precip_in == 0.0 and first.has_trace_precip is True
    assert first.sea_level_pressure_inhg == 30.01 and first.visibility_mi == 10.0
    assert first.unparsed_fields == ""
    assert second.temp_f == 31.0 and second.wind_direction_deg == 0.0 and second.wind_speed_mph == 0.0
    assert second.is_variable_wind is False and second.has_trace_precip is False
    assert second.sea_level_pressure_inhg is None
    assert second.unparsed_fields == "HourlySeaLevelPressure"


def test_implausible_values_are_nulled_and_named(spark, stations):
    row = parse(spark, stations, [
        ("2013-02-12T03:51:00", "FM-15", "30", "20", "60", "020", "1048", "", "0.00", "30.01", "10.00"),
    ]).collect()[0]
    assert row.wind_speed_mph is None
    assert row.implausible_fields == "wind_speed_mph"
    assert row.temp_f == 30.0


def test_local_standard_time_to_utc_ignores_daylight_saving(spark, stations):
    rows = parse(spark, stations, [
        ("2013-01-15T10:51:00", "FM-15", "30", "", "", "", "", "", "", "", ""),
        ("2013-07-15T10:51:00", "FM-15", "80", "", "", "", "", "", "", "", ""),
    ]).orderBy("observed_at_lst").collect()
    # LCD times are local *standard* time all year: always UTC-5 in New York.
    assert rows[0].observed_at_utc == dt.datetime(2013, 1, 15, 15, 51)
    assert rows[1].observed_at_utc == dt.datetime(2013, 7, 15, 15, 51)


def test_bad_date_and_unknown_station_get_a_reason(spark, stations):
    rows = parse(spark, stations, [
        ("2013-13-45T00:51:00", "FM-15", "30", "", "", "", "", "", "", "", ""),
        ("2013-01-01T00:51:00", "FM-15", "30", "", "", "", "", "", "", "", "", "99999999999"),
        ("2013-01-01T00:51:00", "FM-15", "30", "", "", "", "", "", "", "", ""),
    ]).select("station_id", "rejection_reason").collect()
    reasons = sorted((r.rejection_reason or "") for r in rows)
    assert reasons == [
        "",
        "DATE: cannot parse '2013-13-45T00:51:00' as yyyy-MM-ddTHH:mm:ss",
        "STATION: unknown station id '99999999999'",
    ]


def test_duplicates_resolved_by_completeness_then_values(spark, stations):
    parsed = parse(spark, stations, [
        ("2013-11-03T01:51:00", "FM-15", "50", "", "", "", "", "", "", "", ""),
        ("2013-11-03T01:51:00", "FM-15", "51", "39", "60", "310", "6", "", "0.00", "30.01", "10.00"),
        ("2013-11-03T01:51:00", "FM-15", "52", "39", "60", "310", "6", "", "0.00", "30.01", "10.00"),
        ("2013-11-03T02:51:00", "FM-15", "49", "", "", "", "", "", "", "", ""),
    ])
    deduplicated = job.transform_deduplicate(parsed.filter("rejection_reason is null"))
    # The most complete rows tie; the tie is broken on the values, whatever the input order.
    reordered = job.transform_deduplicate(parsed.filter("rejection_reason is null").orderBy("temp_f"))
    expected = [Row(temp_f=52.0), Row(temp_f=49.0)]
    assertDataFrameEqual(deduplicated.select("temp_f"), expected)
    assertDataFrameEqual(reordered.select("temp_f"), expected)


def test_daily_summaries_group_by_local_standard_day(spark, stations):
    parsed = parse(spark, stations, [
        ("2013-01-01T00:51:00", "FM-15", "30", "", "", "", "10", "", "0.10", "", "10.00"),
        ("2013-01-01T23:51:00", "FM-15", "40", "", "", "", "20", "25", "T", "", "2.00"),
        ("2013-01-02T00:51:00", "FM-15", "20", "", "", "", "5", "", "0.05", "", "10.00"),
    ])
    hourly = job.transform_hourly_table(job.transform_deduplicate(parsed))
    daily = job.transform_daily_summaries(hourly).select(
        "summary_date", "tmax_f", "tmin_f", "precip_in", "avg_wind_speed_mph", "max_wind_gust_mph",
        "min_visibility_mi", "observation_count", "observation_month", "station_id",
    )
    assertDataFrameEqual(daily, [
        Row(summary_date=dt.date(2013, 1, 1), tmax_f=40.0, tmin_f=30.0, precip_in=0.10,
            avg_wind_speed_mph=15.0, max_wind_gust_mph=25.0, min_visibility_mi=2.0, observation_count=2,
            observation_month="2013-01", station_id="74486094789"),
        Row(summary_date=dt.date(2013, 1, 2), tmax_f=20.0, tmin_f=20.0, precip_in=0.05,
            avg_wind_speed_mph=5.0, max_wind_gust_mph=None, min_visibility_mi=10.0, observation_count=1,
            observation_month="2013-01", station_id="74486094789"),
    ])


def test_missing_optional_columns_become_null(spark, stations):
    raw = spark.createDataFrame(
        [("74486094789", "2013-01-01T00:51:00", "FM-15", "30", "lcd.csv")],
        "STATION string, DATE string, REPORT_TYPE string, HourlyDryBulbTemperature string, source_file string",
    )
    row = job.transform_parse_observations(job.transform_with_all_columns(raw), stations).collect()[0]
    assert row.temp_f == 30.0 and row.visibility_mi is None and row.rejection_reason is None
