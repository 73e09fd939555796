"""The split behind `make bench INCREMENT=1` (bench/increment.py) on tiny hand-written raw files laid out as
bench/generate.py lays them out: the before state holds no record of the last month, the increment restores
the complete files byte for byte, and a cut LCD file keeps its header. No Spark, no flow."""

from __future__ import annotations

import csv
import io
import os

from bench.increment import apply_increment, differing_marts, last_month, raw_records, split_last_month, truncate_lcd
from bench.tables import increment_table

BTS_HEADER = "FL_DATE,OP_UNIQUE_CARRIER,TAIL_NUM,OP_CARRIER_FL_NUM,ORIGIN,DEST,CRS_DEP_TIME\n"
LCD_HEADER = '"STATION","DATE","REPORT_TYPE","HourlyDryBulbTemperature","REM"\n'


def bts(*dates: str) -> str:
    return BTS_HEADER + "".join(f"{date} 12:00:00 AM,UA,N1,{i},EWR,ORD,0600\n" for i, date in enumerate(dates))


def lcd_row(station: str, date: str, temp: str = "40", remark: str = "") -> str:
    return f'"{station}","{date}","FM-15","{temp}","{remark}"\n'


def write_raw(root):
    files = {
        "bts/bts_ontime_2014_10.csv": bts("10/1/2014", "10/31/2014"),
        "bts/bts_ontime_2014_11.csv": bts("11/1/2014", "11/30/2014"),
        "bts/bts_ontime_2014_12.csv": bts("12/1/2014", "12/15/2014", "12/31/2014"),
        "bts/bts_ontime_2013_12.csv": bts("12/24/2013"),  # an earlier year's December stays
        "lcd/LCD_72502014734_2013.csv": LCD_HEADER + lcd_row("72502014734", "2013-12-31T23:51:00"),
        # the last year's station file, with a quoted line break in a record before the month
        "lcd/LCD_72502014734_2014.csv": LCD_HEADER + lcd_row("72502014734", "2014-11-29T22:51:00")
        + lcd_row("72502014734", "2014-11-30T23:51:00", remark="two\nlines")
        + lcd_row("72502014734", "2014-12-01T00:51:00") + lcd_row("72502014734", "2014-12-31T23:51:00", "12"),
        # CRLF line ends and a BOM, as some downloads have them
        "lcd/LCD_72503014732_2014.csv": ("\ufeff" + LCD_HEADER + lcd_row("72503014732", "2014-11-01T00:51:00")
                                         + lcd_row("72503014732", "2014-12-02T00:51:00")).replace("\n", "\r\n"),
        # a station whose file starts in the month: not downloadable a month ago
        "lcd/LCD_72219013874_2014.csv": LCD_HEADER + lcd_row("72219013874", "2014-12-05T10:51:00"),
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text.encode("utf-8"))
    return files


def tree(root) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def records(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_before_state_lacks_the_last_month_and_the_increment_restores_the_files_byte_for_byte(tmp_path):
    complete, raw = tmp_path / "full" / "raw", tmp_path / "incremental" / "raw"
    write_raw(complete)
    assert last_month(complete) == "2014-12"

    split = split_last_month(complete, raw)
    assert split.month == "2014-12"
    assert split.withheld == ["bts/bts_ontime_2014_12.csv"]
    assert split.truncated == ["lcd/LCD_72219013874_2014.csv", "lcd/LCD_72502014734_2014.csv",
                               "lcd/LCD_72503014732_2014.csv"]
    assert (split.flights_added, split.weather_rows_added) == (3, 4)

    before = tree(raw)
    assert "bts/bts_ontime_2014_12.csv" not in before and "lcd/LCD_72219013874_2014.csv" not in before
    for name, data in before.items():
        rows = records(data)
        assert rows, name
        months = {row["FL_DATE"].split()[0] for row in rows} if name.startswith("bts/") else {
            row["DATE"][:7] for row in rows}
        if name.startswith("bts/"):
            months = {f"{d.split('/')[2]}-{int(d.split('/')[0]):02d}" for d in months}
        assert "2014-12" not in months, name
    # files the month does not touch are the complete ones
    for name in ("bts/bts_ontime_2014_10.csv", "bts/bts_ontime_2013_12.csv", "lcd/LCD_72502014734_2013.csv"):
        assert before[name] == (complete / name).read_bytes()
    # a cut LCD file: its header and every record before the month, a prefix of the complete file
    for name in ("lcd/LCD_72502014734_2014.csv", "lcd/LCD_72503014732_2014.csv"):
        full = (complete / name).read_bytes()
        assert full.startswith(before[name]) and before[name] != full
        assert before[name].splitlines()[0] == full.splitlines()[0]
        assert list(records(before[name])[0]) == ["STATION", "DATE", "REPORT_TYPE", "HourlyDryBulbTemperature", "REM"]
    newark = records(before["lcd/LCD_72502014734_2014.csv"])
    assert [row["DATE"] for row in newark] == ["2014-11-29T22:51:00", "2014-11-30T23:51:00"]
    assert newark[1]["REM"] == "two\nlines"  # the quoted line break kept whole
    assert before["lcd/LCD_72503014732_2014.csv"].endswith(b'"72503014732","2014-11-01T00:51:00","FM-15","40",""\r\n')

    untouched = {name: (raw / name).stat().st_mtime_ns for name in before if name not in split.truncated}
    apply_increment(complete, raw, split)
    assert tree(raw) == tree(complete)
    assert not list(raw.parent.glob(".*.download"))
    # only the month's files were written again
    assert {name: (raw / name).stat().st_mtime_ns for name in untouched} == untouched


def test_truncating_leaves_a_file_without_the_month_as_it_is_and_keeps_blank_lines_before_the_cut():
    data = (LCD_HEADER + lcd_row("1", "2014-10-01T00:51:00") + "\n" + lcd_row("1", "2014-11-01T00:51:00")).encode()
    assert truncate_lcd(data, "2014-12") == (data, 0)
    kept, cut = truncate_lcd(data, "2014-11")
    assert kept == (LCD_HEADER + lcd_row("1", "2014-10-01T00:51:00") + "\n").encode() and cut == 1
    assert [len(fields) for _, fields in raw_records(data)] == [5, 5, 0, 5]
    assert b"".join(raw for raw, _ in raw_records(data)) == data


def test_the_last_month_is_the_latest_bts_files_month(tmp_path):
    """Without a December file the month withheld is November; an earlier year's LCD file stays whole."""
    complete = tmp_path / "full" / "raw"
    write_raw(complete)
    os.remove(complete / "bts" / "bts_ontime_2014_12.csv")  # the last month is now November
    split = split_last_month(complete, tmp_path / "incremental" / "raw")
    assert split.month == "2014-11" and split.withheld == ["bts/bts_ontime_2014_11.csv"]
    assert "lcd/LCD_72502014734_2013.csv" not in split.truncated


def test_marts_compared_and_the_table_renders():
    reference = {"fct_flights": [10, "1"], "dim_airports": [3, "2"], "test_auc": 0.77}
    assert differing_marts(reference, dict(reference)) == []
    assert differing_marts(reference, {**reference, "fct_flights": [10, "9"]}) == ["fct_flights"]
    assert differing_marts(reference, {"dim_airports": [3, "2"], "test_auc": 0.77}) == ["fct_flights"]
    result = {"scale_factor": 30, "measured_at": "2026-11-28T01:00:00+00:00", "peak_rss_mib": 3072.0,
              "machine": {"cpu": "Intel(R) Xeon(R) Processor @ 2.50GHz", "cores": 2, "memory_gib": 23.5},
              "split": {"month": "2015-12", "flights_before": 9_300_000, "flights_added": 261_695},
              "runs": {"full_flow_before": {"wall_seconds": 700.0}, "new_month": {"wall_seconds": 55.5},
                       "nothing_changed": {"wall_seconds": 8.25}, "full_flow_after": {"wall_seconds": 744.1}},
              "marts_identical": False, "differing_marts": ["fct_flights", "ml_features"]}
    row = increment_table([result]).splitlines()[2]
    assert row.startswith("| SF=30 (2015-12 added) | 9,300,000 | 261,695 | 700.0 | 55.5 | 8.2 | 744.1 | 3.00 | "
                          "no: fct_flights, ml_features | Intel Xeon @ 2.50GHz, 2 cores, 23.5 GiB |")


def test_a_failed_run_keeps_the_runs_measured_before_it(tmp_path, monkeypatch):
    """An SF=30 scenario is two quiet hours: when its last run fails, the three runs before it are still written,
    as a result of its own that the BENCHMARKS.md tables do not read. The raw files and their split are real; the
    flow is stood in for (measured runs are what this is about, not the flow)."""
    import bench.generate
    import bench.increment as increment
    import bench.run
    from bench.tables import latest_results

    monkeypatch.setattr(bench.run, "WORK_DIR", tmp_path / "work")
    monkeypatch.setattr(bench.run, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr("bench.tables.RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(bench.generate, "generate", lambda sf, raw: (write_raw(raw), {
        "flight_rows": 7, "flight_files": 3, "weather_rows": 0, "weather_files": 0})[1])
    calls = []

    def flow_run(env, what):
        calls.append(what)
        if len(calls) == 4:
            raise increment.FlowRunFailed(what, 1, {"wall_seconds": 9.0, "stages": [{"name": "prep", "seconds": 9}]},
                                          "Out of Memory Error")
        return {"wall_seconds": float(len(calls)), "peak_rss_mib": 100.0}

    monkeypatch.setattr(increment, "flow_run", flow_run)
    monkeypatch.setattr(increment, "mart_fingerprint", lambda env: {})
    result = increment.run_increment(1, keep=True)
    assert result["scenario"] == "increment-failed" and result["failed_run"] == "full_flow_after"
    assert [run["wall_seconds"] for run in result["runs"].values()] == [1.0, 2.0, 3.0, 9.0]
    assert result["runs"]["full_flow_after"]["failed"] == "exit 1"
    assert "Out of Memory Error" in result["runs"]["full_flow_after"]["output_tail"]
    path = bench.run.write_result(result)
    assert path.name.startswith("sf1-increment-failed-")
    assert latest_results("increment") == []  # the tables show complete scenarios only
