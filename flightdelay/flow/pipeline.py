"""The flow in order: which step runs under which name (`STEPS`), running them (`run_steps`), and the run's
summary and record. Each step is callable alone (CLI subcommands) or in order (`run`); the steps live by job:
`raw_steps.py` (sample, prep, load), `warehouse_steps.py` (build, validate, publish), `downstream_steps.py`
(train, score, report), with dbt run by `dbt_command.py`.

The step functions, `StepFailed` and `dbt_invoke` are importable from here as before. To replace dbt in a test,
patch `dbt_command.dbt_invoke`: the steps look it up there, not here."""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flightdelay.flow.dbt_command import dbt_invoke
from flightdelay.flow.downstream_steps import step_report, step_score, step_train
from flightdelay.flow.errors import StepFailed
from flightdelay.flow.raw_steps import run_weather_job, spark_environment, step_load, step_prep, step_sample
from flightdelay.flow.warehouse_steps import (
    AUDIT_SCHEMA,
    INCREMENTAL_MARTS,
    PUBLISHED_SCHEMA,
    start_audit_from_published,
    step_build,
    step_publish,
    step_validate,
)
from flightdelay.settings import Settings, describe_horizon

__all__ = [
    "AUDIT_SCHEMA", "INCREMENTAL_MARTS", "PUBLISHED_SCHEMA", "STEPS", "StepFailed", "StepReport", "dbt_invoke",
    "peak_memory_mib", "run_steps", "run_weather_job", "spark_environment", "start_audit_from_published",
    "step_build", "step_load", "step_prep", "step_publish", "step_report", "step_sample", "step_score",
    "step_train", "step_validate", "summary", "write_run_record",
]


@dataclass
class StepReport:
    name: str
    seconds: float
    facts: dict[str, object] = field(default_factory=dict)


def _say(message: str) -> None:
    print(message, flush=True)


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
        f"horizon   {describe_horizon(settings.prediction_horizon_minutes)} before departure",
        f"warehouse {settings.warehouse().description}",
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
        "backend": settings.backend,
        "warehouse": settings.warehouse().description,
        "prediction_horizon_minutes": settings.prediction_horizon_minutes,
    }
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path
