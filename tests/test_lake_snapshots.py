"""The lake's pointer file: what it names ends up in file paths and SQL strings, so only its exact shape is read."""

from __future__ import annotations

import json

import pytest

from spark_prep import lake_snapshots
from spark_prep.lake_snapshots import LakeNotCommitted, Snapshot


def pointer(**changes) -> str:
    data = {"format": 1, "run_id": "abc123", "committed_at": "2026-11-27T00:00:00+00:00", "previous_run_id": "0ff1ce",
            "tables": {"hourly_observations": "hourly_observations/run-abc123",
                       "_quarantine": "_quarantine/run-abc123"}}
    return json.dumps({**data, **changes})


def test_a_pointer_round_trips():
    snapshot = lake_snapshots.parse(pointer(), "p")
    assert snapshot == lake_snapshots.parse(snapshot.dumps(), "p")
    assert snapshot.folder("hourly_observations") == "hourly_observations/run-abc123"
    assert snapshot.kept_folders() == {"hourly_observations/run-abc123", "_quarantine/run-abc123",
                                       "hourly_observations/run-0ff1ce", "_quarantine/run-0ff1ce"}


@pytest.mark.parametrize("changes", [
    {"tables": {"hourly_observations": "../../etc/run-abc123"}},
    {"tables": {"hourly_observations": "daily_summaries/run-abc123"}},  # a table must point into its own folder
    {"tables": {"hourly_observations": "hourly_observations/run-abc'); drop table x; --"}},
    {"tables": {"hourly_observations": "hourly_observations/run-ABC"}},
    {"tables": {"../x": "../x/run-abc123"}},
    {"tables": ["hourly_observations"]},
    {"run_id": "abc/../../"},
    {"run_id": 7},
    {"previous_run_id": "a b"},
    {"format": 2},
])
def test_anything_but_the_exact_shape_is_refused(changes):
    with pytest.raises(LakeNotCommitted, match="is not a lake pointer this version wrote"):
        lake_snapshots.parse(pointer(**changes), "lake/weather/_current.json")


@pytest.mark.parametrize("text", ["", "{", "null", "[]", '{"run_id": "a"}',
                                  pointer().replace('"format": 1,', '"format": 1, "format": 1,')])
def test_a_broken_pointer_is_refused_not_a_traceback(text):
    with pytest.raises(LakeNotCommitted):
        lake_snapshots.parse(text, "p")


def test_readers_are_told_to_run_prep(tmp_path):
    with pytest.raises(LakeNotCommitted, match=r"no committed `prep` run .*Run `flightdelay prep`"):
        lake_snapshots.table_dir(tmp_path, "hourly_observations")
    committed = Snapshot("abc123", "", {"daily_summaries": "daily_summaries/run-abc123"})
    (tmp_path / lake_snapshots.POINTER).write_text(committed.dumps())
    with pytest.raises(LakeNotCommitted, match="has committed the lake table 'hourly_observations'"):
        lake_snapshots.table_dir(tmp_path, "hourly_observations")
    assert lake_snapshots.table_dir(tmp_path, "daily_summaries") == tmp_path / "daily_summaries" / "run-abc123"


def test_run_ids_cannot_leave_their_folder():
    with pytest.raises(ValueError):
        lake_snapshots.run_folder("../x")


def test_the_parquet_glob_takes_the_lake_path_literally(tmp_path):
    import duckdb

    weather = tmp_path / "it's [1]*?" / "weather"
    neighbour = tmp_path / "it's 1xx" / "weather"
    for root, rows in ((weather, 1), (neighbour, 3)):
        folder = root / "hourly_observations" / "run-a" / "station_id=1" / "observation_month=2013-01"
        folder.mkdir(parents=True)
        target = str(folder / "p.parquet").replace("'", "''")
        with duckdb.connect() as con:
            con.execute(f"copy (select * from range({rows})) to '{target}'")
        committed = Snapshot("a", "", {"hourly_observations": "hourly_observations/run-a"})
        (root / lake_snapshots.POINTER).write_text(committed.dumps())
    with duckdb.connect() as con:
        files = lake_snapshots.parquet_files(weather, "hourly_observations")
        assert con.execute("select count(*) from read_parquet($f)", {"f": files}).fetchone()[0] == 1


def test_a_run_is_finished_only_with_its_own_small_marker_and_no_leftovers(tmp_path):
    """`prep` skips Spark only when the committed run also finished; a marker that is not a small file of ours
    (a folder, a FIFO, a link to a device, deep nesting) or names another run means "not finished", never an error."""
    import os

    snapshot = lake_snapshots.parse(pointer(), "p")
    weather = tmp_path / "weather"
    (weather / "hourly_observations" / "run-abc123").mkdir(parents=True)
    marker = weather / lake_snapshots.FINISHED
    assert not lake_snapshots.finished_local(weather, snapshot)  # no marker yet
    marker.write_text(json.dumps({"run_id": "abc123"}))
    assert lake_snapshots.finished_local(weather, snapshot)
    (weather / "hourly_observations" / "run-killed").mkdir()  # a run killed before its commit
    assert not lake_snapshots.finished_local(weather, snapshot)
    (weather / "hourly_observations" / "run-killed").rmdir()
    for text in (json.dumps({"run_id": "other"}), "[" * 3000, "not json", json.dumps(["abc123"]), " " * 5000):
        marker.write_text(text)
        assert not lake_snapshots.finished_local(weather, snapshot), text[:20]
    marker.unlink()
    for make in (lambda: marker.mkdir(), lambda: os.mkfifo(marker), lambda: marker.symlink_to("/dev/zero"),
                 lambda: marker.symlink_to(marker)):
        make()
        assert not lake_snapshots.finished_local(weather, snapshot)
        marker.rmdir() if marker.is_dir() and not marker.is_symlink() else marker.unlink()
