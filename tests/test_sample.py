"""The bundled sample's encoding into BTS and LCD layouts, and the holiday seed."""

from __future__ import annotations

import pandas as pd

from flightdelay.raw import sample


def test_bts_encoding_uses_real_formats():
    flights = pd.DataFrame({
        "year": [2013, 2013], "month": [1, 1], "day": [1, 2], "dep_time": [517.0, None],
        "sched_dep_time": [515, 2359], "dep_delay": [2.0, None], "arr_time": [830.0, None],
        "sched_arr_time": [819, 5], "arr_delay": [11.0, None], "carrier": ["UA", "AA"],
        "flight": [1545, 7], "tailnum": ["N14228", None], "origin": ["EWR", "JFK"], "dest": ["IAH", "MIA"],
        "air_time": [227.0, None], "distance": [1400, 1089],
    }, index=[10, 11])  # a non-default index must not misalign computed columns
    encoded = sample.encode_bts(flights)
    assert encoded.iloc[0].to_dict() == {
        "FL_DATE": "1/1/2013 12:00:00 AM", "OP_UNIQUE_CARRIER": "UA", "TAIL_NUM": "N14228",
        "OP_CARRIER_FL_NUM": "1545", "ORIGIN": "EWR", "DEST": "IAH", "CRS_DEP_TIME": "0515",
        "DEP_TIME": "0517", "DEP_DELAY": "2.00", "DEP_DEL15": "0.00", "CRS_ARR_TIME": "0819",
        "ARR_TIME": "0830", "ARR_DELAY": "11.00", "CANCELLED": "0.00", "DIVERTED": "0.00",
        "AIR_TIME": "227.00", "DISTANCE": "1400.00",
    }
    cancelled = encoded.iloc[1]
    assert (cancelled["DEP_TIME"], cancelled["CANCELLED"], cancelled["DEP_DEL15"]) == ("", "1.00", "")
    assert cancelled["CRS_ARR_TIME"] == "0005"

def test_lcd_encoding_stamps_h51_in_local_standard_time():
    weather = pd.DataFrame({
        "origin": ["JFK", "JFK"], "time_hour": ["2013-07-01T16:00:00Z", "2013-07-01T17:00:00Z"],
        "temp": [80.06, 81.0], "dewp": [60.0, None], "humid": [50.2, 51.0], "wind_dir": [None, 0.0],
        "wind_speed": [9.20624, 0.0], "wind_gust": [None, None], "precip": [0.0, 0.01],
        "pressure": [1012.0, None], "visib": [10.0, 0.25],
    })
    jfk = next(s for s in sample.NYC_STATIONS if s.airport_code == "JFK")
    encoded = sample.encode_lcd(weather, jfk)
    first, second = encoded.iloc[0], encoded.iloc[1]
    # 16:00Z report is the 16:51Z METAR; EST (UTC-5) all year, even in July.
    assert first["DATE"] == "2013-07-01T11:51:00"
    assert first["STATION"] == "74486094789" and first["REPORT_TYPE"] == "FM-15"
    assert (first["HourlyDryBulbTemperature"], first["HourlySeaLevelPressure"]) == ("80", "29.88")
    assert first["HourlyWindDirection"] == "VRB"  # speed without direction
    assert second["HourlyWindDirection"] == "000" and second["HourlyVisibility"] == "0.25"
    assert second["HourlyDewPointTemperature"] == ""

def test_federal_holidays_follow_the_statute():
    holidays = sample.us_federal_holidays(2013, 2021)
    by_year = holidays.assign(year=holidays["holiday_date"].str[:4])
    h2013 = dict(zip(by_year[by_year.year == "2013"].holiday_name, by_year[by_year.year == "2013"].holiday_date,
                     strict=True))
    assert h2013["Thanksgiving Day"] == "2013-11-28"
    assert h2013["Memorial Day"] == "2013-05-27"
    assert h2013["Birthday of Martin Luther King, Jr."] == "2013-01-21"
    assert h2013["Labor Day"] == "2013-09-02"
    assert "Juneteenth National Independence Day" not in h2013
    # 2021-07-04 fell on a Sunday: observed Monday 5 July; Juneteenth starts in 2021.
    row = holidays[holidays.holiday_date == "2021-07-04"].iloc[0]
    assert row.observed_date == "2021-07-05"
    assert (holidays.holiday_date == "2021-06-19").any()

def test_sample_writes_identical_bytes_twice(tmp_path):
    first = sample.write_sample(tmp_path / "raw", tmp_path / "seeds", months=[2])
    digest = {p: p.read_bytes() for p in first.flight_files + first.weather_files + first.seed_files}
    second = sample.write_sample(tmp_path / "raw", tmp_path / "seeds", months=[2])
    assert second.files_written == 0
    assert all(p.read_bytes() == data for p, data in digest.items())
    assert first.flight_rows == 24951
