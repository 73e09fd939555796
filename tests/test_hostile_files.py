"""Files from the wild, careless or hostile: none breaks the warehouse, sinks a file over one row, loads a
row wrongly, lands half-read, or overwrites another file. Each test failed on the loader it replaced.

Longer than 350 lines on purpose: a catalogue of such files, one short test each, that reads as the loader's
contract with the wild."""

from __future__ import annotations

import zipfile
from pathlib import Path

import duckdb
import pytest

from flightdelay.raw import ingest
from flightdelay.raw.ingest import IngestError
from flightdelay.raw.load import LoadError, load_flights
from flightdelay.settings import Settings
from tests.conftest import PROJECT_ROOT

HEADER = ("FL_DATE,OP_UNIQUE_CARRIER,TAIL_NUM,OP_CARRIER_FL_NUM,ORIGIN,DEST,CRS_DEP_TIME,DEP_TIME,"
          "DEP_DELAY,DEP_DEL15,CRS_ARR_TIME,ARR_TIME,ARR_DELAY,CANCELLED,DIVERTED,AIR_TIME,DISTANCE\n")


def flight(day: int = 1, number: int = 1545, dep_delay: str = "2.00", distance: str = "1400.00",
           tail: str = "N14228", cancelled: str = "0.00") -> str:
    return (f"1/{day}/2013 12:00:00 AM,UA,{tail},{number},EWR,IAH,0515,0517,{dep_delay},0.00,0819,0830,11.00,"
            f"{cancelled},0.00,227.00,{distance}\n")


def rows(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def settings_in(tmp_path: Path, **changes) -> Settings:
    return Settings(project_root=PROJECT_ROOT, raw_dir=tmp_path / "raw", lake_dir=tmp_path / "lake",
                    warehouse_path=tmp_path / "wh.duckdb", artifacts_dir=tmp_path / "artifacts", **changes)


# ------------------------------------------------------------------ 1. SQL injection through header names


@pytest.mark.parametrize("hostile", [
    'x" to "y"; commit; drop table raw.flights; --',
    "x'); copy (select 42) to '{pwned}' (format csv); --",
    'DISTANCE" varchar); drop table raw.load_audit; create table t ("a',
])
def test_header_names_never_reach_sql(tmp_path, hostile):
    warehouse = tmp_path / "wh.duckdb"
    pwned = tmp_path / "pwned.csv"
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(HEADER + flight(1))
    load_flights(warehouse, [earlier])
    path = tmp_path / "hostile.csv"
    path.write_text(HEADER.rstrip("\n") + ',"' + hostile.format(pwned=pwned).replace('"', '""') + '"\n'
                    + flight(2).rstrip("\n") + ",1\n")
    [load] = load_flights(warehouse, [path])
    assert (load.rows_read, load.rows_loaded, load.rows_rejected) == (1, 1, 0)
    assert rows(warehouse, "select source_file, source_line from raw.flights order by 1") == [
        ("earlier.csv", 2), ("hostile.csv", 2)]
    assert rows(warehouse, "select count(*) from raw.load_audit") == [(2,)]
    assert not pwned.exists()


def test_a_file_name_with_quotes_and_sql_is_only_a_value(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    path = tmp_path / "it's'; drop table raw.flights; --.csv"
    path.write_text(HEADER + flight())
    [load] = load_flights(warehouse, [path])
    assert load.rows_loaded == 1
    assert rows(warehouse, "select source_file from raw.flights") == [(path.name,)]


# ------------------------------------------------------------------ 2. file names are not glob patterns


def test_a_file_named_like_a_glob_is_read_as_itself(tmp_path):
    for month in ("01", "02", "03"):
        (tmp_path / f"bts_2013_{month}.csv").write_text(HEADER + flight(1) * 5)
    literal = tmp_path / "bts_2013_0*.csv"
    literal.write_text(HEADER + flight(2) + flight(3))
    [load] = load_flights(tmp_path / "wh.duckdb", [literal])
    assert (load.rows_read, load.rows_loaded) == (2, 2)
    for day, name in ((4, "bts_[2013].csv"), (5, "bts_?.csv")):
        odd = tmp_path / name
        odd.write_text(HEADER + flight(day))
        assert load_flights(tmp_path / "wh.duckdb", [odd])[0].rows_loaded == 1


# ------------------------------------------------------------------ 3. zip bombs


def write_zip(path: Path, member: str, blocks: int, block: bytes) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive, \
            archive.open(member, "w", force_zip64=True) as out:
        out.write(HEADER.encode())
        for _ in range(blocks):
            out.write(block)
    return path


def test_a_zip_bomb_is_refused_before_it_fills_the_disk(tmp_path):
    # 100 MB of one repeated line in a zip of about 100 KB: a ratio near 1,000
    bomb = write_zip(tmp_path / "On_Time_2013_1.zip", "On_Time_2013_1.csv", 100, flight().encode() * 8_000)
    assert bomb.stat().st_size < 1_000_000
    settings = settings_in(tmp_path)
    with pytest.raises(IngestError, match=r"refused as a possible zip bomb.*FLIGHTDELAY_MAX_ZIP_RATIO"):
        ingest.ingest(settings, [bomb])
    assert not list((tmp_path / "raw").rglob("*.csv")) and not list((tmp_path / "raw").rglob(".*partial*"))


def test_the_unzipped_size_cap_is_a_setting(tmp_path):
    normal = write_zip(tmp_path / "month.zip", "month.csv", 1, flight().encode() * 20_000)  # about 2 MB
    with pytest.raises(IngestError, match="FLIGHTDELAY_MAX_UNZIPPED_BYTES"):
        ingest.ingest(settings_in(tmp_path, max_unzipped_bytes=1_000_000), [normal])
    [result] = ingest.ingest(settings_in(tmp_path), [normal])
    assert result.rows_loaded == 20_000


# ------------------------------------------------------------------ 8. physical line numbers, blank lines counted


def test_line_numbers_survive_blank_lines_quoted_newlines_and_crlf(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(
        (HEADER + flight(1)                                   # line 2
         + "\n"                                               # line 3: blank
         + flight(2).replace("N14228", '"N1\nX"')            # lines 4-5: a quoted line break (bad tail)
         + "   \n"                                            # line 6: blank (spaces)
         + flight(3).replace("\n", "\r\n")                    # line 7: CRLF among LF
         + flight(4, dep_delay="x")                           # line 8: rejected
         + flight(5)).encode())                               # line 9
    [load] = load_flights(tmp_path / "wh.duckdb", [path])
    assert (load.rows_read, load.rows_loaded, load.rows_rejected, load.blank_lines) == (7, 3, 2, 2)
    assert rows(tmp_path / "wh.duckdb", "select source_line, day(fl_date) from raw.flights order by 1") == [
        (2, 1), (7, 3), (9, 5)]
    assert rows(tmp_path / "wh.duckdb", "select source_line from raw.flights_rejected order by 1") == [(4,), (8,)]
    assert rows(tmp_path / "wh.duckdb", "select rows_read, rows_loaded, rows_quarantined, blank_lines "
                                        "from raw.data_quality_summary") == [(7, 3, 2, 2)]


# ------------------------------------------------------------------ 9. one bad row is one quarantined row


def test_one_bad_row_never_sinks_the_file(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(
        HEADER.encode()
        + flight(1).replace("EWR", "\xff\xfeR").encode("latin-1")   # line 2: invalid UTF-8 in ORIGIN
        + flight(2, tail="N" + "9" * 3_000_000).encode()            # line 3: a 3 MB field
        + flight(3, number=99999999999).encode()                    # line 4: flight number overflows
        + flight(4).replace(",1545,", ",inf,").encode()             # line 5: inf flight number
        + flight(5).encode())                                       # line 6: fine
    [load] = load_flights(tmp_path / "wh.duckdb", [path])
    assert (load.rows_read, load.rows_loaded, load.rows_rejected) == (5, 1, 4)
    reasons = dict(rows(tmp_path / "wh.duckdb", "select source_line, rejection_reason from raw.flights_rejected"))
    assert reasons[2].startswith("ORIGIN: invalid UTF-8 in '\\xff\\xfeR'")
    assert reasons[3].startswith("TAIL_NUM: line is longer than 1,048,576 bytes, this value runs on: 'N9999")
    assert reasons[4] == "OP_CARRIER_FL_NUM: '99999999999' is not a whole number inside the plausible range [1, 9999]"
    assert reasons[5] == "OP_CARRIER_FL_NUM: 'inf' is not a finite number"


def test_an_unreadable_file_is_refused_whole_and_nothing_of_it_lands(tmp_path):
    source = tmp_path / "in" / "bts_2013_01.csv"
    source.parent.mkdir()
    # a header that is not UTF-8 text: nothing of the file can be trusted
    source.write_bytes(HEADER.replace("DISTANCE", "DIST\xff\xfe").encode("latin-1") + flight().encode())
    settings = settings_in(tmp_path)
    with pytest.raises(IngestError, match=r"bts_2013_01.csv: the header \(line 1\) is not UTF-8 text.*nothing of it "
                                          "was landed"):
        ingest.ingest(settings, [source])
    assert list((tmp_path / "raw").rglob("*")) in ([], [tmp_path / "raw" / "bts"])
    good = tmp_path / "in" / "bts_2013_02.csv"
    good.write_text(HEADER + flight())
    [result] = ingest.ingest(settings, [good])  # the refused file left nothing behind that blocks the next
    assert result.rows_loaded == 1 and (tmp_path / "raw" / "bts" / "bts_2013_02.csv").exists()


# ------------------------------------------------------------------ 10. non-finite and absurd values


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("dep_delay", "NaN", "DEP_DELAY: 'NaN' is not a finite number"),
    ("dep_delay", "inf", "DEP_DELAY: 'inf' is not a finite number"),
    ("dep_delay", "1e309", "DEP_DELAY: '1e309' is not a finite number"),
    ("dep_delay", "99999999", "DEP_DELAY: '99999999' is not inside the plausible range [-240, 4320]"),
    ("distance", "-5", "DISTANCE: '-5' is not inside the plausible range [10, 5100]"),
    ("cancelled", "2.00", "CANCELLED: '2.00' is not 0 or 1"),
])
def test_non_finite_and_absurd_values_are_quarantined_with_the_field(tmp_path, field, value, reason):
    path = tmp_path / "m.csv"
    path.write_text(HEADER + flight(**{field: value}) + flight(2))
    [load] = load_flights(tmp_path / "wh.duckdb", [path])
    assert (load.rows_loaded, load.rows_rejected) == (1, 1)
    assert rows(tmp_path / "wh.duckdb", "select rejection_reason from raw.flights_rejected") == [(reason,)]
    # nothing non-finite is left to be labelled delayed (NaN >= 15 is true in DuckDB)
    assert rows(tmp_path / "wh.duckdb", "select count(*) from raw.flights where not isfinite(dep_delay)") == [(0,)]


# ------------------------------------------------------------------ 7. every path that loads records its reconciliation


def test_ingest_records_the_reconciliation_the_quarantine_gate_reads(tmp_path):
    source = tmp_path / "in" / "bts_2013_03.csv"
    source.parent.mkdir()
    lines = [flight(1 + i % 28) if i % 20 else flight(1).replace("1/1/2013", "13/45/2013") for i in range(200)]
    source.write_text(HEADER + "".join(lines))
    settings = settings_in(tmp_path)
    ingest.ingest(settings, [source])
    assert rows(settings.warehouse_path, "select source_kind, source_file, rows_read, rows_loaded, rows_quarantined "
                                         "from raw.data_quality_summary") == [
        ("flights", "bts_2013_03.csv", 200, 190, 10)]
    from flightdelay.quality.gates import CRITICAL, _context, raw_files_frame, run_asset

    frame = raw_files_frame(settings, settings.warehouse())
    results = run_asset(_context(settings), "raw_files", frame, {})
    [critical] = [r for r in results if r.severity == CRITICAL]
    assert not critical.success and any("quarantined_share" in failure for failure in critical.failed)


# ------------------------------------------------------------------ 11. two files with one base name


def test_two_files_of_one_name_from_different_folders_are_refused(tmp_path):
    first, second = tmp_path / "a" / "bts_2013_01.csv", tmp_path / "b" / "bts_2013_01.csv"
    for path, day in ((first, 1), (second, 2)):
        path.parent.mkdir()
        path.write_text(HEADER + flight(day))
    settings = settings_in(tmp_path)
    with pytest.raises(IngestError, match="would both land as .*bts_2013_01.csv.*nothing was landed"):
        ingest.ingest(settings, [first, second])
    assert not (tmp_path / "raw" / "bts" / "bts_2013_01.csv").exists()
    with pytest.raises(LoadError, match="two different files named bts_2013_01.csv"):
        load_flights(settings.warehouse_path, [first, second])


def test_a_redelivered_file_keeps_the_earlier_one(tmp_path):
    source = tmp_path / "in" / "bts_2013_01.csv"
    source.parent.mkdir()
    source.write_text(HEADER + flight(1))
    settings = settings_in(tmp_path)
    ingest.ingest(settings, [source])
    source.write_text(HEADER + flight(1) + flight(2))
    [result] = ingest.ingest(settings, [source])
    assert "replaces the earlier bts_2013_01.csv, kept as" in result.note
    [kept] = (tmp_path / "raw" / "_replaced" / "bts").iterdir()
    assert kept.read_text() == HEADER + flight(1)
    assert rows(settings.warehouse_path, "select count(*) from raw.flights") == [(2,)]


# ------------------------------------------------------------------ 15. selections without flight number or tail


def test_a_selection_without_flight_number_and_tail_loads(tmp_path):
    path = tmp_path / "kaggle_2013_01.csv"
    path.write_text("FL_DATE,OP_UNIQUE_CARRIER,ORIGIN,DEST,CRS_DEP_TIME,DEP_DELAY,ARR_DELAY,CANCELLED\n"
                    "2013-01-01,UA,EWR,IAH,0515,2.00,11.00,0.00\n"
                    "2013-01-01,UA,EWR,ORD,0515,-3.00,-1.00,0.00\n")
    [result] = ingest.ingest(settings_in(tmp_path), [path])
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (2, 2, 0)
    assert rows(tmp_path / "wh.duckdb", "select op_carrier_fl_num, tail_num, dest from raw.flights order by dest") == [
        (None, None, "IAH"), (None, None, "ORD")]


# ------------------------------------------------------------------ found by an attack on this code


def test_two_stray_quotes_do_not_swallow_the_records_between_them(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(HEADER + flight(1) + flight(2, tail='"N14228') + flight(3) + flight(4)
                    + flight(5, tail='N14228"') + flight(6))
    [load] = load_flights(tmp_path / "wh.duckdb", [path])
    # before: read 4 = loaded 3 + quarantined 1, the flights of lines 4 and 5 gone without a trace
    assert (load.rows_read, load.rows_loaded, load.rows_rejected) == (6, 5, 1)
    assert rows(tmp_path / "wh.duckdb", "select source_line from raw.flights order by 1") == [
        (2,), (4,), (5,), (6,), (7,)]
    [(line, reason)] = rows(tmp_path / "wh.duckdb", "select source_line, rejection_reason from raw.flights_rejected")
    assert line == 3 and reason.startswith("TAIL_NUM: unterminated quote")


def test_lenient_number_spellings_are_quarantined(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(HEADER + flight(1, dep_delay="1_000") + flight(2, dep_delay="2.00\u00a0")
                    + flight(3, number="1e3") + flight(4, dep_delay="+5") + flight(5, number="12.00"))
    [load] = load_flights(tmp_path / "wh.duckdb", [path])
    # a trailing no-break space is trimmed like any space; digit separators and exponents in a flight number are not
    assert (load.rows_loaded, load.rows_rejected) == (3, 2)
    assert rows(tmp_path / "wh.duckdb", "select source_line, dep_delay, op_carrier_fl_num from raw.flights "
                                        "order by 1") == [(3, 2.0, 1545), (5, 5.0, 1545), (6, 2.0, 12)]
    assert rows(tmp_path / "wh.duckdb",
                "select source_line, rejection_reason from raw.flights_rejected order by 1") == [
        (2, "DEP_DELAY: cannot parse '1_000' as number"), (4, "OP_CARRIER_FL_NUM: cannot parse '1e3' as int")]


def test_a_known_column_twice_is_refused_as_ambiguous(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(HEADER.rstrip("\n") + ",origin\n" + flight().rstrip("\n") + ",JFK\n")
    with pytest.raises(LoadError, match="the column ORIGIN appears twice"):
        load_flights(tmp_path / "wh.duckdb", [path])


def test_a_name_too_long_to_land_is_refused_cleanly(tmp_path):
    source = tmp_path / ("x" * 240 + ".csv")
    source.write_text(HEADER + flight())
    with pytest.raises(IngestError, match="longer than 200 bytes"):
        ingest.ingest(settings_in(tmp_path), [source])


# ------------------------------------------------------------------ 16. names equal after Unicode normalisation or case


NFC, NFD = "caf\u00e9_2013_01.csv", "cafe\u0301_2013_01.csv"  # "café_2013_01.csv" composed and decomposed


@pytest.mark.parametrize(("first", "second", "how"), [
    (NFC, NFD, "only in Unicode normalisation"),
    ("BTS_2013_01.csv", "bts_2013_01.csv", "only in letter case"),
    (NFC, NFD.upper(), "only in Unicode normalisation, compatibility forms"),
    ("BTS_2013_01.csv", "\uff22\uff34\uff33_2013_01.csv", "only in Unicode normalisation, compatibility forms"),
])
def test_two_names_that_are_one_on_macos_are_refused_and_nothing_lands(tmp_path, first, second, how):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, day in ((first, 1), (second, 2)):
        (folder / name).write_text(HEADER + flight(day))
    assert len(list(folder.iterdir())) == 2  # two files here (Linux); one on macOS
    settings = settings_in(tmp_path)
    # before: both landed, as two files of what a Mac shows as one name, and both months loaded
    with pytest.raises(IngestError) as refused:
        ingest.ingest(settings, [folder])
    message = str(refused.value)
    # the names escaped, since printed they look the same; in the order the folder listing gave them
    assert any(f"{ascii(a)} and {ascii(b)}, which differ {how}" in message for a, b in ((first, second),
                                                                                        (second, first))), message
    assert "Rename one" in message and message.endswith("nothing was landed")
    assert not list((tmp_path / "raw").rglob("*.csv"))
    assert not settings.warehouse_path.exists() or rows(settings.warehouse_path, "select count(*) from raw.flights") \
        == [(0,)]


def test_a_name_equal_to_a_landed_one_after_normalisation_is_refused_with_the_landed_spelling(tmp_path):
    settings = settings_in(tmp_path)
    earlier = tmp_path / "january" / NFD
    earlier.parent.mkdir()
    earlier.write_text(HEADER + flight(1))
    ingest.ingest(settings, [earlier])
    redelivered = tmp_path / "again" / NFC
    redelivered.parent.mkdir()
    redelivered.write_text(HEADER + flight(1) + flight(2))
    # before: landed beside the earlier file, and its flights loaded beside the earlier ones
    with pytest.raises(IngestError, match=r"beside the file landed there before: 'caf\\xe9_2013_01.csv' and "
                                          r"'cafe\\u0301_2013_01.csv', which differ only in Unicode normalisation"
                                          r".*rename it to exactly "
                                          r"'cafe\\u0301_2013_01.csv' so that it replaces the earlier one.*nothing was "
                                          "landed"):
        ingest.ingest(settings, [redelivered])
    assert [path.name for path in (tmp_path / "raw" / "bts").iterdir()] == [NFD]
    assert rows(settings.warehouse_path, "select count(*) from raw.flights") == [(1,)]
    # renamed as the message says, it replaces the earlier delivery
    renamed = redelivered.rename(redelivered.with_name(NFD))
    [result] = ingest.ingest(settings, [renamed])
    assert f"replaces the earlier {NFD}" in result.note
    assert [path.name for path in (tmp_path / "raw" / "bts").iterdir()] == [NFD]
    assert rows(settings.warehouse_path, "select count(*) from raw.flights") == [(2,)]


@pytest.mark.parametrize("name", [
    "bts_2013_01.csv.", "bts_2013_01.csv ",  # Windows drops a trailing dot or space: one name with the plain one
    "bts_\u200d2013_01.csv", "bts_\ufeff2013_01.csv",  # zero-width joiner, BOM: invisible
    "bts_\u202evsc.csv", "bts_2013\x85_01.csv", "bts_2013\u2028_01.csv",  # direction override, C1, line separator
])
def test_a_name_that_prints_like_another_or_changes_on_windows_is_refused(tmp_path, name):
    source = tmp_path / name
    source.write_text(HEADER + flight())
    with pytest.raises(IngestError, match="cannot be landed .*rename the file and ingest it again"):
        ingest.ingest(settings_in(tmp_path), [source])
    assert not list((tmp_path / "raw").rglob("*.csv"))
