"""Reading raw LCD files (spark_prep/lcd_records.py): exact paths, physical lines, every line accounted for."""

from __future__ import annotations

import hashlib

import pytest

from spark_prep import lcd_records

COLUMNS = ("STATION", "DATE", "REPORT_TYPE", "HourlyDryBulbTemperature")
REQUIRED = ("STATION", "DATE")


def rows_of(content: bytes, name: str = "lcd.csv", committed: bytes | None = None) -> list[dict]:
    """file_rows as dicts by field name, as Spark will see them; `committed`: the bytes the lake was built from."""
    names = [part.split(" ")[0].strip("`") for part in lcd_records.schema(COLUMNS).split(", ")]
    was = None if committed is None else (len(committed), hashlib.sha256(committed).hexdigest())
    return [dict(zip(names, row, strict=True))
            for row in lcd_records.file_rows(name, content, COLUMNS, REQUIRED, was)]


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


HEADER = b'"STATION","DATE","HourlyDryBulbTemperature","REPORT_TYPE"'
GROWN = [  # a station's file for the year, line by line, with what real files hold: CRLF, a lone CR, a blank line
    HEADER + b"\r\n",
    b'"74486094789","2013-11-30T22:51:00","30","FM-15"\r\n',
    b'"74486094789","2013-11-30T23:51:00","31","FM-15"\r',
    b"   \n",
    b'"74486094789","2013-12-01T00:51:00","32","FM-15","extra"\n',
    b'"74486094789","2013-12-01T01:51:00","33","FM-15"\n',
]


@pytest.mark.parametrize("cut", range(1, len(GROWN)))
def test_of_a_file_that_grew_only_the_new_lines_are_taken_numbered_as_in_the_whole_file(cut):
    committed, content = b"".join(GROWN[:cut]), b"".join(GROWN)
    whole = rows_of(content)
    taken = rows_of(content, committed=committed)
    [file_row] = [r for r in taken if r["row_kind"] == "file"]
    assert (file_row["rows_read"], file_row["blank_lines"]) == (5, 1)  # the whole file's counts, as before
    if committed.endswith(b"\r"):  # the next byte could have made it CRLF: the line did not end there
        assert taken == whole and file_row["resumed_after_line"] is None
        return
    assert file_row["resumed_after_line"] == cut  # the lines the lake has, header included
    assert [r for r in taken if r["row_kind"] != "file"] == [
        r for r in whole if r["row_kind"] != "file" and r["source_line"] > cut]
    assert [r["source_line"] for r in taken if r["row_kind"] != "file"] == [n for n in (2, 3, 5, 6) if n > cut]


RECORD_1 = b'"1","2013-12-01T00:51:00","30","FM-15"\n'
RECORD_2 = b'"1","2013-12-01T01:51:00","32","FM-15"\n'
OPEN_QUOTE = b'"1","2013-12-01T00:51:00","30","FM-15\n'  # its quote is closed by the line after it, if any


@pytest.mark.parametrize(("committed", "content"), [
    pytest.param(HEADER + b"\n" + RECORD_1, HEADER + b"\n" + RECORD_1.replace(b"30", b"31") + RECORD_2,
                 id="a committed value changed"),
    pytest.param(HEADER + b"\n" + RECORD_1[:-3], HEADER + b"\n" + RECORD_1, id="its last line was cut short"),
    pytest.param(HEADER + b"\n" + RECORD_1, HEADER + b"\n" + RECORD_1, id="the same bytes"),
    pytest.param(HEADER + b"\n" + OPEN_QUOTE, HEADER + b"\n" + OPEN_QUOTE + b'"\n' + RECORD_2,
                 id="an open quote at the end of the committed lines, closed by a new line"),
])
def test_a_file_that_did_not_only_grow_is_taken_whole(committed, content):
    whole, taken = rows_of(content), rows_of(content, committed=committed)
    assert taken == whole and whole[-1]["resumed_after_line"] is None


def test_an_open_quote_at_the_end_of_the_committed_lines_reads_otherwise_once_the_file_grew():
    """Why such a file is taken whole: the lake holds line 2 as a bad record (its quote never closed); the grown
    file has lines 2-3 as one record, so the committed rows of line 2 are wrong now."""
    lake = [(r["row_kind"], r["source_line"]) for r in rows_of(HEADER + b"\n" + OPEN_QUOTE)]
    now = [(r["row_kind"], r["source_line"]) for r in rows_of(HEADER + b"\n" + OPEN_QUOTE + b'"\n' + RECORD_2)]
    assert lake == [("bad", 2), ("file", None)] and now == [("record", 2), ("record", 4), ("file", None)]
