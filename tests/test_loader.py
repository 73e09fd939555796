"""Flight loader: every line loaded or rejected with a reason, reconciled, idempotent."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from flightdelay.raw.load import FlightLoader, LoadError, load_flights
from tests.conftest import REAL_SAMPLES

HEADER = ("FL_DATE,OP_UNIQUE_CARRIER,TAIL_NUM,OP_CARRIER_FL_NUM,ORIGIN,DEST,CRS_DEP_TIME,DEP_TIME,"
          "DEP_DELAY,DEP_DEL15,CRS_ARR_TIME,ARR_TIME,ARR_DELAY,CANCELLED,DIVERTED,AIR_TIME,DISTANCE\n")
GOOD = "1/1/2013 12:00:00 AM,UA,N14228,1545,EWR,IAH,0515,0517,2.00,0.00,0819,0830,11.00,0.00,0.00,227.00,1400.00\n"
CANCELLED = "1/1/2013 12:00:00 AM,AA,N1,1,JFK,MIA,2400,,,,0300,,,1.00,0.00,,1089.00\n"


def write(path: Path, *lines: str) -> Path:
    path.write_text(HEADER + "".join(lines))
    return path


def rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_every_line_is_loaded_or_rejected_with_file_line_and_field(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    path = write(
        tmp_path / "month.csv",
        GOOD,
        "13/45/2013 12:00:00 AM,UA,N1,12,EWR,IAH,0515,,,,,,,,,,\n",        # line 3: bad date
        "1/2/2013 12:00:00 AM,UA,N1,12,EWR\n",                                # line 4: shifted / short
        "1/2/2013 12:00:00 AM,UA,N1,1x,EWR,IAH,2561,,,,,,,,,,\n",             # line 5: two bad fields
        ",UA,N1,12,EWR,IAH,0515,,,,,,,,,,\n",                                  # line 6: required missing
        CANCELLED,                                                             # line 7: fine
    )
    [load] = load_flights(warehouse, [path])
    assert (load.rows_read, load.rows_loaded, load.rows_rejected) == (6, 2, 4)
    assert load.reconciles
    rejected = rows(warehouse, "select source_line, rejection_reason from raw.flights_rejected order by 1")
    assert rejected == [
        (3, "FL_DATE: cannot parse '13/45/2013 12:00:00 AM' as date"),
        (4, "DEST: missing, and every field after it (expected 17 fields as in the header, found 5)"),
        (5, "OP_CARRIER_FL_NUM: cannot parse '1x' as int; CRS_DEP_TIME: cannot parse '2561' as hhmm"),
        (6, "FL_DATE: required value is missing"),
    ]
    loaded = rows(warehouse, "select source_line, crs_dep_time, cancelled, dep_time from raw.flights order by 1")
    assert loaded == [(2, 515, 0.0, 517), (7, 2400, 1.0, None)]
    audit = rows(warehouse, "select source_file, status, rows_read, rows_loaded, rows_rejected from raw.load_audit")
    assert audit == [("month.csv", "loaded", 6, 2, 4)]


def test_reload_replaces_rows_and_redelivery_under_another_name_is_refused(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    path = write(tmp_path / "m.csv", GOOD, CANCELLED)
    load_flights(warehouse, [path])
    again = load_flights(warehouse, [path], force=True)
    assert again[0].status == "loaded"
    unchanged = load_flights(warehouse, [path])
    assert unchanged[0].status == "unchanged"
    copy = tmp_path / "m_copy.csv"
    copy.write_bytes(path.read_bytes())
    duplicate = load_flights(warehouse, [copy])
    assert duplicate[0].status == "duplicate of m.csv"
    assert rows(warehouse, "select count(*) from raw.flights") == [(2,)]
    # A corrected file under the same name replaces the old rows, it does not add to them.
    write(path, GOOD)
    load_flights(warehouse, [path])
    assert rows(warehouse, "select count(*) from raw.flights") == [(1,)]


def test_failed_load_rolls_back_and_keeps_previous_rows(tmp_path, monkeypatch):
    warehouse = tmp_path / "wh.duckdb"
    path = write(tmp_path / "m.csv", GOOD, CANCELLED)
    load_flights(warehouse, [path])
    write(path, GOOD)
    with FlightLoader(warehouse) as loader:
        monkeypatch.setattr("flightdelay.raw.load.FileLoad.reconciles", property(lambda self: False))
        with pytest.raises(LoadError, match="reconciliation failed"):
            loader.load_file(path)
    assert rows(warehouse, "select count(*) from raw.flights") == [(2,)]


def test_empty_file_and_unknown_layout_are_refused_with_the_reason(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(LoadError, match="empty.csv: file is empty"):
        load_flights(warehouse, [empty])
    other = tmp_path / "other.csv"
    other.write_text("Year,Month,Carrier\n2013,1,UA\n")
    with pytest.raises(LoadError, match=r"other.csv: not a BTS.*\['FL_DATE', 'OP_UNIQUE_CARRIER'"):
        load_flights(warehouse, [other])


@pytest.mark.parametrize("name", ["bts_ontime_2021_02_oma_subset.csv", "bts_ontime_2021_07_one_row.csv"])
def test_real_bts_extracts_reconcile(tmp_path, name):
    path = REAL_SAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    [load] = load_flights(tmp_path / "wh.duckdb", [path])
    data_lines = len(path.read_text().splitlines()) - 1
    assert load.rows_read == data_lines
    assert load.rows_read == load.rows_loaded + load.rows_rejected
    assert load.rows_rejected == 0
