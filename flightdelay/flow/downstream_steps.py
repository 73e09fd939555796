"""The steps that read the published marts: train (the model), score (predictions), report (dbt docs, run report)."""

from __future__ import annotations

import subprocess

from flightdelay.flow import dbt_command
from flightdelay.flow.errors import StepFailed
from flightdelay.flow.progress import in_child_process
from flightdelay.flow.warehouse_steps import PUBLISHED_SCHEMA
from flightdelay.settings import Settings


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
    dbt_command.dbt_invoke(settings, ["build", "--selector", "predictions"], {"marts_schema": PUBLISHED_SCHEMA})
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

    dbt_command.dbt_invoke(settings, ["docs", "generate", "--static"])
    docs_dir = settings.artifacts_dir / "dbt_docs"
    docs_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.project_root / "target" / "static_index.html", docs_dir / "index.html")
    report = write_report(settings)
    return {"report": str(report), "dbt docs": str(docs_dir / "index.html")}


