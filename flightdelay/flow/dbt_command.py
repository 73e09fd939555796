"""dbt as the flow runs it: in its own process, always against a prod target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flightdelay.flow.errors import StepFailed
from flightdelay.flow.progress import run_with_progress
from flightdelay.settings import Settings


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
        "--vars", json.dumps({"prediction_horizon_minutes": settings.prediction_horizon_minutes, **(extra_vars or {})}),
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


