"""The weather job builds on the committed lake snapshot: nothing changed, no Spark at all; files added, changed
or removed, only their partitions recomputed, and the lake is then row for row what a full run over the same
files writes; `changed_months` names every month whose rows differ from the previous snapshot."""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import tempfile
from pathlib import Path

import duckdb
import pytest

from flightdelay.flow import raw_steps
from flightdelay.settings import Settings
from spark_prep import lake_snapshots
from spark_prep import weather_job as job
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.engine  # runs the Spark job

STATIONS = PROJECT_ROOT / "seeds" / "airport_weather_stations.csv"
JFK = "LCD_74486094789_2013.csv"
OTHER_STATION = "72219013874"  # ATL: in the stations seed, not in the sample's LCD files
# a cut-down file (no REPORT_TYPE) whose name is a glob pattern: a JFK observation competing with the FM-15 of
# its hour once December arrives, and the only rows of another station (two in one hour: one is not chosen)
EXTRA = "cut down [extra] *.csv"
EXTRA_TEXT = ('"STATION","DATE","HourlyDryBulbTemperature"\n'
              '"74486094789","2013-12-05T10:20:00","41"\n'
              f'"{OTHER_STATION}","2013-03-10T10:51:00","55"\n'
              f'"{OTHER_STATION}","2013-03-10T10:40:00","56"\n')


@functools.cache
def sample_lcd() -> Path:
    """The bundled sample's LCD files, written once per session (a fresh clone has no data/raw)."""
    from flightdelay.raw.sample import write_sample

    folder = Path(tempfile.mkdtemp(prefix="sample_lcd_"))
    write_sample(folder, folder / "seeds", months=[1])
    return folder / "lcd"


def slice_of_sample(name: str, before: str = "9999") -> str:
    """A sample LCD file cut to March, November and December 2013, only the records dated before `before`;
    JFK's also gets a special report, a daily summary and a date that does not parse."""
    rows = list(csv.reader(io.StringIO((sample_lcd() / name).read_text(encoding="utf-8"), newline="")))
    header, records = rows[0], [r for r in rows[1:] if r[1][:7] in ("2013-03", "2013-11", "2013-12")]
    if name == JFK:
        template = records[0]
        for date, kind in (("2013-11-20T10:15:00", "FM-16"), ("2013-11-31T99:00:00", "FM-15"),
                           ("2013-12-31T23:59:00", "SOD")):
            extra = list(template)
            extra[1], extra[header.index("REPORT_TYPE")] = date, kind
            records.append(extra)
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(
        [header, *[r for r in records if r[1] < before]])
    return out.getvalue()


def write_raw(folder: Path, before: str = "9999", extra: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        path.unlink()
    for name in sorted(p.name for p in sample_lcd().glob("*.csv")):
        (folder / name).write_text(slice_of_sample(name, before), encoding="utf-8")
    if extra:
        (folder / EXTRA).write_text(EXTRA_TEXT, encoding="utf-8")
    return folder


def settings_for(tmp_path: Path, raw: Path, lake: str, run_id: str) -> job.JobSettings:
    return job.JobSettings(raw_weather_path=job.to_uri(str(raw)), stations_path=job.to_uri(str(STATIONS)),
                           lake_uri=job.to_uri(str(tmp_path / lake)),
                           database=f"inc_{lake}_{tmp_path.name[-10:].replace('-', '_').lower()}", run_id=run_id)


def lake_rows(lake: Path, tables: tuple[str, ...] = ("hourly_observations", "daily_summaries")
              ) -> dict[str, list[tuple]]:
    """Every committed row of the tables and the quarantine, in one order."""
    weather = lake / "weather"
    out = {}
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        for table in tables:
            files = lake_snapshots.parquet_files(weather, table)
            out[table] = con.execute("select * from read_parquet(?, hive_partitioning = true, "
                                     "hive_types_autocast = false) order by all", [files]).fetchall()
        quarantine = lake_snapshots.literal_glob(str(weather / lake_snapshots.read_local(weather).folder(
            lake_snapshots.QUARANTINE))) + "/*.parquet"
        out["quarantine"] = con.execute("select * from read_parquet(?) order by all", [quarantine]).fetchall()
    return out


def test_an_unchanged_raw_zone_does_not_start_spark(spark, tmp_path, monkeypatch):
    settings = Settings(PROJECT_ROOT, tmp_path / "raw", tmp_path / "lake", tmp_path / "w.duckdb", tmp_path / "art")
    write_raw(settings.weather_raw_dir, before="2013-03-05")
    first = job.run(spark, settings_for(tmp_path, settings.weather_raw_dir, "lake", "first"))
    pointer = (settings.lake_dir / "weather" / lake_snapshots.POINTER).read_text()

    def no_spark(command, *args, **kwargs):
        raise AssertionError(f"the weather job was started: {command}")

    monkeypatch.setattr(raw_steps, "run_with_progress", no_spark)
    result = raw_steps.run_weather_job(settings)
    assert result["skipped"] == "weather job skipped: 4 raw files unchanged since the committed lake snapshot first"
    assert result["changed_months"] == [] and result["hourly_rows"] == first.hourly_rows
    assert result["files"] == first.files and result["_totals"]["read"] == first.rows_read
    assert (settings.lake_dir / "weather" / lake_snapshots.POINTER).read_text() == pointer
    assert not settings.warehouse_path.exists()  # nothing recorded again

    started = []

    def record(command, *args, **kwargs):
        started.append(command)
        raise RuntimeError("stop here")

    monkeypatch.setattr(raw_steps, "run_with_progress", record)
    with pytest.raises(RuntimeError, match="stop here"):
        raw_steps.run_weather_job(settings, force=True)  # forced: the job runs, recomputing everything
    assert started and started[0][-1] == "--full"
    started.clear()
    # a run killed after its commit (not FINISHED) or before it (its folders left): the job runs, to finish it
    weather = settings.lake_dir / "weather"
    finished = (weather / lake_snapshots.FINISHED).read_text()
    (weather / lake_snapshots.FINISHED).write_text(json.dumps({"run_id": "killedafteritscommit"}))
    with pytest.raises(RuntimeError, match="stop here"):
        raw_steps.run_weather_job(settings)
    (weather / lake_snapshots.FINISHED).write_text(finished)
    (weather / "hourly_observations" / "run-killedbeforeitscommit").mkdir()
    with pytest.raises(RuntimeError, match="stop here"):
        raw_steps.run_weather_job(settings)
    (weather / "hourly_observations" / "run-killedbeforeitscommit").rmdir()
    assert raw_steps.run_weather_job(settings)["mode"] == "skipped"
    assert len(started) == 2 and all("--full" not in command for command in started)
    started.clear()
    (settings.weather_raw_dir / EXTRA).write_text(EXTRA_TEXT.replace('"55"', '"57"'), encoding="utf-8")
    with pytest.raises(RuntimeError, match="stop here"):
        raw_steps.run_weather_job(settings)  # a changed file: the job runs, incrementally
    assert started and "--full" not in started[0]


def test_new_months_and_removed_files_give_the_lake_a_full_run_gives(spark, tmp_path):
    raw = tmp_path / "raw"
    # the lake as of November 30th, then the files of the whole year (a re-delivery: every file changed)
    write_raw(raw, before="2013-12-01")
    first = job.run(spark, settings_for(tmp_path, raw, "lake", "nov"))
    assert first.mode == "full" and first.changed_months == ["2013-03", "2013-11", "2013-12"]  # EXTRA's JFK row
    write_raw(raw)
    incremental = job.run(spark, settings_for(tmp_path, raw, "lake", "dec"))
    full = job.run(spark, settings_for(tmp_path, raw, "fresh", "full"))

    assert incremental.mode == "incremental" and full.mode == "full"
    assert incremental.files_processed == sorted(p.name for p in sample_lcd().glob("*.csv"))  # not the unchanged EXTRA
    # EWR's and LGA's files grew by December; JFK's too, but its special reports at the end moved behind it
    assert incremental.files_appended == sorted(p.name for p in sample_lcd().glob("*.csv") if p.name != JFK)
    assert "2013-12" in incremental.changed_months and "2013-03" not in incremental.changed_months
    assert incremental.changed_months == ["2013-12"]
    expected = lake_rows(tmp_path / "fresh")
    assert lake_rows(tmp_path / "lake") == expected
    quarantined = {(r[0], r[5]) for r in expected["quarantine"]}
    assert {(EXTRA, "not_routine"), (JFK, "special_superseded"), (JFK, "rejected"),
            (JFK, "other_report_type")} <= quarantined  # every kind of partition-dependent row took part
    assert (EXTRA, "not_routine") in quarantined and incremental.files == full.files
    extra_counts = next(f for f in incremental.files if f["source_file"] == EXTRA)
    assert (extra_counts["rows_loaded"], extra_counts["rows_quarantined"]) == (1, 2)  # its JFK row lost to FM-15
    assert EXTRA in incremental.files_recounted
    for field in ("rows_read", "rows_quarantined", "hourly_rows", "daily_rows", "duplicates_resolved",
                  "special_reports_superseded", "observations_not_routine", "rows_rejected", "hourly_partitions"):
        assert getattr(incremental, field) == getattr(full, field), field
    weather = tmp_path / "lake" / "weather"
    snapshot = lake_snapshots.read_local(weather)
    fresh = lake_snapshots.read_local(tmp_path / "fresh" / "weather")
    assert snapshot.partitions["hourly_observations"] == fresh.partitions["hourly_observations"]
    assert snapshot.partitions["daily_summaries"] == fresh.partitions["daily_summaries"]

    # removing a file removes its rows (and only its months change)
    (raw / EXTRA).unlink()
    removed = job.run(spark, settings_for(tmp_path, raw, "lake", "noextra"))
    again = job.run(spark, dataclasses.replace(settings_for(tmp_path, raw, "fresh", "noextra"), full=True))
    assert removed.mode == "incremental" and removed.files_processed == [] and removed.files_removed == [EXTRA]
    assert lake_rows(tmp_path / "lake") == lake_rows(tmp_path / "fresh")
    rows = lake_rows(tmp_path / "lake")
    assert not [r for table in rows.values() for r in table if EXTRA in r]
    assert removed.changed_months == ["2013-03"]  # ATL's March partition is gone; JFK's December is as before
    assert again.changed_months == ["2013-03"]  # a full run compares with the previous snapshot too
    assert removed.rows_read == again.rows_read and EXTRA not in {f["source_file"] for f in removed.files}


def test_files_that_grew_mid_month_give_the_lake_a_full_run_gives(spark, tmp_path):
    """Station files for the year as NCEI serves them, downloaded on December 15th and again at the year's end:
    each grew by lines after its committed bytes, so only those are parsed, and the month they share with the
    committed lines (an hour's reports compete, a day's summary spans both) comes out as a full run's."""
    raw = tmp_path / "raw"
    write_raw(raw, before="2013-12-15T12", extra=False)
    job.run(spark, settings_for(tmp_path, raw, "lake", "mid"))
    names = sorted(path.name for path in write_raw(raw, extra=False).iterdir())
    incremental = job.run(spark, settings_for(tmp_path, raw, "lake", "end"))
    full = job.run(spark, settings_for(tmp_path, raw, "fresh", "full"))

    assert incremental.files_appended == [name for name in names if name != JFK]
    assert incremental.changed_months == ["2013-12"] and incremental.files == full.files
    assert lake_rows(tmp_path / "lake") == lake_rows(tmp_path / "fresh")
    for field in ("rows_read", "rows_quarantined", "hourly_rows", "daily_rows", "duplicates_resolved",
                  "special_reports_superseded", "blank_lines"):
        assert getattr(incremental, field) == getattr(full, field), field


def test_the_manifest_follows_the_jobs_listing_rule_and_names_what_changed(tmp_path):
    from spark_prep import lake_inputs

    (tmp_path / "a [1].csv").write_text("x")
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / "sub").mkdir()
    files, left_out = lake_inputs.local_files(tmp_path)
    assert [p.name for p in files] == ["a [1].csv"] and len(left_out) == 2
    entry = lake_inputs.local_entry(files[0])
    assert entry == lake_inputs.entry("a [1].csv", b"x")
    changes = lake_inputs.diff([entry, {"file": "gone.csv", "size": 1, "sha256": "0"}],
                               [{**entry, "sha256": "1"}, {"file": "new.csv", "size": 1, "sha256": "2"}])
    assert (changes.added, changes.changed, changes.removed) == (["new.csv"], ["a [1].csv"], ["gone.csv"])
    assert changes.to_read == ["a [1].csv", "new.csv"] and changes.gone == ["a [1].csv", "gone.csv"]
    grown = changes.with_appended(["a [1].csv"])  # it only grew: read all the same, its committed rows stand
    assert grown.to_read == changes.to_read and grown.gone == ["gone.csv"] and grown.appended == ["a [1].csv"]
    with pytest.raises(ValueError, match="new.csv"):
        changes.with_appended(["new.csv"])  # a new file has no committed rows to build on
    assert lake_inputs.code_version(b"stations") != lake_inputs.code_version(b"other stations")


def test_the_code_version_is_the_same_from_the_zips_emr_gets_whatever_the_line_endings(tmp_path):
    """EMR imports the job's packages from the zips deploy ships (spark_prep.PY_PACKAGES), whose loader does not
    normalise line endings as a file's does: a checkout with CRLF files must still give the lake's code version,
    or every EMR run after a local one would rebuild the whole lake."""
    import subprocess
    import sys
    import zipfile

    from spark_prep import PY_PACKAGES, lake_inputs, package_zip

    paths = []
    for package in PY_PACKAGES:
        source = zipfile.ZipFile(io.BytesIO(package_zip(PROJECT_ROOT, package)))
        path = tmp_path / f"{package}.zip"
        with zipfile.ZipFile(path, "w") as crlf:
            for name in source.namelist():
                crlf.writestr(name, source.read(name).replace(b"\n", b"\r\n"))
        paths.append(str(path))
    script = ("import sys; sys.path[:0] = sys.argv[1:]; from spark_prep import lake_inputs; "
              "assert '.zip' in lake_inputs.__file__, lake_inputs.__file__; "
              "print(lake_inputs.code_version(b'stations'))")
    done = subprocess.run([sys.executable, "-I", "-c", script, *paths], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == lake_inputs.code_version(b"stations")


def test_the_pointer_keeps_the_manifest_and_digests_and_refuses_other_shapes():
    import json

    snapshot = lake_snapshots.Snapshot(
        "b", "", {"hourly_observations": "hourly_observations/run-b"}, "a",
        {"code_version": "c", "lcd": [{"file": "x.csv", "size": 1, "sha256": "s", "rows_read": 1}], "daily": None},
        {"hourly_observations": {"station_id=1/observation_month=2013-01": "1:5"}}, {"hourly_rows": 1})
    assert lake_snapshots.parse(snapshot.dumps(), "p") == snapshot
    broken = json.loads(snapshot.dumps())
    broken["inputs"]["lcd"][0]["size"] = "1"
    with pytest.raises(lake_snapshots.LakeNotCommitted):
        lake_snapshots.parse(json.dumps(broken), "p")


def test_daily_files_are_kept_while_unchanged_and_recomputed_whole_when_changed(spark, tmp_path):
    raw = write_raw(tmp_path / "raw", before="2013-03-03", extra=False)
    cdo = tmp_path / "cdo"
    cdo.mkdir()
    header = '"STATION","DATE","TMAX"\n'
    (cdo / "jfk daily.csv").write_text(header + '"USW00094789","2013-03-01","50"\n"USW00094789","2013-03-01","49"\n')

    def settings(lake: str, run_id: str) -> job.JobSettings:
        return dataclasses.replace(settings_for(tmp_path, raw, lake, run_id), raw_cdo_daily_path=job.to_uri(str(cdo)))

    tables = ("hourly_observations", "daily_summaries", "cdo_daily_summaries")
    first = job.run(spark, settings("lake", "d1"))
    before = lake_rows(tmp_path / "lake", tables)
    kept = job.run(spark, settings("lake", "d2"))  # nothing changed: the daily table and its quarantine stay
    assert first.cdo_files_processed and not kept.cdo_files_processed and kept.cdo_files == first.cdo_files
    assert lake_rows(tmp_path / "lake", tables) == before and any(r[4] == "CDO daily" for r in before["quarantine"])
    (cdo / "jfk daily.csv").write_text(header + '"USW00094789","2013-03-01","50"\n"USW00094789","2013-03-02","49"\n')
    changed = job.run(spark, settings("lake", "d3"))
    fresh = job.run(spark, settings("fresh", "d3"))
    assert changed.cdo_files_processed and changed.cdo_files == fresh.cdo_files
    assert lake_rows(tmp_path / "lake", tables) == lake_rows(tmp_path / "fresh", tables)
    assert changed.changed_months == ["2013-03"]  # the daily table's March: one more day
