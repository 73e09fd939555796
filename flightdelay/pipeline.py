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

import duckdb

from flightdelay.settings import Settings


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
    from flightdelay.sample import write_sample

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


def step_prep(settings: Settings) -> dict[str, object]:
    """Run the Spark weather job in its own process, as spark-submit / an EMR step would."""
    files = sorted(settings.weather_raw_dir.glob("*.csv"))
    if not files:
        raise StepFailed(f"no LCD weather files in {settings.weather_raw_dir}; run `flightdelay sample` first")
    log_path = settings.artifacts_dir / "logs" / "prep.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "spark_prep.weather_job",
        "--raw-weather", str(settings.weather_raw_dir),
        "--stations", str(settings.seeds_dir / "airport_weather_stations.csv"),
        "--lake", str(settings.lake_dir),
        "--master", settings.spark_master,
    ]
    with log_path.open("w") as log:
        completed = subprocess.run(command, env=spark_environment(), cwd=settings.project_root,
                                   stdout=subprocess.PIPE, stderr=log, text=True)
    if completed.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        raise StepFailed(f"Spark weather job failed (exit {completed.returncode}); log {log_path}:\n{tail}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return {
        "LCD rows read": result["rows_read"],
        "other report types": result["rows_other_report_types"],
        "rejected": result["rows_rejected"],
        "duplicates resolved": result["duplicates_resolved"],
        "rows with implausible values nulled": result["rows_with_implausible_values"],
        "hourly observations": result["hourly_rows"],
        "daily summaries": result["daily_rows"],
        "stations": result["stations"],
        "recovered": result["recovered"],
    }


def step_load(settings: Settings, files: list[Path] | None = None) -> dict[str, object]:
    from flightdelay.load import load_flights

    files = files or sorted(settings.flights_raw_dir.glob("*.csv"))
    if not files:
        raise StepFailed(f"no BTS flight files in {settings.flights_raw_dir}; run `flightdelay sample` first")
    loads = load_flights(settings.warehouse_path, files, progress=sys.stderr.isatty())
    unreconciled = [load.source_file for load in loads if not load.reconciles]
    if unreconciled:
        raise StepFailed(f"read != loaded + rejected for {unreconciled}")
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        total = con.execute("select count(*) from raw.flights").fetchone()[0]
        rejected = con.execute("select count(*) from raw.flights_rejected").fetchone()[0]
    return {
        "files": len(loads),
        "files unchanged since last load": sum(load.status == "unchanged" for load in loads),
        "rows read": sum(load.rows_read for load in loads),
        "rows loaded": sum(load.rows_loaded for load in loads),
        "rows rejected": sum(load.rows_rejected for load in loads),
        "raw.flights rows": total,
        "raw.flights_rejected rows": rejected,
    }


def dbt_invoke(settings: Settings, args: list[str]) -> None:
    """Run dbt as users do, in its own process: dbt-duckdb keeps its DuckDB instance open for the
    life of a process, which would lock the warehouse file against the steps after it."""
    dbt = Path(sys.executable).with_name("dbt")
    command = [
        str(dbt) if dbt.exists() else "dbt",
        *args,
        "--project-dir", str(settings.project_root),
        "--profiles-dir", str(settings.project_root),
        "--target", settings.dbt_target,
        "--vars", json.dumps({"prediction_horizon_hours": settings.prediction_horizon_hours}),
    ]
    completed = subprocess.run(command, env={**os.environ, **settings.dbt_env()}, cwd=settings.project_root,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if completed.returncode != 0:
        problems = [line for line in completed.stdout.splitlines()
                    if any(word in line for word in ("ERROR", "FAIL", "Error", "error"))]
        raise StepFailed(f"dbt {args[0]} failed (exit {completed.returncode}):\n" + "\n".join(problems[-20:]))


def step_build(settings: Settings) -> dict[str, object]:
    dbt_invoke(settings, ["build"])
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return {
            name: con.execute(f"select count(*) from {name}").fetchone()[0]
            for name in ("marts.fct_flights", "marts.ml_flight_delay_features", "marts.dim_airports",
                         "marts.dim_carriers", "marts.dim_dates")
        }


def step_validate(settings: Settings) -> dict[str, object]:
    from flightdelay.quality import validate_feature_mart

    gate = validate_feature_mart(settings)
    facts = {
        "suite": gate.suite,
        "expectations": gate.evaluated,
        "failed": len(gate.failed),
        "data docs": str(settings.data_docs_dir / "index.html"),
        "data docs assets": gate.docs_note,
    }
    if not gate.success:
        raise StepFailed(f"quality gate {gate.suite} failed:\n  - " + "\n  - ".join(gate.failed))
    return facts


def step_train(settings: Settings) -> dict[str, object]:
    from flightdelay.modeling import export_channels, run_training

    counts = export_channels(settings)
    evaluation = run_training(settings)
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
    from flightdelay.modeling import PREDICTIONS_TABLE, score

    return {PREDICTIONS_TABLE: score(settings)}


def step_report(settings: Settings) -> dict[str, object]:
    """Static dbt docs site and the run report, both plain files under artifacts/."""
    import shutil

    from flightdelay.report import write_report

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
