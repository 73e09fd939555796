"""The Spark job end to end on small LCD files: Hive registration, idempotent reruns, crash safety; every
record accounted for at its physical line; paths taken literally; cut-down files; what ships to EMR."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from flightdelay.warehouse.lake_exposure import committed_lake_table
from spark_prep import lake_schema, lake_snapshots, lake_tables
from spark_prep import weather_job as job
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.engine  # runs the Spark job

HEADER = ('"STATION","DATE","REPORT_TYPE","HourlyDryBulbTemperature","HourlyWindSpeed",'
          '"HourlyPrecipitation","HourlyVisibility"\n')


def write_lcd(folder: Path, rows: list[tuple[str, str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f'"74486094789","{date}","{kind}","{temp}","5","0.00","10.00"\n' for date, kind, temp in rows]
    (folder / "LCD_74486094789_2013.csv").write_text(HEADER + "".join(lines))


def job_settings(tmp_path: Path, raw: Path, run_id: str = "run1") -> job.JobSettings:
    """Settings over `raw` (a file or folder) with JFK as the one station; every test gets its own lake folder
    and database but shares the session's metastore (Derby allows one)."""
    stations = tmp_path / "stations.csv"
    stations.write_text("airport_code,station_id,usaf_id,wban_id,station_name,lst_utc_offset_hours\n"
                        "JFK,74486094789,744860,94789,JFK,-5\n")
    return job.JobSettings(
        raw_weather_path=job.to_uri(str(raw)),
        stations_path=job.to_uri(str(stations)),
        lake_uri=job.to_uri(str(tmp_path / "lake")),
        database=f"weather_{tmp_path.name[-12:].replace('-', '_').lower()}",
        run_id=run_id,
    )


@pytest.fixture()
def settings(tmp_path, spark_lake):
    raw = tmp_path / "lcd"
    write_lcd(raw, [
        ("2013-01-31T22:51:00", "FM-15", "30"),
        ("2013-01-31T23:51:00", "FM-15", "31"),
        ("2013-02-01T00:51:00", "FM-15", "32"),
        ("2013-02-01T00:51:00", "FM-15", "32"),  # exact duplicate report
        ("2013-02-01T23:59:00", "SOD", ""),
    ])
    return job_settings(tmp_path, raw)


def table_rows(spark, settings, table="hourly_observations"):
    spark.catalog.clearCache()
    spark.sql(f"REFRESH TABLE {settings.database}.{table}")
    return spark.sql(f"select * from {settings.database}.{table}").collect()


def test_job_registers_partitioned_external_tables(spark, settings):
    result = job.run(spark, settings)
    assert (result.rows_read, result.rows_other_report_types, result.duplicates_resolved) == (5, 1, 1)
    assert result.hourly_rows == 3 and result.hourly_partitions == 2
    table = spark.sql(f"describe formatted {settings.database}.hourly_observations").collect()
    info = {r.col_name.strip(): (r.data_type or "").strip() for r in table}
    assert info["Type"] == "EXTERNAL"
    assert info["Location"].endswith("/weather/hourly_observations/run-run1")  # the committed copy
    partitions = [r[0] for r in spark.sql(f"show partitions {settings.database}.hourly_observations").collect()]
    assert partitions == ["station_id=74486094789/observation_month=2013-01",
                          "station_id=74486094789/observation_month=2013-02"]
    assert len(table_rows(spark, settings)) == 3
    assert len(table_rows(spark, settings, "daily_summaries")) == 2
    # no daily files given: their table is committed and registered all the same, with no rows, so every reader
    # of the lake (dbt's source, the PostgreSQL copy, Glue and Spectrum) finds it
    weather = Path(settings.weather_uri.removeprefix("file:"))
    assert lake_snapshots.read_local(weather).folder("cdo_daily_summaries") == "cdo_daily_summaries/run-run1"
    assert table_rows(spark, settings, "cdo_daily_summaries") == []
    assert [f.name for f in spark.table(f"{settings.database}.cdo_daily_summaries").schema.fields] == [
        *lake_schema.column_names("cdo_daily_summaries"), "station_id", "observation_month"]
    assert committed_lake_table(weather.parent, "cdo_daily_summaries").column_names == [
        *lake_schema.column_names("cdo_daily_summaries"), "station_id", "observation_month"]


def test_rerun_replaces_partitions_without_duplicates(spark, settings):
    job.run(spark, settings)
    job.run(spark, job.JobSettings(**{**settings.__dict__, "run_id": "run2"}))
    rows = table_rows(spark, settings)
    assert len(rows) == 3
    weather = Path(settings.weather_uri.removeprefix("file:"))
    committed = weather / lake_snapshots.read_local(weather).folder("hourly_observations")
    assert committed.name == "run-run2"
    assert len(list(committed.rglob("*.parquet"))) == 2  # one file per partition
    # the previous run's copy stays one more run, for a reader that resolved the pointer just before the commit
    assert sorted(p.name for p in (weather / "hourly_observations").iterdir()) == ["run-run1", "run-run2"]


def test_a_lake_in_the_layout_before_snapshots_is_tidied_after_the_first_commit(spark, settings):
    weather = Path(settings.weather_uri.removeprefix("file:"))
    legacy_partition = weather / "hourly_observations" / "station_id=74486094789" / "observation_month=2013-01"
    legacy_staging = weather / "_staging" / "hourly_observations" / "killed" / legacy_partition.relative_to(
        weather / "hourly_observations")
    for folder in (legacy_partition, legacy_staging):
        folder.mkdir(parents=True)
        (folder / "part-00000.parquet").write_bytes(b"truncated")
    notes = weather / "hourly_observations" / "NOTES.md"  # a user's own file: not the job's to delete
    notes.write_text("where this data came from")
    result = job.run(spark, settings)
    assert "deleted _staging: no committed run uses it" in result.recovered
    assert not legacy_partition.parent.exists() and not (weather / "_staging").exists()
    assert notes.read_text() == "where this data came from"
    assert len(table_rows(spark, settings)) == 3


def test_a_killed_run_is_invisible_to_readers_and_tidied_by_the_next(spark, settings):
    """Runs commit by replacing the lake's pointer: a run killed after staging its tables (here: left as a
    folder nobody points at) changes nothing readers see, and the next run deletes it."""
    job.run(spark, settings)
    weather = Path(settings.weather_uri.removeprefix("file:"))
    committed = lake_snapshots.read_local(weather)
    assert set(committed.tables) == {*lake_schema.TABLES, "_quarantine", job.OBSERVATIONS}
    killed = weather / "hourly_observations" / "run-killed"
    shutil.copytree(weather / committed.folder("hourly_observations"), killed)
    for partition in killed.glob("*/*/*.parquet"):
        partition.write_bytes(b"half-written")  # what readers would choke on if they listed the folder
    assert lake_snapshots.read_local(weather) == committed
    assert len(table_rows(spark, settings)) == 3

    job.run(spark, dataclasses.replace(settings, run_id="run2"))
    after = lake_snapshots.read_local(weather)
    assert (after.run_id, after.previous_run_id) == ("run2", "run1")
    assert not killed.exists()
    assert sorted(p.name for p in (weather / "hourly_observations").iterdir()) == ["run-run1", "run-run2"]


def test_a_run_id_the_lake_holds_is_refused(spark, settings):
    job.run(spark, settings)
    with pytest.raises(ValueError, match="run id 'run1' is one the lake still holds"):
        job.run(spark, settings)


def test_every_row_is_loaded_or_quarantined_with_a_reason(spark, settings):
    result = job.run(spark, settings)
    assert result.files == [{"source_file": "LCD_74486094789_2013.csv", "rows_read": 5, "rows_loaded": 3,
                             "rows_quarantined": 2, "blank_lines": 0}]
    spark.catalog.clearCache()
    quarantine = spark.read.parquet(lake_tables.committed_uri(spark, settings, "_quarantine")).orderBy(
        "source_line").collect()
    assert [(r.source_line, r.raw_date, r.quarantine_reason) for r in quarantine] == [
        (5, "2013-02-01T00:51:00", "duplicate: STATION '74486094789' DATE '2013-02-01T00:51:00' (2013-02-01 05:51 "
                                   "UTC) is also at LCD_74486094789_2013.csv line 4, which is loaded (at least as "
                                   "complete)"),
        (6, "2013-02-01T23:59:00", "REPORT_TYPE: 'SOD' is not an hourly report (FM-15 or FM-16)"),
    ]


def quarantine_rows(spark, settings) -> list[tuple]:
    spark.catalog.clearCache()
    rows = spark.read.parquet(lake_tables.committed_uri(spark, settings, "_quarantine")).orderBy(
        "source_file", "source_line").collect()
    return [(r.source_file, r.source_line, r.quarantine_kind, r.quarantine_reason) for r in rows]


def test_every_record_is_loaded_or_quarantined_at_its_physical_line(spark, tmp_path):
    raw = tmp_path / "lcd"
    raw.mkdir()
    header = b'"STATION","DATE","NAME","REPORT_TYPE","HourlyDryBulbTemperature","HourlyVisibility"\n'
    lines = [
        b'"74486094789","2013-01-31T20:51:00","JFK","FM-15","30","10.00"\n',     # 2
        b"\n",                                                                  # 3: blank
        b'"74486094789","2013-01-31T21:51:00","JFK","FM-15","31","10.00"\r\n',   # 4: CRLF among LF
        b'"74486094789","2013-01-31T22:51:00","JFK\nINTL","FM-15","32",""\n',   # 5-6: a quoted line break
        b'"74486094789","2013-01-31T23:51:00","JFK INTL,FM-15,33,10.00\n',       # 7: unterminated quote
        b'"74486094789","2013-02-01T00:51:00","JFK","FM-15","3\xff4","9.00"\n', # 8: not UTF-8, used field
        b'"74486094789","2013-02-01T01:51:00","J\xffK","FM-15","35","9.00"\n',  # 9: not UTF-8, unused field
        b"   \n",                                                               # 10: blank
        b'"74486094789","2013-02-01T02:51:00","JFK","FM-15","36","9.00","x"\n',  # 11: an extra field
        b'"74486094789","2013-02-01T23:59:00","JFK","SOD","",""\n',             # 12: a daily summary
    ]
    (raw / "lcd.csv").write_bytes(header + b"".join(lines))
    settings = job_settings(tmp_path, raw)

    result = job.run(spark, settings)

    # read: 8 records (one of them on two lines) + 2 blank lines
    assert result.files == [{"source_file": "lcd.csv", "rows_read": 10, "rows_loaded": 4, "rows_quarantined": 4,
                             "blank_lines": 2}]
    spark.catalog.clearCache()
    spark.sql(f"REFRESH TABLE {settings.database}.hourly_observations")
    loaded = spark.sql(f"select source_file, source_line, temp_f from {settings.database}.hourly_observations "
                       "order by source_line").collect()
    assert [(r.source_file, r.source_line, r.temp_f) for r in loaded] == [
        ("lcd.csv", 2, 30.0), ("lcd.csv", 4, 31.0), ("lcd.csv", 5, 32.0), ("lcd.csv", 9, 35.0)]
    quarantined = quarantine_rows(spark, settings)
    assert [row[:3] for row in quarantined] == [
        ("lcd.csv", 7, "unreadable"), ("lcd.csv", 8, "unreadable"), ("lcd.csv", 11, "unreadable"),
        ("lcd.csv", 12, "other_report_type")]
    reasons = [row[3] for row in quarantined]
    assert reasons[0].startswith("NAME: ") and "JFK INTL" in reasons[0]  # where the stray quote opened
    assert reasons[1] == "HourlyDryBulbTemperature: not UTF-8 text: '3\\xff4'"
    assert reasons[2].startswith("HourlyVisibility: ") and "'x'" in reasons[2]  # followed by an extra value
    assert reasons[3] == "REPORT_TYPE: 'SOD' is not an hourly report (FM-15 or FM-16)"


def test_paths_are_taken_literally_and_file_names_round_trip(spark, tmp_path):
    raw = tmp_path / "lcd"
    raw.mkdir()
    header = '"STATION","DATE","REPORT_TYPE","HourlyDryBulbTemperature"\n'
    names = {  # as a glob, the first name matches the second (`[2013]` is one of 2, 0, 1, 3; `*` is anything)
        "lcd jfk [2013] *.csv": ["2013-01-01T00:51:00", "2013-01-01T01:51:00"],
        "lcd jfk 2 other.csv": ["2013-01-02T00:51:00"],
        "a,b {c} 100% 'q\"é?.csv": ["2013-01-03T00:51:00"],
    }
    for name, dates in names.items():
        (raw / name).write_text(header + "".join(f'"74486094789","{d}","FM-15","30"\n' for d in dates))
    (raw / "_notes.csv").write_text("not LCD")
    (raw / "old").mkdir()

    one = job.run(spark, job_settings(tmp_path, raw / "lcd jfk [2013] *.csv"))
    assert [(f["source_file"], f["rows_read"], f["rows_loaded"]) for f in one.files] == [
        ("lcd jfk [2013] *.csv", 2, 2)]

    every = job.run(spark, job_settings(tmp_path, raw, run_id="run2"))
    assert sorted(f["source_file"] for f in every.files) == sorted(names) == sorted(
        p.name for p in raw.glob("*.csv") if not p.name.startswith("_"))
    assert [f["rows_loaded"] for f in sorted(every.files, key=lambda f: f["source_file"])] == [1, 1, 2]
    assert [entry.split(" ")[0] for entry in every.files_left_out] == ["_notes.csv", "old/"]


def test_cut_down_files_without_report_type_are_loaded(spark, tmp_path):
    from flightdelay.raw.ingest import detect

    raw = tmp_path / "lcd"
    raw.mkdir()
    (raw / "cut.csv").write_text(
        "STATION,DATE,HourlyDryBulbTemperature,HourlyWindSpeed\n"
        "74486094789,2013-01-01T00:12:00,29,5\n"   # a special report: 39 minutes from :51
        "74486094789,2013-01-01T00:51:00,30,6\n"
        "74486094789,2013-01-01T01:51:00,31,7\n")
    assert detect(raw / "cut.csv").format == "lcd_hourly"
    settings = job_settings(tmp_path, raw)

    result = job.run(spark, settings)

    assert (result.hourly_rows, result.observations_not_routine) == (2, 1)
    [(_, line, kind, reason)] = quarantine_rows(spark, settings)
    assert (line, kind) == (2, "not_routine")
    assert reason.startswith("REPORT_TYPE absent (DATE '2013-01-01T00:12:00'): not used") and "line 3" in reason


def test_a_file_that_is_not_lcd_stops_the_job_naming_it(spark, tmp_path):
    raw = tmp_path / "lcd"
    write_lcd(raw, [("2013-01-31T22:51:00", "FM-15", "30")])
    (raw / "truncated download.csv").write_bytes(b"")
    settings = job_settings(tmp_path, raw)
    with pytest.raises(job.InputError, match=r"truncated download\.csv: .*empty.*fix or move these files"):
        job.run(spark, settings)
    assert not Path(settings.weather_uri.removeprefix("file:")).exists()  # nothing written


def test_what_ships_to_emr_is_all_the_job_imports(tmp_path):
    from flightdelay.aws.lake import spark_submit_args
    from flightdelay.aws.settings import AwsSettings
    from flightdelay.aws.staging import code_uploads

    aws = AwsSettings(bucket="bucket", cluster_id="j-1", role_arn="arn:aws:iam::123456789012:role/r")
    uploads = {call.request["Key"]: call.request.get("Body") or Path(call.request["Filename"])
               for call in code_uploads(aws, PROJECT_ROOT)}
    args = spark_submit_args(aws)
    position = args.index("--py-files")
    shipped = [uri.removeprefix("s3://bucket/") for uri in [*args[position + 1].split(","), args[position + 2]]]
    assert set(shipped) <= set(uploads)
    # An EMR node: the entry point and the --py-files on the path, not the checkout.
    node = tmp_path / "node"
    node.mkdir()
    for key in shipped:
        source = uploads[key]
        (node / Path(key).name).write_bytes(source if isinstance(source, bytes) else source.read_bytes())
    script = f"""
import importlib.util, runpy, sys
sys.path.append({sysconfig.get_paths()["purelib"]!r})  # pyspark, without the checkout's editable install
assert importlib.util.find_spec("spark_prep") is None, "the checkout is on the path"
sys.path[:0] = {[str(node / Path(key).name) for key in shipped if key.endswith(".zip")]!r}
sys.argv = ["weather_job.py", "--help"]
try:
    runpy.run_path("weather_job.py", run_name="__main__")
except SystemExit as done:
    assert done.code == 0, done.code
import spark_prep.lcd_hourly, spark_prep.lcd_quarantine, spark_prep.lcd_records, raw_contracts.records
print(spark_prep.lcd_records.__file__)
print(raw_contracts.records.__file__)
"""
    done = subprocess.run([sys.executable, "-S", "-c", script], cwd=node, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--raw-weather" in done.stdout
    assert done.stdout.strip().splitlines()[-2:] == [str(node / "spark_prep.zip" / "spark_prep" / "lcd_records.py"),
                                                     str(node / "raw_contracts.zip" / "raw_contracts" / "records.py")]


def test_the_pipeline_records_the_files_by_their_exact_names_with_their_blank_lines(tmp_path):
    import duckdb

    from flightdelay.flow.pipeline import run_weather_job
    from flightdelay.settings import Settings

    settings = Settings(PROJECT_ROOT, tmp_path / "raw", tmp_path / "lake", tmp_path / "warehouse" / "w.duckdb",
                        tmp_path / "artifacts")
    settings.weather_raw_dir.mkdir(parents=True)
    (settings.weather_raw_dir / "lcd jfk [2013] *.csv").write_text(
        '"STATION","DATE","REPORT_TYPE","HourlyDryBulbTemperature"\n'
        '"74486094789","2013-01-01T00:51:00","FM-15","30"\n'
        "\n"
        '"74486094789","2013-01-01T01:51:00","FM-15","31"\n')

    result = run_weather_job(settings)  # spark-submit's way: `python -m spark_prep.weather_job` in its own process

    assert result["_per_file"] == ["lcd jfk [2013] *.csv: read 3 = loaded 2 + quarantined 0 + blank 1"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select source_kind, source_file, rows_read, rows_loaded, rows_quarantined, blank_lines "
                           "from raw.data_quality_summary").fetchall() == [
            ("weather", "lcd jfk [2013] *.csv", 3, 2, 0, 1)]


def test_a_lake_path_with_spaces_and_quotes_starts_spark_and_its_metastore(tmp_path):
    """The Derby metastore's home once went to the driver JVM as a command-line option, which Spark splits at
    spaces: a checkout under "My Projects" stopped `prep` before it started. It is a system property now.

    The local driver's own JVM options (weather_job.LOCAL_DRIVER_JAVA_OPTIONS) reach the JVM the session starts,
    beside the user's own driver options from spark-defaults.conf, which stay; a cluster's driver is left alone."""
    lake = tmp_path / "My Projects" / "it's \"q\"" / "lake"
    conf = tmp_path / "spark-conf"
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text("spark.driver.extraJavaOptions -Dflightdelay.test.marker=kept\n")
    script = tmp_path / "start.py"
    script.write_text(
        "import sys\n"
        "from spark_prep.weather_job import JobSettings, build_spark, to_uri\n"
        "spark = build_spark(JobSettings(raw_weather_path='', stations_path='', lake_uri=to_uri(sys.argv[1]),\n"
        "                                master='local[1]'))\n"
        "spark.sql('CREATE DATABASE IF NOT EXISTS spaced')\n"
        "runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()\n"
        "print(list(runtime.getInputArguments()))\n"
        "spark.stop()\n")
    done = subprocess.run([sys.executable, str(script), str(lake)], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "SPARK_CONF_DIR": str(conf)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (lake / "_metastore" / "derby.log").exists() and (lake / "_metastore" / "metastore_db").is_dir()
    assert job.LOCAL_DRIVER_JAVA_OPTIONS in done.stdout and "-Dflightdelay.test.marker=kept" in done.stdout


def test_the_local_jvm_options_are_added_to_the_users_and_never_to_a_cluster():
    local = job.JobSettings(raw_weather_path="", stations_path="", lake_uri="file:/lake", master="local[2]")
    assert job.submit_options(local, {}) == job.LOCAL_DRIVER_JAVA_OPTIONS
    assert job.submit_options(local, {"SPARK_SUBMIT_OPTS": "-Dmine=1"}) == f"-Dmine=1 {job.LOCAL_DRIVER_JAVA_OPTIONS}"
    given = f"-Dmine=1 {job.LOCAL_DRIVER_JAVA_OPTIONS}"  # a second session in one process adds nothing
    assert job.submit_options(local, {"SPARK_SUBMIT_OPTS": given}) == given
    for master in ("yarn", None):
        on_a_cluster = job.JobSettings(raw_weather_path="", stations_path="", lake_uri="s3://lake", master=master)
        assert job.submit_options(on_a_cluster, {"SPARK_SUBMIT_OPTS": "-Dmine=1"}) is None
