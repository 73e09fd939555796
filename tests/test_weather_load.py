"""The Spark job end to end on small LCD files: Hive registration, idempotent reruns, crash safety."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_prep import weather_job as job

HEADER = ('"STATION","DATE","REPORT_TYPE","HourlyDryBulbTemperature","HourlyWindSpeed",'
          '"HourlyPrecipitation","HourlyVisibility"\n')


def write_lcd(folder: Path, rows: list[tuple[str, str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f'"74486094789","{date}","{kind}","{temp}","5","0.00","10.00"\n' for date, kind, temp in rows]
    (folder / "LCD_74486094789_2013.csv").write_text(HEADER + "".join(lines))


@pytest.fixture()
def settings(tmp_path, spark_lake):
    stations = tmp_path / "stations.csv"
    stations.write_text("airport_code,station_id,usaf_id,wban_id,station_name,lst_utc_offset_hours\n"
                        "JFK,74486094789,744860,94789,JFK,-5\n")
    raw = tmp_path / "lcd"
    write_lcd(raw, [
        ("2013-01-31T22:51:00", "FM-15", "30"),
        ("2013-01-31T23:51:00", "FM-15", "31"),
        ("2013-02-01T00:51:00", "FM-15", "32"),
        ("2013-02-01T00:51:00", "FM-15", "32"),  # exact duplicate report
        ("2013-02-01T23:59:00", "SOD", ""),
    ])
    # Every test gets its own lake folder but shares the session's metastore (Derby allows one).
    lake = tmp_path / "lake"
    return job.JobSettings(
        raw_weather_path=job.to_uri(str(raw)),
        stations_path=job.to_uri(str(stations)),
        lake_uri=job.to_uri(str(lake)),
        database=f"weather_{tmp_path.name[-12:].replace('-', '_').lower()}",
        run_id="run1",
    )


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
    assert info["Location"].endswith("/weather/hourly_observations")
    partitions = [r[0] for r in spark.sql(f"show partitions {settings.database}.hourly_observations").collect()]
    assert partitions == ["station_id=74486094789/observation_month=2013-01",
                          "station_id=74486094789/observation_month=2013-02"]
    assert len(table_rows(spark, settings)) == 3
    assert len(table_rows(spark, settings, "daily_summaries")) == 2


def test_rerun_replaces_partitions_without_duplicates(spark, settings):
    job.run(spark, settings)
    job.run(spark, job.JobSettings(**{**settings.__dict__, "run_id": "run2"}))
    rows = table_rows(spark, settings)
    assert len(rows) == 3
    lake = Path(settings.lake_uri.removeprefix("file:"))
    files = list((lake / "weather" / "hourly_observations").rglob("*.parquet"))
    assert len(files) == 2  # one file per partition, the old ones gone
    assert not list((lake / "weather" / "_staging").rglob("*.parquet"))


def test_killed_write_leaves_previous_data_and_is_discarded(spark, settings):
    job.run(spark, settings)
    lake = Path(settings.lake_uri.removeprefix("file:"))
    # A run killed while Spark was writing: its staging copy has no ready marker.
    half = lake / "weather" / "_staging" / "hourly_observations" / "killed" / \
        "station_id=74486094789" / "observation_month=2013-01"
    half.mkdir(parents=True)
    (half / "part-00000.parquet").write_bytes(b"truncated")
    assert len(table_rows(spark, settings)) == 3  # readers never see the staging folder
    result = job.run(spark, job.JobSettings(**{**settings.__dict__, "run_id": "run2"}))
    assert "discarded incomplete hourly_observations run killed" in result.recovered
    assert not half.exists()
    assert len(table_rows(spark, settings)) == 3


def test_killed_swap_is_rolled_forward(spark, settings):
    job.run(spark, settings)
    lake = Path(settings.lake_uri.removeprefix("file:"))
    table = lake / "weather" / "hourly_observations"
    staged = lake / "weather" / "_staging" / "hourly_observations" / "killed"
    trash = lake / "weather" / "_staging" / "_trash" / "hourly_observations" / "killed"
    # Simulate a swap killed between its two renames: new copy ready, old partition in the trash.
    partition = "station_id=74486094789/observation_month=2013-01"
    (staged / partition).parent.mkdir(parents=True)
    import shutil
    shutil.copytree(table / partition, staged / partition)
    (staged / job.READY_MARKER).touch()
    (trash / partition).parent.mkdir(parents=True)
    (table / partition).rename(trash / partition)

    fs = job._FileSystem(spark, settings.hourly_table_uri)
    actions = job.recover_interrupted_runs(fs, settings.staging_uri, settings.hourly_table_uri)
    assert actions == ["rolled forward hourly_observations run killed"]
    assert (table / partition).exists() and not staged.exists() and not trash.exists()
    assert len(table_rows(spark, settings)) == 3


def test_every_row_is_loaded_or_quarantined_with_a_reason(spark, settings):
    result = job.run(spark, settings)
    assert result.files == [{"source_file": "LCD_74486094789_2013.csv", "rows_read": 5, "rows_loaded": 3,
                             "rows_quarantined": 2}]
    spark.catalog.clearCache()
    quarantine = spark.read.parquet(settings.quarantine_uri).orderBy("quarantine_reason").collect()
    assert [(r.raw_date, r.quarantine_reason) for r in quarantine] == [
        ("2013-02-01T23:59:00", "REPORT_TYPE: 'SOD' is not an hourly report (FM-15 or FM-16)"),
        ("2013-02-01T00:51:00", "duplicate: a more complete report exists for this station and time"),
    ]
