"""Reading raw LCD files (spark_prep/lcd_records.py): exact paths, physical lines, every line accounted for."""

from __future__ import annotations

import pytest

from spark_prep import lcd_records

COLUMNS = ("STATION", "DATE", "REPORT_TYPE", "HourlyDryBulbTemperature")
REQUIRED = ("STATION", "DATE")


def rows_of(content: bytes, name: str = "lcd.csv") -> list[dict]:
    """file_rows as dicts by field name, as Spark will see them."""
    names = [part.split(" ")[0].strip("`") for part in lcd_records.schema(COLUMNS).split(", ")]
    return [dict(zip(names, row, strict=True)) for row in lcd_records.file_rows(name, content, COLUMNS, REQUIRED)]


@pytest.mark.parametrize(("path", "pattern"), [
    ("file:/lake/raw/lcd jfk [2013] *.csv", "file:/lake/raw/lcd jfk \\[2013\\] \\*.csv"),
    ("s3://bucket/raw/lcd/what?.csv", "s3://bucket/raw/lcd/what\\?.csv"),
    ("file:/raw/a,{b}.csv", "file:/raw/{a\\,\\{b\\}.csv}"),
    ("file:/raw/back\\slash.csv", "file:/raw/back\\\\slash.csv"),
    ("file:/raw/plain 100% 'é\".csv", "file:/raw/plain 100% 'é\".csv"),
])
def test_a_path_becomes_a_pattern_that_matches_only_itself(path, pattern):
    assert lcd_records.literal_pattern(path) == pattern


def test_records_keep_their_physical_line_and_every_line_is_counted():
    content = (
        b'\xef\xbb\xbf"STATION","NAME","DATE","HourlyDryBulbTemperature","REPORT_TYPE"\r\n'  # BOM, CRLF
        b'"74486094789","JFK","2013-01-01T00:51:00","30","FM-15"\n'                          # line 2
        b"\n"                                                                                # line 3: blank
        b'"74486094789","JFK\nINTL","2013-01-01T01:51:00","","FM-15"\n'                      # lines 4-5: one record
        b"   \n"                                                                             # line 6: blank
        b'"74486094789","J\xffK","2013-01-01T02:51:00","32","FM-15"\n'                       # 7: bad byte, unused field
        b'"74486094789","JFK","2013-01-01T03:51:00","3\xff3","FM-15"\n'                      # 8: bad byte, used field
        b'"74486094789","JFK","2013-01-01T04:51:00","34"\n'                                  # 9: a field missing
    )
    rows = rows_of(content)
    assert [(r["row_kind"], r["source_line"], r["DATE"], r["HourlyDryBulbTemperature"]) for r in rows[:-1]] == [
        ("record", 2, "2013-01-01T00:51:00", "30"),
        ("record", 4, "2013-01-01T01:51:00", None),  # empty is null, as in Spark's CSV reader
        ("record", 7, "2013-01-01T02:51:00", "32"),
        ("bad", 8, None, None),
        ("bad", 9, None, None),
    ]
    assert rows[3]["problem"] == "HourlyDryBulbTemperature: not UTF-8 text: '3\\xff3'"
    assert "REPORT_TYPE" in rows[4]["problem"] and "missing" in rows[4]["problem"]  # CsvRecords' wording
    assert rows[4]["raw_text"] == '"74486094789","JFK","2013-01-01T04:51:00","34"'
    [file_row] = [r for r in rows if r["row_kind"] == "file"]
    # read = 3 records + 2 bad records + 2 blank lines
    assert (file_row["rows_read"], file_row["blank_lines"], file_row["problem"]) == (7, 2, None)
    assert file_row["file_columns"] == ["STATION", "DATE", "REPORT_TYPE", "HourlyDryBulbTemperature"]


def test_columns_are_found_by_name_and_a_cut_down_file_has_nulls_for_the_others():
    rows = rows_of(b"date,Station,HourlyDryBulbTemperature\n2013-01-01T00:51:00,74486094789,30\n")
    assert {k: v for k, v in rows[0].items() if k in COLUMNS} == {
        "STATION": "74486094789", "DATE": "2013-01-01T00:51:00", "REPORT_TYPE": None, "HourlyDryBulbTemperature": "30"}
    assert rows[1]["file_columns"] == ["STATION", "DATE", "HourlyDryBulbTemperature"]


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "empty"),  # CsvRecords' wording
    (b"NAME,HourlyDryBulbTemperature\nJFK,30\n", "the header (line 1) has no column ['STATION', 'DATE']; "
                                                 "found ['NAME', 'HourlyDryBulbTemperature']"),
])
def test_a_file_that_is_not_lcd_is_one_row_saying_why(content, problem):
    [row] = rows_of(content)
    assert row["row_kind"] == "file" and problem in row["problem"] and row["rows_read"] is None
