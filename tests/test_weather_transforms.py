"""Pure transforms of the Spark weather job, on tiny inline frames."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from raw_contracts.ranges import WEATHER_RANGES
from spark_prep import lcd_hourly, lcd_quarantine

# LCD column names, as the files spell them
DATE, TYPE, TEMP, DEW, RH = "DATE", "REPORT_TYPE", "HourlyDryBulbTemperature", "HourlyDewPointTemperature", \
    "HourlyRelativeHumidity"
WIND_DIR, WIND, GUST, PRECIP = "HourlyWindDirection", "HourlyWindSpeed", "HourlyWindGustSpeed", "HourlyPrecipitation"
SLP, VIS = "HourlySeaLevelPressure", "HourlyVisibility"

RECORD_COLUMNS = ("source_file", "source_line", *lcd_hourly.LCD_COLUMNS, "has_report_type")
RECORD_SCHEMA = ", ".join(["source_file string", "source_line bigint", *[f"{c} string" for c in lcd_hourly.LCD_COLUMNS],
                           "has_report_type boolean"])
STATIONS_SCHEMA = (
    "airport_code string, station_id string, usaf_id string, wban_id string, station_name string, "
    "lst_utc_offset_hours int"
)


@pytest.fixture()
def stations(spark):
    return spark.createDataFrame([Row(airport_code="JFK", station_id="74486094789", usaf_id="744860",
                                      wban_id="94789", station_name="JFK", lst_utc_offset_hours=-5)], STATIONS_SCHEMA)


def lcd(spark, rows: list[dict], has_report_type: bool = True):
    """Records as transform_records gives them: each dict names the LCD columns it sets (the others are
    null, STATION is JFK's); the n-th row is at line n + 1 of lcd.csv."""
    defaults = {c: None for c in RECORD_COLUMNS} | {"source_file": "lcd.csv", "STATION": "74486094789",
                                                    "has_report_type": has_report_type}
    full = [defaults | {"source_line": line} | row for line, row in enumerate(rows, start=2)]
    return spark.createDataFrame([tuple(r[c] for c in RECORD_COLUMNS) for r in full], RECORD_SCHEMA)


def parse(spark, stations, rows, has_report_type: bool = True):
    records = lcd(spark, rows, has_report_type)
    return lcd_hourly.transform_parse_observations(lcd_hourly.transform_hourly_reports(records), stations)


def choose(spark, stations, records):
    """The observations kept (by raw DATE) and the quarantine reasons, as the job computes them."""
    parsed = lcd_hourly.transform_parse_observations(lcd_hourly.transform_hourly_reports(records), stations)
    chosen = lcd_hourly.transform_choose_hourly_reports(parsed)
    ranked = lcd_hourly.transform_rank_duplicates(chosen.filter("superseded_reason is null"))
    quarantine = lcd_quarantine.transform_quarantine(records, parsed, ranked, chosen)
    assert records.count() == ranked.filter("duplicate_rank = 1").count() + quarantine.count()
    return ranked, quarantine


def test_keeps_hourly_and_special_reports_not_summaries(spark):
    records = lcd(spark, [
        {DATE: "2013-01-01T00:51:00", TYPE: "FM-15", TEMP: "30"},
        {DATE: "2013-01-01T01:10:00", TYPE: "FM-16", TEMP: "30"},
        {DATE: "2013-01-01T23:59:00", TYPE: "SOD  "},
        {DATE: "2013-01-31T23:59:00", TYPE: "SOM  "},
        {DATE: "2013-01-01T02:51:00", TYPE: "FM-15 ", TEMP: "31"},
    ])
    kept = lcd_hourly.transform_hourly_reports(records).select("DATE").collect()
    assert [r.DATE for r in kept] == ["2013-01-01T00:51:00", "2013-01-01T01:10:00", "2013-01-01T02:51:00"]


def test_special_report_used_only_for_an_hour_without_a_routine_one(spark, stations):
    records = lcd(spark, [
        # hour 00 (LST): routine report present -> the special is not needed
        {DATE: "2013-01-01T00:51:00", TYPE: "FM-15", TEMP: "30"},
        {DATE: "2013-01-01T00:20:00", TYPE: "FM-16", TEMP: "29"},
        # hour 01: no routine report -> the latest special stands in, the earlier one is quarantined
        {DATE: "2013-01-01T01:10:00", TYPE: "FM-16", TEMP: "28"},
        {DATE: "2013-01-01T01:40:00", TYPE: "FM-16", TEMP: "27"},
        {DATE: "2013-01-01T23:59:00", TYPE: "SOD"},
        {DATE: "2013-01-02T00:51:00"},  # REPORT_TYPE empty in a file that has the column
    ])
    ranked, quarantine = choose(spark, stations, records)
    kept = sorted((r.raw_date, r.report_type, r.temp_f) for r in ranked.collect())
    assert kept == [("2013-01-01T00:51:00", "FM-15", 30.0), ("2013-01-01T01:40:00", "FM-16", 27.0)]
    reasons = sorted((r.source_line, r.quarantine_kind, r.quarantine_reason) for r in quarantine.collect())
    assert reasons == [
        (3, "special_superseded",
         "REPORT_TYPE 'FM-16': not used, a routine FM-15 report exists for this station and hour"),
        (4, "special_superseded", "REPORT_TYPE 'FM-16': not used, a later special report of the same hour is used"),
        (6, "other_report_type", "REPORT_TYPE: 'SOD' is not an hourly report (FM-15 or FM-16)"),
        (7, "other_report_type", "REPORT_TYPE: empty (expected FM-15 or FM-16)"),
    ]


def test_without_report_type_the_observation_nearest_minute_51_is_the_hours_routine_one(spark, stations):
    records = lcd(spark, [
        # hour 00: a special at :12 and the routine report at :51 (distances 39 and 0 minutes)
        {DATE: "2013-01-01T00:12:00", TEMP: "29", WIND: "5"},
        {DATE: "2013-01-01T00:51:00", TEMP: "30"},
        # hour 01: :48 and :54 are both 3 minutes from :51 -> the one with more measurements
        {DATE: "2013-01-01T01:48:00", TEMP: "31", WIND: "5", VIS: "10.00"},
        {DATE: "2013-01-01T01:54:00", TEMP: "32"},
        # hour 02: equally far and equally complete -> the latest
        {DATE: "2013-01-01T02:46:00", TEMP: "33"},
        {DATE: "2013-01-01T02:56:00", TEMP: "34"},
        # hour 03: a lone special report is all there is
        {DATE: "2013-01-01T03:05:00", TEMP: "35"},
    ], has_report_type=False)
    ranked, quarantine = choose(spark, stations, records)
    assert sorted((r.raw_date, r.report_type) for r in ranked.collect()) == [
        ("2013-01-01T00:51:00", None), ("2013-01-01T01:48:00", None), ("2013-01-01T02:56:00", None),
        ("2013-01-01T03:05:00", None)]
    rule = ("not used, the routine observation of this station and hour is taken to be the one nearest to minute 51, "
            "then the most complete, then the latest")
    assert sorted((r.source_line, r.quarantine_kind, r.quarantine_reason) for r in quarantine.collect()) == [
        (2, "not_routine", f"REPORT_TYPE absent (DATE '2013-01-01T00:12:00'): {rule}: "
                           "DATE '2013-01-01T00:51:00' (lcd.csv line 3)"),
        (5, "not_routine", f"REPORT_TYPE absent (DATE '2013-01-01T01:54:00'): {rule}: "
                           "DATE '2013-01-01T01:48:00' (lcd.csv line 4)"),
        (6, "not_routine", f"REPORT_TYPE absent (DATE '2013-01-01T02:46:00'): {rule}: "
                           "DATE '2013-01-01T02:56:00' (lcd.csv line 7)"),
    ]


def test_a_routine_report_of_a_full_file_wins_over_a_cut_down_files_observation(spark, stations):
    full = lcd(spark, [{DATE: "2013-01-01T00:51:00", TYPE: "FM-15", TEMP: "30"}])
    cut = lcd(spark, [{"source_file": "cut.csv", DATE: "2013-01-01T00:58:00", TEMP: "31"},
                      {"source_file": "cut.csv", DATE: "2013-01-01T01:51:00", TEMP: "32"}], has_report_type=False)
    ranked, quarantine = choose(spark, stations, full.unionByName(cut))
    assert sorted((r.source_file, r.raw_date) for r in ranked.collect()) == [
        ("cut.csv", "2013-01-01T01:51:00"), ("lcd.csv", "2013-01-01T00:51:00")]
    [superseded] = quarantine.collect()
    assert (superseded.source_file, superseded.source_line, superseded.quarantine_reason) == (
        "cut.csv", 2, "REPORT_TYPE absent (DATE '2013-01-01T00:58:00'): not used, a routine FM-15 report exists "
                      "for this station and hour")


def test_lcd_value_quirks(spark, stations):
    out = parse(spark, stations, [
        # suspect suffix, trace precipitation, variable wind, missing and blank values
        {DATE: "2013-01-01T00:51:00", TYPE: "FM-15", TEMP: "30s", DEW: "M", RH: "", WIND_DIR: "VRB", WIND: "5",
         PRECIP: "T", SLP: "30.01", VIS: "10.00"},
        # amended value (*), calm wind, a non-numeric leftover
        {DATE: "2013-01-01T01:51:00", TYPE: "FM-15", TEMP: "31*", DEW: "20", RH: "60", WIND_DIR: "000", WIND: "0",
         PRECIP: "0.02", SLP: "xx", VIS: "0.25"},
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
        {DATE: "2013-02-12T03:51:00", TYPE: "FM-15", TEMP: "30", DEW: "20", RH: "60", WIND_DIR: "020", WIND: "1048",
         PRECIP: "0.00", SLP: "30.01", VIS: "10.00"},
    ]).collect()[0]
    assert row.wind_speed_mph is None
    assert row.implausible_fields == "wind_speed_mph"
    assert row.unparsed_fields == ""  # it parsed: named once, as implausible
    assert row.temp_f == 30.0


def test_non_finite_values_are_implausible(spark, stations):
    # try_cast('NaN' / 'Infinity' / '1e309' as double) is a number, not null: each must be nulled and named.
    rows = parse(spark, stations, [
        {DATE: "2013-02-12T01:51:00", TYPE: "FM-15", TEMP: "NaN", DEW: "20"},
        {DATE: "2013-02-12T02:51:00", TYPE: "FM-15", TEMP: "Infinity", WIND: "-inf"},
        {DATE: "2013-02-12T03:51:00", TYPE: "FM-15", TEMP: "1e309", SLP: "-1e309", VIS: "nan"},
    ]).orderBy("observed_at_lst").collect()
    assert [(r.temp_f, r.wind_speed_mph, r.sea_level_pressure_inhg, r.visibility_mi) for r in rows] == [
        (None, None, None, None)] * 3
    assert [r.implausible_fields for r in rows] == [
        "temp_f", "temp_f,wind_speed_mph", "temp_f,sea_level_pressure_inhg,visibility_mi"]
    assert rows[0].dew_point_f == 20.0 and {r.unparsed_fields for r in rows} == {""}


def test_the_job_and_the_quality_gates_use_the_one_definition_of_plausible_ranges():
    from flightdelay.quality import gates as quality

    assert quality.WEATHER_RANGES is WEATHER_RANGES
    assert not hasattr(lcd_hourly, "PLAUSIBLE_RANGES")
    assert set(WEATHER_RANGES) == set(lcd_hourly.MEASUREMENTS.values())


def test_local_standard_time_to_utc_ignores_daylight_saving(spark, stations):
    rows = parse(spark, stations, [
        {DATE: "2013-01-15T10:51:00", TYPE: "FM-15", TEMP: "30"},
        {DATE: "2013-07-15T10:51:00", TYPE: "FM-15", TEMP: "80"},
    ]).orderBy("observed_at_lst").collect()
    # LCD times are local *standard* time all year: always UTC-5 in New York.
    assert rows[0].observed_at_utc == dt.datetime(2013, 1, 15, 15, 51)
    assert rows[1].observed_at_utc == dt.datetime(2013, 7, 15, 15, 51)


def test_bad_date_and_unknown_station_get_a_reason(spark, stations):
    rows = parse(spark, stations, [
        {DATE: "2013-13-45T00:51:00", TYPE: "FM-15", TEMP: "30"},
        {DATE: "2013-01-01T00:51:00", TYPE: "FM-15", TEMP: "30", "STATION": "99999999999"},
        {DATE: "2013-01-01T00:51:00", TYPE: "FM-15", TEMP: "30"},
    ]).select("station_id", "rejection_reason").collect()
    reasons = sorted((r.rejection_reason or "") for r in rows)
    assert reasons == [
        "",
        "DATE: cannot parse '2013-13-45T00:51:00' as yyyy-MM-ddTHH:mm:ss",
        "STATION: unknown station id '99999999999'",
    ]


def test_duplicates_resolved_by_completeness_then_values(spark, stations):
    full = {TYPE: "FM-15", DEW: "39", RH: "60", WIND_DIR: "310", WIND: "6", PRECIP: "0.00", SLP: "30.01", VIS: "10.00"}
    parsed = parse(spark, stations, [
        {DATE: "2013-11-03T01:51:00", TYPE: "FM-15", TEMP: "50"},
        {DATE: "2013-11-03T01:51:00", TEMP: "51", **full},
        {DATE: "2013-11-03T01:51:00", TEMP: "52", **full},
        {DATE: "2013-11-03T02:51:00", TYPE: "FM-15", TEMP: "49"},
    ])
    deduplicated = lcd_hourly.transform_deduplicate(parsed.filter("rejection_reason is null"))
    # The most complete rows tie; the tie is broken on the values, whatever the input order.
    reordered = lcd_hourly.transform_deduplicate(parsed.filter("rejection_reason is null").orderBy("temp_f"))
    expected = [Row(temp_f=52.0), Row(temp_f=49.0)]
    assertDataFrameEqual(deduplicated.select("temp_f"), expected)
    assertDataFrameEqual(reordered.select("temp_f"), expected)


def test_an_exact_duplicate_is_quarantined_naming_where_the_loaded_copy_is(spark, stations):
    same = {DATE: "2013-11-03T01:51:00", TYPE: "FM-15", TEMP: "50"}
    ranked, quarantine = choose(spark, stations, lcd(spark, [same, same]))
    assert [r.source_line for r in ranked.filter("duplicate_rank = 1").collect()] == [2]  # the first copy
    [copy] = quarantine.collect()
    assert (copy.source_line, copy.quarantine_kind, copy.quarantine_reason) == (
        3, "duplicate", "duplicate: STATION '74486094789' DATE '2013-11-03T01:51:00' (2013-11-03 06:51 UTC) is also "
                        "at lcd.csv line 2, which is loaded (at least as complete)")


def test_daily_summaries_group_by_local_standard_day(spark, stations):
    parsed = parse(spark, stations, [
        {DATE: "2013-01-01T00:51:00", TYPE: "FM-15", TEMP: "30", WIND: "10", PRECIP: "0.10", VIS: "10.00"},
        {DATE: "2013-01-01T23:51:00", TYPE: "FM-15", TEMP: "40", WIND: "20", GUST: "25", PRECIP: "T", VIS: "2.00"},
        {DATE: "2013-01-02T00:51:00", TYPE: "FM-15", TEMP: "20", WIND: "5", PRECIP: "0.05", VIS: "10.00"},
    ])
    hourly = lcd_hourly.transform_hourly_table(lcd_hourly.transform_deduplicate(parsed))
    daily = lcd_hourly.transform_daily_summaries(hourly).select(
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
