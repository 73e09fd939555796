"""Real-world inputs: every BTS download layout and the NOAA formats, detected, loaded or refused.

Fixtures are written here from the formats' published descriptions (BTS download form field names,
NOAA LCD documentation, GHCN-Daily readme section III); ../shared/data/real-samples holds genuine files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import pytest

from flightdelay.raw.ingest import IngestError, detect
from flightdelay.raw.load import LoadError, load_flights
from spark_prep import cdo_daily, ghcn_daily
from tests.conftest import PROJECT_ROOT, REAL_SAMPLES

LEGACY_HEADER = ("Year,Quarter,Month,DayofMonth,DayOfWeek,FlightDate,Reporting_Airline,DOT_ID_Reporting_Airline,"
                 "IATA_CODE_Reporting_Airline,Tail_Number,Flight_Number_Reporting_Airline,OriginAirportID,Origin,"
                 "OriginCityName,Dest,DestCityName,CRSDepTime,DepTime,DepDelay,DepDelayMinutes,DepDel15,CRSArrTime,"
                 "ArrTime,ArrDelay,Cancelled,Diverted,AirTime,Distance,\n")


def legacy_row(date: str, carrier: str, flight: str, origin: str, dest: str, crs_dep: str, dep: str, delay: str,
               cancelled: str = "0.00") -> str:
    return (f'2019,1,1,1,2,{date},{carrier},19805,{carrier},N101NN,{flight},12478,{origin},"New York, NY",{dest},'
            f'"Miami, FL",{crs_dep},{dep},{delay},{delay},0.00,1200,1210,5.00,{cancelled},0.00,150.00,1089.00,\n')


def table(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


# ------------------------------------------------------------------ BTS layouts


def test_legacy_names_spreadsheet_dates_short_times_and_trailing_comma(tmp_path):
    path = tmp_path / "On_Time_Reporting_Carrier_On_Time_Performance_(1987_present)_2019_1.csv"
    path.write_text(LEGACY_HEADER
                    + legacy_row("2019-01-01", "AA", "100", "JFK", "MIA", "0700", "0705", "5.00")
                    + legacy_row("1/2/2019 0:00", "AA", "101", "JFK", "MIA", "705", "2400", "12")  # re-saved
                    + legacy_row("1/3/2019 12:00:00 AM", "AA", "102", "JFK", "MIA", "2400", "", "", "1.00"))
    [load] = load_flights(tmp_path / "wh.duckdb", [path])
    assert (load.rows_read, load.rows_loaded, load.rows_rejected) == (3, 3, 0)
    assert table(tmp_path / "wh.duckdb", """
        select strftime(fl_date, '%Y-%m-%d'), op_unique_carrier, op_carrier_fl_num, origin, crs_dep_time,
               dep_time, dep_delay, cancelled, tail_num
        from raw.flights order by source_line""") == [
        ("2019-01-01", "AA", 100, "JFK", 700, 705, 5.0, 0.0, "N101NN"),
        ("2019-01-02", "AA", 101, "JFK", 705, 2400, 12.0, 0.0, "N101NN"),
        ("2019-01-03", "AA", 102, "JFK", 2400, None, None, 1.0, "N101NN"),
    ]


def test_only_positive_delay_column_stands_in_for_the_signed_one(tmp_path):
    # the real OMA extract's selection: DEP_DELAY_NEW only (early departures as 0)
    path = REAL_SAMPLES / "bts_ontime_2021_02_oma_subset.csv"
    [load] = load_flights(tmp_path / "wh.duckdb", [path])
    assert load.rows_read == load.rows_loaded == 2922
    import csv

    with path.open() as handle:
        expected = [float(r["DEP_DELAY_NEW"]) for r in csv.DictReader(handle) if r["DEP_DELAY_NEW"]]
    loaded = [r[0] for r in table(tmp_path / "wh.duckdb",
                                  "select dep_delay from raw.flights where dep_delay is not null order by source_line")]
    assert loaded == expected and len(loaded) == 2800


def test_numeric_airport_ids_refused_without_a_mapping_and_loaded_with_one(tmp_path):
    path = tmp_path / "ids_only.csv"
    path.write_text("FL_DATE,OP_UNIQUE_CARRIER,OP_CARRIER_FL_NUM,ORIGIN_AIRPORT_ID,DEST_AIRPORT_ID,CRS_DEP_TIME\n"
                    "2019-01-01,AA,100,12478,13303,0700\n"
                    "2019-01-01,AA,101,12478,99999,0800\n")
    with pytest.raises(LoadError, match=r"ids_only.csv: the file carries numeric airport ids.*ORIGIN \(found "
                                        r"ORIGIN_AIRPORT_ID\).*FLIGHTDELAY_AIRPORT_ID_MAP"):
        load_flights(tmp_path / "wh.duckdb", [path])

    mapping = tmp_path / "airport_ids.csv"
    mapping.write_text("airport_id,airport_code\n12478,JFK\n13303,MIA\n")
    [load] = load_flights(tmp_path / "wh.duckdb", [path], airport_id_map=mapping)
    assert (load.rows_read, load.rows_loaded, load.rows_rejected) == (2, 1, 1)
    assert table(tmp_path / "wh.duckdb", "select origin, dest from raw.flights") == [("JFK", "MIA")]
    [(line, reason)] = table(tmp_path / "wh.duckdb", "select source_line, rejection_reason from raw.flights_rejected")
    assert line == 3 and reason == "DEST: cannot parse 'no code for DEST_AIRPORT_ID 99999' as airport"


def test_quoted_city_names_with_commas(tmp_path):
    [load] = load_flights(tmp_path / "wh.duckdb", [REAL_SAMPLES / "bts_ontime_2021_07_one_row.csv"])
    assert (load.rows_read, load.rows_loaded) == (1, 1)
    assert table(tmp_path / "wh.duckdb", "select origin, dest, crs_dep_time from raw.flights") == [("ATL", "DAY", 1632)]


# ------------------------------------------------------------------ detection and refusal


def test_formats_are_detected_from_content(tmp_path):
    bts = REAL_SAMPLES / "bts_ontime_2021_02_oma_subset.csv"
    archive = tmp_path / "On_Time_Reporting_2021_2.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(bts, "T_ONTIME_REPORTING.csv")
        handle.writestr("readme.html", "<html></html>")
    lcd = tmp_path / "lcd.csv"
    lcd.write_text('"STATION","DATE","REPORT_TYPE","HourlyDryBulbTemperature"\n'
                   '"72530094846","2021-02-01T00:51:00","FM-15","20"\n')
    dly = tmp_path / "USW00094846.dly"
    dly.write_text(dly_line("USW00094846", 2021, 2, "TMAX", {1: ("-50", "", "", "W")}) + "\n")
    legacy = tmp_path / "legacy.csv"
    legacy.write_text(LEGACY_HEADER)

    assert detect(bts).format == "bts_csv"
    assert detect(legacy).format == "bts_csv"
    assert (detect(archive).format, detect(archive).landing_name) == ("bts_zip", "T_ONTIME_REPORTING.csv")
    assert detect(lcd).format == "lcd_hourly"
    assert detect(REAL_SAMPLES / "noaa_cdo_daily_jfk_2014_2024.csv").format == "cdo_daily"
    assert detect(dly).format == "ghcn_dly"


def test_unknown_layout_is_refused_naming_what_is_missing(tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("Date,Airline,From,To\n2019-01-01,AA,JFK,MIA\n")
    with pytest.raises(IngestError) as refused:
        detect(odd)
    message = str(refused.value)
    assert message.startswith(f"{odd}: unknown layout")
    assert "'FL_DATE'" in message and "'OP_UNIQUE_CARRIER'" in message and "'REPORT_TYPE'" in message
    assert "Found columns: ['Date', 'Airline', 'From', 'To']" in message
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(IngestError, match="empty.csv: file is empty"):
        detect(empty)


# ------------------------------------------------------------------ GHCN-Daily .dly (Spark, no Python UDFs)


def dly_line(station: str, year: int, month: int, element: str, days: dict[int, tuple[str, str, str, str]]) -> str:
    """A .dly line as laid out in the GHCN-Daily readme: ID YEAR MONTH ELEMENT, then 31 x (VALUE5 M Q S)."""
    groups = "".join(f"{days[d][0]:>5}{days[d][1] or ' '}{days[d][2] or ' '}{days[d][3] or ' '}" if d in days
                     else "-9999   " for d in range(1, 32))
    return f"{station:<11}{year:04d}{month:02d}{element:<4}{groups}"


def test_ghcn_dly_values_become_fahrenheit_and_inches(spark, tmp_path):
    lines = [
        dly_line("USW00094789", 2014, 2, "TMAX", {1: ("28", "", "", "W"), 2: ("-9999", "", "", ""),
                                                  3: ("100", "", "I", "W")}),
        dly_line("USW00094789", 2014, 2, "TMIN", {1: ("-11", "", "", "W")}),
        dly_line("USW00094789", 2014, 2, "PRCP", {1: ("254", "", "", "W"), 3: ("0", "T", "", "W")}),
        dly_line("USW00094789", 2014, 2, "SNWD", {1: ("50", "", "", "W")}),      # not used by the lake
        dly_line("USW00094789", 2014, 2, "AWND", {1: ("45", "", "", "W")}),
        dly_line("USC00301234", 2014, 2, "TMAX", {1: ("10", "", "", "7")}),      # not an airport station
        "USW000947892X1402TMAX   10  W",                                         # broken YEAR
    ]
    path = tmp_path / "USW00094789.dly"
    path.write_text("\n".join(lines) + "\n")
    stations = spark.createDataFrame(
        [("JFK", "74486094789", "744860", "94789", "JFK", -5)],
        "airport_code string, station_id string, usaf_id string, wban_id string, station_name string, "
        "lst_utc_offset_hours int")
    raw = ghcn_daily.transform_to_cdo_layout(ghcn_daily.transform_day_values(ghcn_daily.extract(spark, str(path))))
    parsed = cdo_daily.transform_parse_daily(raw, stations, "metric")
    by_day = {(r.ghcnd_station_id, r.raw_date): r for r in parsed.collect()}
    first = by_day[("USW00094789", "2014-02-01")]
    assert (first.tmax_f, first.tmin_f, first.precip_in, first.avg_wind_speed_mph) == (37.0, 30.0, 1.0, 10.1)
    assert first.rejection_reason is None and first.airport_code == "JFK"
    third = by_day[("USW00094789", "2014-02-03")]
    assert third.tmax_f is None and third.qc_failed_elements == "TMAX" and third.precip_in == 0.0
    assert ("USW00094789", "2014-02-02") not in by_day  # only missing values that day
    assert by_day[("USC00301234", "2014-02-01")].rejection_reason.startswith("STATION: no airport for GHCND id")
    [broken] = [r for r in parsed.collect() if r.raw_date == "2X14-02"]
    assert broken.rejection_reason == "DATE: cannot parse '2X14-02' as yyyy-MM-dd"
    assert raw.count() == 4


# ------------------------------------------------------------------ the CLI over every real sample


@pytest.mark.integration
def test_ingest_every_real_sample_and_each_layout_reconciles(tmp_path):
    inbox = tmp_path / "downloads"
    inbox.mkdir()
    for sample in REAL_SAMPLES.iterdir():  # the README comes along, as in a real downloads folder
        (inbox / sample.name).write_bytes(sample.read_bytes())
    with zipfile.ZipFile(inbox / "On_Time_Reporting_2019_1.zip", "w") as archive:
        archive.writestr("On_Time_Reporting_2019_1.csv",
                         LEGACY_HEADER + legacy_row("1/1/2019 12:00:00 AM", "AA", "100", "JFK", "MIA", "700",
                                                    "705", "5.00"))
        archive.writestr("readme.html", "<html></html>")
    (inbox / "LCD_72530094846_2021.csv").write_text(
        '"STATION","DATE","REPORT_TYPE","SOURCE","HourlyDryBulbTemperature","HourlyVisibility"\n'
        '"72530094846","2021-02-01T00:51:00","FM-15","7","20","10.00"\n'
        '"72530094846","2021-02-01T01:20:00","FM-16","7","19","2.50V"\n'
        '"72530094846","2021-02-01T01:51:00","FM-15","7","18s","3.00"\n'
        '"72530094846","2021-02-01T02:37:00","FM-16","7","17","1.25"\n'
        '"72530094846","2021-02-01T23:59:00","SOD","6","",""\n')
    (inbox / "USW00094846.dly").write_text(dly_line("USW00094846", 2021, 2, "TMAX", {1: ("-50", "", "", "W")}) + "\n")

    env = {**os.environ, "FLIGHTDELAY_RAW": str(tmp_path / "raw"), "FLIGHTDELAY_LAKE": str(tmp_path / "lake"),
           "FLIGHTDELAY_WAREHOUSE": str(tmp_path / "wh.duckdb"), "FLIGHTDELAY_ARTIFACTS": str(tmp_path / "artifacts")}
    completed = subprocess.run([sys.executable, "-m", "flightdelay.cli", "ingest", str(inbox)], env=env,
                               cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    rows = {line.split()[0]: line.split()[1:5] for line in completed.stdout.splitlines()[1:] if line.strip()}
    counts = {name: [int(v.replace(",", "")) for v in values[1:4]] for name, values in rows.items()}
    assert {name: values[0] for name, values in rows.items()} == {
        "bts_ontime_2021_02_oma_subset.csv": "bts_csv", "bts_ontime_2021_07_one_row.csv": "bts_csv",
        "noaa_cdo_daily_jfk_2014_2024.csv": "cdo_daily", "On_Time_Reporting_2019_1.zip": "bts_zip",
        "LCD_72530094846_2021.csv": "lcd_hourly", "USW00094846.dly": "ghcn_dly", "README.md": "skipped",
    }
    for name, (read, loaded, quarantined) in counts.items():
        assert read == loaded + quarantined, name
    assert counts["bts_ontime_2021_02_oma_subset.csv"] == [2922, 2922, 0]
    assert counts["noaa_cdo_daily_jfk_2014_2024.csv"][0] == 3651
    # FM-15 at 00:51 and 01:51, FM-16 at 02:37 for the hour without a routine report; the 01:20 special
    # and the daily summary are quarantined
    assert counts["LCD_72530094846_2021.csv"] == [5, 3, 2]
    assert counts["USW00094846.dly"] == [1, 1, 0]

    # a daily export alone, into a fresh raw zone: no hourly files needed
    alone = {**env, "FLIGHTDELAY_RAW": str(tmp_path / "raw_daily_only"), "FLIGHTDELAY_LAKE": str(tmp_path / "lake2")}
    daily_only = subprocess.run([sys.executable, "-m", "flightdelay.cli", "ingest",
                                 str(REAL_SAMPLES / "noaa_cdo_daily_jfk_2014_2024.csv")],
                                env=alone, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert daily_only.returncode == 0, daily_only.stdout[-2000:] + daily_only.stderr[-2000:]
    [line] = [row for row in daily_only.stdout.splitlines() if row.startswith("noaa_cdo_daily")]
    assert line.split()[1:3] == ["cdo_daily", "3,651"]

    refused = subprocess.run([sys.executable, "-m", "flightdelay.cli", "ingest", str(PROJECT_ROOT / "README.md")],
                             env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "README.md: unknown layout" in refused.stderr
