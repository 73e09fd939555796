"""The steps of the flow, each callable alone (CLI subcommands) or in order (`run`)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flightdelay.flow.progress import in_child_process, run_with_progress
from flightdelay.raw import reconciliation
from flightdelay.settings import Settings
from flightdelay.warehouse import wap

if TYPE_CHECKING:
    import duckdb


class StepFailed(RuntimeError):
    """A step ran and found a problem (failed tests, a failed gate); the message says what."""


@dataclass
class StepReport:
    name: str
    seconds: float
    facts: dict[str, object] = field(default_factory=dict)


def _say(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- steps


def step_sample(settings: Settings) -> dict[str, object]:
    from flightdelay.raw.sample import write_sample

    result = write_sample(settings.raw_dir, settings.seeds_dir)
    return {
        "flight files": len(result.flight_files),
        "flight rows": result.flight_rows,
        "weather files": len(result.weather_files),
        "weather rows": result.weather_rows,
        "files rewritten": result.files_written,
    }


def spark_environment() -> dict[str, str]:
    return {
        **os.environ,
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "PYSPARK_DRIVER_PYTHON": os.environ.get("PYSPARK_DRIVER_PYTHON", sys.executable),
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
    }


def run_weather_job(settings: Settings, allow_daily_only: bool = False) -> dict:
    """The Spark weather job over the whole raw weather zone, in its own process as spark-submit / an EMR
    step would run it; records per-file reconciliation and returns the job's result."""
    lcd_files = sorted(settings.weather_raw_dir.glob("*.csv"))
    daily_files = [*settings.cdo_daily_raw_dir.glob("*.csv"), *settings.ghcn_daily_raw_dir.glob("*.dly")]
    if not lcd_files and not (allow_daily_only and daily_files):
        raise StepFailed(f"no LCD weather files in {settings.weather_raw_dir}; run `flightdelay sample` first")
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
    with log_path.open("w") as log:
        completed = run_with_progress(command, "Spark weather job", env=spark_environment(),
                                      cwd=settings.project_root, stdout=subprocess.PIPE, stderr=log, text=True)
    if completed.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        raise StepFailed(f"Spark weather job failed (exit {completed.returncode}); log {log_path}:\n{tail}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])

    def counts(files: list[dict]) -> list[reconciliation.FileCounts]:
        return [reconciliation.FileCounts(f["source_file"], f["rows_read"], f["rows_loaded"], f["rows_quarantined"],
                                          f.get("blank_lines", 0)) for f in files]

    weather_files = counts(result["files"])
    result["_totals"] = reconciliation.record(settings.warehouse_path, "weather", weather_files)
    result["_per_file"] = reconciliation.per_file_lines(weather_files)
    if result.get("cdo_files"):
        result["_daily_totals"] = reconciliation.record(settings.warehouse_path, "weather_daily",
                                                        counts(result["cdo_files"]))
    return result


def step_prep(settings: Settings) -> dict[str, object]:
    """Run the Spark weather job in its own process, as spark-submit / an EMR step would."""
    result = run_weather_job(settings)
    facts: dict[str, object] = {}
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
    loads = load_flights(settings.warehouse_path, files, progress=sys.stderr.isatty(),
                         airport_id_map=settings.airport_id_map)
    # the loader recorded each file's reconciliation in the same transaction as its rows
    latest = {load.source_file: load for load in loads if not load.status.startswith("duplicate")}
    flight_files = [load.counts for load in latest.values()]
    totals = reconciliation.totals(flight_files)
    duplicates = [f"{load.source_file} ({load.status})" for load in loads if load.status.startswith("duplicate")]
    with settings.connect_warehouse(read_only=True) as con:
        total = con.execute("select count(*) from raw.flights").fetchone()[0]
        rejected = con.execute("select count(*) from raw.flights_rejected").fetchone()[0]
    return {
        "data quality": reconciliation.summary_line(totals, "BTS rows"),
        "per file": reconciliation.per_file_lines(flight_files),
        "files refused as redelivered duplicates": duplicates or 0,
        "files": len(loads),
        "files unchanged since last load": sum(load.status == "unchanged" for load in loads),
        "rows read": sum(load.rows_read for load in loads),
        "rows loaded": sum(load.rows_loaded for load in loads),
        "rows rejected": sum(load.rows_rejected for load in loads),
        "raw.flights rows": total,
        "raw.flights_rejected rows": rejected,
    }


AUDIT_SCHEMA = "marts_audit"
PUBLISHED_SCHEMA = "marts"


def dbt_invoke(settings: Settings, args: list[str], extra_vars: dict[str, object] | None = None) -> None:
    """Run dbt as users do, in its own process: dbt-duckdb keeps its DuckDB instance open for the
    life of a process, which would lock the warehouse file against the steps after it.

    Always with an explicit prod target: a plain `dbt build` goes to profiles.yml's `dev` target."""
    flow_targets = ("local", "postgres", "redshift")
    if settings.dbt_target not in flow_targets:
        raise StepFailed(f"FLIGHTDELAY_DBT_TARGET is {settings.dbt_target!r}: the flow builds and publishes the "
                         f"prod warehouse, on one of {', '.join(flow_targets)} (local is DuckDB, profiles.yml's "
                         "`prod`); dev targets are for dbt by hand")
    dbt = Path(sys.executable).with_name("dbt")
    command = [
        str(dbt) if dbt.exists() else "dbt",
        *args,
        "--project-dir", str(settings.project_root),
        "--profiles-dir", str(settings.project_root),
        "--target", settings.dbt_target,
        "--vars", json.dumps({"prediction_horizon_hours": settings.prediction_horizon_hours, **(extra_vars or {})}),
    ]
    completed = run_with_progress(command, f"dbt {args[0]}", env={**os.environ, **settings.dbt_env()},
                                  cwd=settings.project_root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
    if completed.returncode != 0:
        problems = [line for line in completed.stdout.splitlines()
                    if any(word in line for word in ("ERROR", "FAIL", "Error", "error"))]
        hint = ""
        if "incremental model are out of sync" in completed.stdout:
            hint = ("\nAn incremental mart's columns changed: rebuild it whole with "
                    "`flightdelay build --full-refresh` (or `flightdelay run --full-refresh`).")
        raise StepFailed(f"dbt {args[0]} failed (exit {completed.returncode}):\n" + "\n".join(problems[-20:]) + hint)


INCREMENTAL_MARTS = ("fct_flights",)


def start_audit_from_published(settings: Settings) -> list[str]:
    """Write-audit-publish with incremental marts: the audit copy of an incremental mart starts as the
    published table, so this run's increment is applied to what is live, never to the leftovers of a
    run whose gates failed."""
    copied = []
    with settings.connect_warehouse() as con:
        published = {row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [PUBLISHED_SCHEMA]).fetchall()}
        con.execute(f"create schema if not exists {AUDIT_SCHEMA}")
        for table in INCREMENTAL_MARTS:
            if table in published:
                con.execute(f"create or replace table {AUDIT_SCHEMA}.{table} as "
                            f"select * from {PUBLISHED_SCHEMA}.{table}")
                copied.append(table)
    return copied


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else text


def step_build(settings: Settings) -> dict[str, object]:
    """dbt build (models + data tests) into the audit schema; the published marts are not touched.

    The build is recorded in the write-audit-publish ledger (flightdelay/warehouse/wap.py) as started before anything
    writes to the audit schema, so from then on no earlier validation lets `publish` copy it; it is marked
    built, with the fingerprint of what dbt wrote, only after dbt passed."""
    with settings.connect_warehouse() as con:
        wap.ensure_ledger(con)
        build_id = wap.start_build(con)
    try:
        args = ["build"]
        if settings.full_refresh:
            args.append("--full-refresh")
        elif settings.dbt_target == "local":
            start_audit_from_published(settings)
        dbt_invoke(settings, args, {"marts_schema": AUDIT_SCHEMA})
    except BaseException as failure:
        try:
            with settings.connect_warehouse() as con:
                wap.fail_build(con, build_id, f"{type(failure).__name__}: {failure}")
        except Exception as unrecorded:  # the build stays `started`, which no validation or publish accepts either
            failure.add_note(f"(could not record build {build_id} as failed: {unrecorded})")
        raise
    with settings.connect_warehouse() as con:
        content = wap.fingerprint(con, AUDIT_SCHEMA)
        wap.finish_build(con, build_id, content)
        counts = {
            f"{AUDIT_SCHEMA}.{name}": con.execute(f"select count(*) from {AUDIT_SCHEMA}.{name}").fetchone()[0]
            for name in ("fct_flights", "ml_flight_delay_features", "dim_airports", "dim_carriers", "dim_dates")
        }
    return {"build id": build_id, **counts}


def _built_build(con: duckdb.DuckDBPyConnection, settings: Settings, action: str) -> wap.Build:
    """The current build if it finished; otherwise say why `action` cannot proceed and what to run."""
    build = wap.latest_build(con)
    if build is None:
        raise StepFailed(f"nothing to {action}: no audit build is recorded in {settings.warehouse_path} "
                         f"(table {wap.SCHEMA}.builds); run `flightdelay build`, then `flightdelay validate`")
    if build.status == wap.FAILED:
        raise StepFailed(f"cannot {action}: the last build {build.build_id} failed "
                         f"({_first_line(build.detail or '')}); {AUDIT_SCHEMA} holds what it left. Fix it and run "
                         "`flightdelay build`, then `flightdelay validate`")
    if build.status != wap.BUILT:
        raise StepFailed(f"cannot {action}: the last build {build.build_id} (started "
                         f"{build.started_at:%Y-%m-%d %H:%M:%S} UTC) never finished: it was interrupted, or is still "
                         "running; run `flightdelay build`, then `flightdelay validate`")
    return build


def _changed_since_build(build: wap.Build, content: wap.Fingerprint) -> str:
    return (f"{AUDIT_SCHEMA} is not what build {build.build_id} wrote: "
            + "; ".join(content.differences(build.tables))
            + f" (fingerprint {build.fingerprint[:12]} at build, {content.digest[:12]} now). Something wrote to "
            f"{AUDIT_SCHEMA} after the build (dbt run by hand?)")


def step_validate(settings: Settings) -> dict[str, object]:
    """GX gates on raw files, the lake and the audit marts; critical failures stop the run.

    Records in the ledger whether the gates passed on exactly the content the current build wrote: its
    fingerprint is checked before the gates run and again after, and a pass is recorded only if both match."""
    from flightdelay.quality.gates import validate_boundaries

    with settings.connect_warehouse() as con:
        wap.ensure_ledger(con)
        build = _built_build(con, settings, "validate")
        before = wap.fingerprint(con, AUDIT_SCHEMA)
        validation = wap.start_validation(con, build.build_id, before.digest)
        if before.digest != build.fingerprint:
            problem = _changed_since_build(build, before)
            wap.finish_validation(con, validation, False, problem)
            raise StepFailed(f"{problem}; nothing was validated. Run `flightdelay build`, then `flightdelay validate`")
    try:
        report = validate_boundaries(settings, AUDIT_SCHEMA)
    except BaseException as failure:
        try:
            with settings.connect_warehouse() as con:
                wap.finish_validation(con, validation, False,
                                      f"validation did not finish: {type(failure).__name__}: {failure}")
        except Exception as unrecorded:  # left unfinished, which publish refuses as well
            failure.add_note(f"(could not record the validation as failed: {unrecorded})")
        raise
    with settings.connect_warehouse() as con:
        current = wap.latest_build(con)
        after = wap.fingerprint(con, AUDIT_SCHEMA)
        problem = None
        if current is None or current.build_id != build.build_id:
            problem = (f"{AUDIT_SCHEMA} changed while build {build.build_id} was being validated: build "
                       f"{current.build_id if current else '(none)'} started meanwhile")
        elif after.digest != before.digest:
            problem = (f"{AUDIT_SCHEMA} changed while build {build.build_id} was being validated: "
                       + "; ".join(after.differences(before.tables)))
        if problem:
            wap.finish_validation(con, validation, False, problem)
            raise StepFailed(f"{problem}; no pass was recorded. Run `flightdelay build`, then `flightdelay validate`")
        summary = (f"{len(report.results)} suites, {report.expectations} expectations, "
                   f"{len(report.blocking_failures)} critical failures, {len(report.warnings)} warnings")
        if report.blocking_failures:
            summary += ": " + "; ".join(report.blocking_failures)
        wap.finish_validation(con, validation, not report.blocking_failures, summary)
    facts = {
        "build id": build.build_id,
        "suites": len(report.results),
        "expectations": report.expectations,
        "critical failures": len(report.blocking_failures),
        "warnings": report.warnings or 0,
        "data docs": str(settings.data_docs_dir / "index.html"),
        "data docs assets": report.docs_note,
    }
    if report.blocking_failures:
        raise StepFailed(
            "quality gates failed; nothing was published (the marts are as they were):\n  - "
            + "\n  - ".join(report.blocking_failures)
            + f"\nData Docs: {settings.data_docs_dir / 'index.html'}"
        )
    return facts


def _publishable(con: duckdb.DuckDBPyConnection, settings: Settings) -> tuple[wap.Build, wap.Fingerprint]:
    """The current build and its content, if a validation of exactly that content passed."""
    build = _built_build(con, settings, "publish")
    validation = wap.latest_validation(con, build.build_id)
    if validation is None:
        raise StepFailed(f"build {build.build_id} has not been validated; nothing was published. "
                         "Run `flightdelay validate`, then `flightdelay publish`")
    if validation.finished_at is None:
        raise StepFailed(f"the last validation of build {build.build_id} (started "
                         f"{validation.validated_at:%Y-%m-%d %H:%M:%S} UTC) never finished; nothing was published. "
                         "Run `flightdelay validate`")
    if not validation.passed:
        raise StepFailed(f"run `flightdelay validate`; the last validation of build {build.build_id} failed: "
                         f"{validation.summary}\nNothing was published (the marts are as they were); fix the data, "
                         "then `flightdelay build` and `flightdelay validate` (or `flightdelay run`)")
    content = wap.fingerprint(con, AUDIT_SCHEMA)
    if content.digest != build.fingerprint or validation.fingerprint != build.fingerprint:
        raise StepFailed(f"{_changed_since_build(build, content)}; nothing was published. "
                         "Run `flightdelay build`, then `flightdelay validate`")
    if not content.tables:
        raise StepFailed(f"nothing to publish: schema {AUDIT_SCHEMA} is empty; run `flightdelay build` first")
    return build, content


def step_publish(settings: Settings) -> dict[str, object]:
    """Copy every audited mart to the published schema in one transaction: all or nothing, and only the build
    whose validation passed, checked inside that same transaction."""
    with settings.connect_warehouse() as con:
        wap.ensure_ledger(con)
        con.execute("begin transaction")
        try:
            build, content = _publishable(con, settings)
            con.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
            for table in content.tables:
                con.execute(f"create or replace table {PUBLISHED_SCHEMA}.{table} as "
                            f"select * from {AUDIT_SCHEMA}.{table}")
            wap.record_publication(con, build.build_id, content)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return {"build id": build.build_id,
                **{f"{PUBLISHED_SCHEMA}.{t}": con.execute(f"select count(*) from {PUBLISHED_SCHEMA}.{t}").fetchone()[0]
                   for t in content.tables}}


def step_train(settings: Settings) -> dict[str, object]:
    from flightdelay.flow.modeling import TimeSplit, export_channels, run_training
    from flightdelay.quality.gates import validate_training_channel

    counts = export_channels(settings)
    gate = in_child_process(validate_training_channel, settings, settings.ml_dir / "channels" / "train",
                            TimeSplit.from_settings(settings).validation_start)
    if gate.blocking_failures:
        raise StepFailed("training frame gate failed:\n  - " + "\n  - ".join(gate.blocking_failures))
    try:
        evaluation = run_training(settings)
    except subprocess.CalledProcessError as failure:
        raise StepFailed(f"ml/train.py failed (exit {failure.returncode}); its output is above") from failure
    model = evaluation["binary_classification_metrics"]
    baseline = evaluation["baseline"]["binary_classification_metrics"]
    return {
        "train rows": counts["train"],
        "validation rows": counts["validation"],
        "test rows": counts["test"],
        "test ROC AUC": round(model["auc"]["value"], 4),
        "test PR AUC": round(model["pr_auc"]["value"], 4),
        "test log loss": round(model["log_loss"]["value"], 4),
        "baseline ROC AUC": round(baseline["auc"]["value"], 4),
        "baseline PR AUC": round(baseline["pr_auc"]["value"], 4),
        "baseline log loss": round(baseline["log_loss"]["value"], 4),
        "evaluation": str(settings.ml_dir / "evaluation.json"),
    }


def step_score(settings: Settings) -> dict[str, object]:
    """Batch-score the published feature mart, then build (and test) the dbt models over the predictions."""
    from flightdelay.flow.modeling import PREDICTIONS_TABLE, score

    scored = score(settings)
    dbt_invoke(settings, ["build", "--selector", "predictions"], {"marts_schema": PUBLISHED_SCHEMA})
    with settings.connect_warehouse(read_only=True) as con:
        joined = con.execute(f"select count(*) from {PUBLISHED_SCHEMA}.fct_flight_delay_predictions").fetchone()[0]
    if joined != scored:
        raise StepFailed(f"{PUBLISHED_SCHEMA}.fct_flight_delay_predictions has {joined:,} rows for {scored:,} "
                         "scored flights: some predictions did not join to fct_flights")
    return {PREDICTIONS_TABLE: scored, f"{PUBLISHED_SCHEMA}.fct_flight_delay_predictions": joined}


def step_report(settings: Settings) -> dict[str, object]:
    """Static dbt docs site and the run report, both plain files under artifacts/."""
    import shutil

    from flightdelay.report.run_report import write_report

    dbt_invoke(settings, ["docs", "generate", "--static"])
    docs_dir = settings.artifacts_dir / "dbt_docs"
    docs_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.project_root / "target" / "static_index.html", docs_dir / "index.html")
    report = write_report(settings)
    return {"report": str(report), "dbt docs": str(docs_dir / "index.html")}


STEPS: dict[str, Callable[[Settings], dict[str, object]]] = {
    "sample": step_sample,
    "prep": step_prep,
    "load": step_load,
    "build": step_build,
    "validate": step_validate,
    "publish": step_publish,
    "train": step_train,
    "score": step_score,
    "report": step_report,
}


def peak_memory_mib() -> dict[str, float]:
    """Peak resident memory of this process and of its largest finished child (Spark, training)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"cli process": round(own, 1), "largest child process": round(children, 1)}


def run_steps(settings: Settings, names: list[str],
              overrides: dict[str, Callable[[Settings], dict[str, object]]] | None = None,
              record: bool = False) -> list[StepReport]:
    steps = {**STEPS, **(overrides or {})}
    reports = []
    for index, name in enumerate(names, start=1):
        _say(f"[{index}/{len(names)}] {name} ...")
        started = time.perf_counter()
        facts = steps[name](settings)
        report = StepReport(name, time.perf_counter() - started, facts)
        reports.append(report)
        if record:
            write_run_record(settings, reports)  # progressively, so the report step sees the steps before it
        _say(f"[{index}/{len(names)}] {name} done in {report.seconds:.1f} s")
    return reports


def summary(settings: Settings, reports: list[StepReport]) -> str:
    lines = ["", "=" * 72, "flightdelay run summary", "=" * 72]
    for report in reports:
        lines.append(f"{report.name:<9} {report.seconds:7.1f} s")
        for key, value in report.facts.items():
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                lines.append(f"          {key}:")
                lines += [f"            {item}" for item in value]
            else:
                lines.append(f"          {key}: {value}")
    total = sum(r.seconds for r in reports)
    memory = peak_memory_mib()
    lines += [
        "-" * 72,
        f"total     {total:7.1f} s   peak RSS: CLI {memory['cli process']} MiB, "
        f"largest child {memory['largest child process']} MiB",
        f"warehouse {settings.warehouse_path}",
        f"lake      {settings.lake_dir}",
        f"artifacts {settings.artifacts_dir}",
    ]
    return "\n".join(lines)


def write_run_record(settings: Settings, reports: list[StepReport]) -> Path:
    path = settings.artifacts_dir / "run_summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "steps": [{"name": r.name, "seconds": round(r.seconds, 2), "facts": r.facts} for r in reports],
        "peak_memory_mib": peak_memory_mib(),
        "prediction_horizon_hours": settings.prediction_horizon_hours,
    }
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path
