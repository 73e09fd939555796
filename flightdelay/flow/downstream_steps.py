"""The steps that read the published marts: train (the model), score (predictions), report (dbt docs, run report)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from flightdelay.flow import dbt_command, ml_inputs
from flightdelay.flow.build_inputs import BuildInputs
from flightdelay.flow.errors import StepFailed
from flightdelay.flow.progress import in_child_process
from flightdelay.flow.warehouse_steps import PUBLISHED_SCHEMA
from flightdelay.settings import Settings, describe_horizon, horizon_argument
from flightdelay.warehouse import wap


def _published_inputs(settings: Settings) -> tuple[str, BuildInputs | None]:
    """The published build and what it was built from (None for a build recorded before inputs were)."""
    with settings.connect_warehouse() as con:
        wap.ensure_ledger(con)
        published = wap.published_build(con)
    if published is None:
        raise StepFailed("nothing is published yet: run `flightdelay build`, `validate` and `publish` first")
    return published.build_id, BuildInputs.from_json(published.inputs) if published.inputs else None


def published_horizon_minutes(settings: Settings) -> int | None:
    """The horizon the published feature mart was built at, read from its rows (each as-of time is the scheduled
    departure minus it); None when the mart has no rows."""
    from flightdelay.flow.modeling import FEATURE_MART

    with settings.connect_warehouse(read_only=True) as con:  # SQL that DuckDB and PostgreSQL both speak
        found = con.execute(f"""
            select distinct cast(extract(epoch from (scheduled_departure_at_utc - as_of_at_utc)) / 60 as integer)
            from {FEATURE_MART} limit 2""").fetchall()
    if len(found) > 1:
        raise StepFailed(f"{FEATURE_MART} mixes horizons ({found[0][0]} and {found[1][0]} minutes "
                         "before departure): rebuild it whole with `flightdelay run --full-refresh`")
    return found[0][0] if found else None


def require_published_horizon(settings: Settings, command: str) -> None:
    """StepFailed when the published feature mart was built at another horizon than this command's: a model trained
    or scoring at one horizon on features of another would be recorded under the wrong one."""
    published = published_horizon_minutes(settings)
    wanted = settings.prediction_horizon_minutes
    if published is not None and published != wanted:
        raise StepFailed(
            f"the published feature mart was built at a {describe_horizon(published)} horizon and this command asks "
            f"for {describe_horizon(wanted)}: run `flightdelay --horizon-hours {horizon_argument(published)} "
            f"{command}` for the mart as it is, or `flightdelay --horizon-hours {horizon_argument(wanted)} run` to "
            f"build, validate and publish it at {describe_horizon(wanted)} first")


def _metrics(evaluation: dict) -> dict[str, object]:
    model = evaluation["binary_classification_metrics"]
    baseline = evaluation["baseline"]["binary_classification_metrics"]
    return {
        "test ROC AUC": round(model["auc"]["value"], 4),
        "test PR AUC": round(model["pr_auc"]["value"], 4),
        "test log loss": round(model["log_loss"]["value"], 4),
        "baseline ROC AUC": round(baseline["auc"]["value"], 4),
        "baseline PR AUC": round(baseline["pr_auc"]["value"], 4),
        "baseline log loss": round(baseline["log_loss"]["value"], 4),
    }


def step_train(settings: Settings) -> dict[str, object]:
    """Train unless the model was trained on exactly these inputs; evaluate the current model again when only
    the test period's data changed (the retraining policy: flow/ml_inputs.py)."""
    from ml.model_files import FIT_FILE, FITTED_FILES

    build_id, published = _published_inputs(settings)
    require_published_horizon(settings, "train")
    inputs = ml_inputs.training_inputs(settings, build_id, published) if published else None
    model_dir, evaluation_path = settings.ml_dir / "model", settings.ml_dir / "evaluation.json"
    recorded = ml_inputs.recorded_training_inputs(model_dir)
    asked = settings.retrain or settings.force
    kept_id = _kept_model_id(model_dir)
    if (inputs is not None and recorded is not None and recorded.digest == inputs.digest and evaluation_path.exists()
            and kept_id is not None and not asked):
        return {"skipped": f"the model in {model_dir} (id {kept_id}) was trained on these inputs (data id "
                           f"{inputs.digest}, from build {recorded.build_id}); --retrain trains anew",
                **_metrics(json.loads(evaluation_path.read_text()))}
    from flightdelay.flow.modeling import export_channels, register_model, run_training
    from ml.model_card import model_card

    same_fit = (inputs is not None and recorded is not None and recorded.fit_digest == inputs.fit_digest
                and not asked)
    missing = [name for name in (*FITTED_FILES, FIT_FILE) if not (model_dir / name).is_file()]
    evaluation = None
    if same_fit and not missing:  # the fit's data did not change: the model stays, the grown test period is evaluated
        counts = export_channels(settings, channels=("test",))
        try:
            evaluation = run_training(settings, evaluate_only=True)
            outcome = {"evaluated again because": ml_inputs.why_train(recorded, inputs, False, False)
                       + f" (after the fit's data: the model, fit id {inputs.fit_digest}, is kept; --retrain refits)"}
        except subprocess.CalledProcessError as failure:  # ml/train.py said why (a model folder not one fit)
            why = f"the kept model could not be evaluated again (ml/train.py exit {failure.returncode}, above)"
    else:
        why = ml_inputs.why_train(recorded, inputs, settings.retrain, settings.force)
        if same_fit:
            why += f" (the model folder has no {', '.join(missing)} to evaluate the kept model with)"
    if evaluation is None:
        counts, outcome = _fit(settings, model_dir), {"trained because": why}
        try:
            evaluation = run_training(settings)
        except subprocess.CalledProcessError as failure:
            raise StepFailed(f"ml/train.py failed (exit {failure.returncode}); its output is above") from failure
        outcome.update({"train rows": counts["train"], "validation rows": counts["validation"]})
    if inputs is not None:
        ml_inputs.record_training_inputs(model_dir, inputs)
        # the evaluation says which data the model saw
        evaluation["training_data"] = {"data_id": inputs.digest, "fit_id": inputs.fit_digest, "build_id": build_id,
                                       "prediction_horizon_minutes": inputs.prediction_horizon_minutes,
                                       "split": inputs.split, "months": sorted(inputs.months),
                                       "fit_months": inputs.fit_months}
        evaluation_path.write_text(json.dumps(evaluation, indent=2))
        # the card ml/train.py wrote, again with what only the flow knows (the horizon, the data's ids)
        (settings.ml_dir / "model_card.md").write_text(model_card(evaluation))
    register_model(settings, evaluation)
    return {
        **outcome,
        "model id": evaluation["model_id"],
        "test rows": counts["test"],
        **_metrics(evaluation),
        "evaluation": str(evaluation_path),
    }


def _kept_model_id(model_dir: Path) -> str | None:
    """The id of the model in the folder if the folder is one whole fit (every file there, as fit.json records it),
    else None: a deleted or edited model file is trained anew, never skipped over."""
    from ml.model_files import ModelFolderError, fit_record

    try:
        return fit_record(model_dir)["model_id"]
    except ModelFolderError:
        return None


def _fit(settings: Settings, model_dir: Path) -> dict[str, int]:
    """Export the channels and gate the training frame, before a fit. The record of what the model in the folder
    was trained on goes first: a fit that dies halfway leaves a folder no later run takes for that model."""
    from flightdelay.flow.modeling import TimeSplit, export_channels
    from flightdelay.quality.gates import validate_training_channel  # GX takes seconds to import

    (model_dir / ml_inputs.TRAINING_INPUTS_FILE).unlink(missing_ok=True)
    counts = export_channels(settings)
    gate = in_child_process(validate_training_channel, settings, settings.ml_dir / "channels" / "train",
                            TimeSplit.from_settings(settings).validation_start)
    if gate.blocking_failures:
        raise StepFailed("training frame gate failed:\n  - " + "\n  - ".join(gate.blocking_failures))
    return counts


def step_score(settings: Settings) -> dict[str, object]:
    """Batch-score the published feature mart, then build (and test) the dbt models over the predictions.

    Only what changed: nothing when the predictions were scored by this model from the published build; the
    flights from the first changed month on when the model is the same; every flight when the model changed."""
    from flightdelay.flow.build_inputs import first_rebuilt_day
    from flightdelay.flow.modeling import (
        PREDICTIONS_TABLE,
        last_scoring_run,
        migrate_registry,
        model_id,
        record_scoring_run,
        score,
    )

    build_id, published = _published_inputs(settings)
    require_published_horizon(settings, "score")
    version = model_id(settings.ml_dir / "model")
    trained = ml_inputs.recorded_training_inputs(settings.ml_dir / "model")
    if trained is not None and trained.prediction_horizon_minutes != settings.prediction_horizon_minutes:
        raise StepFailed(f"the model in {settings.ml_dir / 'model'} was trained at a "
                         f"{describe_horizon(trained.prediction_horizon_minutes)} horizon and the published features "
                         f"are at {describe_horizon(settings.prediction_horizon_minutes)}: run `flightdelay "
                         f"--horizon-hours {horizon_argument(settings.prediction_horizon_minutes)} train` first")
    last = None if settings.force else last_scoring_run(settings)
    if last is not None and last.model_id == version and last.build_id == build_id:
        return {"skipped": f"{PREDICTIONS_TABLE} holds model {version}'s predictions for build {build_id}; "
                           "--force rescores"}
    rescore_from = None
    if last is not None and last.model_id == version and published is not None:
        with settings.connect_warehouse(read_only=True) as con:
            scored_from = wap.build(con, last.build_id)
        rescore_from = ml_inputs.first_changed_month(
            BuildInputs.from_json(scored_from.inputs) if scored_from and scored_from.inputs else None, published)
    # the flights a rebuild from that month rewrote (build_inputs.first_rebuilt_day), then the models over the
    # predictions from the same day on (macros/incremental_by_month.sql)
    first_day = first_rebuilt_day(settings, rescore_from) if rescore_from else None
    scored = 0 if rescore_from == "" else score(settings, first_day)
    migrate_registry(settings)  # the predictions' models read the registry
    if rescore_from is None:
        dbt_command.dbt_invoke(settings, ["build", "--selector", "predictions", "--full-refresh"],
                               {"marts_schema": PUBLISHED_SCHEMA})
    elif rescore_from:
        dbt_command.dbt_invoke(settings, ["build", "--selector", "predictions"],
                               {"marts_schema": PUBLISHED_SCHEMA, "rebuild_from_month": rescore_from})
    with settings.connect_warehouse(read_only=True) as con:
        joined = con.execute(f"select count(*) from {PUBLISHED_SCHEMA}.fct_flight_delay_predictions").fetchone()[0]
        predicted = con.execute(f"select count(*) from {PREDICTIONS_TABLE}").fetchone()[0]
    if joined != predicted:
        raise StepFailed(f"{PUBLISHED_SCHEMA}.fct_flight_delay_predictions has {joined:,} rows for {predicted:,} "
                         "predictions: some predictions did not join to fct_flights")
    # recorded last: a score whose dbt step failed or was killed is redone by the next one, not skipped
    record_scoring_run(settings, build_id, first_day, scored)
    scope = ("every flight (model " + version + ")" if rescore_from is None else
             "no flight: no month changed" if rescore_from == "" else f"flights from {first_day} on")
    return {"scored": scope, "flights scored": scored, PREDICTIONS_TABLE: predicted,
            f"{PUBLISHED_SCHEMA}.fct_flight_delay_predictions": joined, **monitoring_warnings(settings)}


MONITORING_WARNINGS_SHOWN = 8


def monitoring_warnings(settings: Settings) -> dict[str, object]:
    """What the monitoring models flag (their dbt tests warn on the same rows): months after the fit predicted worse
    than by their own delay rate, and features drifted beyond the training window's own month-to-month variation."""
    with settings.connect_warehouse(read_only=True) as con:
        skill = con.execute(f"select flight_month, brier_skill_score from {PUBLISHED_SCHEMA}."
                            "fct_model_performance_by_month where is_below_skill_threshold order by flight_month"
                            ).fetchall()
        drift = con.execute(f"select flight_month, feature_name, population_stability_index, max_training_month_psi "
                            f"from {PUBLISHED_SCHEMA}.fct_feature_drift_by_month where is_drifted "
                            "order by flight_month, population_stability_index desc, feature_name").fetchall()
    facts: dict[str, object] = {}
    if skill:
        facts["monitoring: months predicted worse than their delay rate"] = ", ".join(
            f"{month:%Y-%m} (Brier skill {value:.3f})" for month, value in skill)
    if drift:
        shown = [f"{month:%Y-%m} {feature} (PSI {psi:.2f}, training months up to {most:.2f})"
                 for month, feature, psi, most in drift[:MONITORING_WARNINGS_SHOWN]]
        more = f"; and {len(drift) - MONITORING_WARNINGS_SHOWN} more" if len(drift) > MONITORING_WARNINGS_SHOWN else ""
        facts["monitoring: features drifted"] = "; ".join(shown) + more + \
            f" ({PUBLISHED_SCHEMA}.fct_feature_drift_by_month)"
    return facts


def _files_digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0" + (file.read_bytes() if file.exists() else b"") + b"\0")
    return digest.hexdigest()


def step_report(settings: Settings) -> dict[str, object]:
    """Static dbt docs site and the run report, both plain files under artifacts/. The docs are generated again
    only when the dbt project or the published build changed since they were (the catalog describes both); the
    report when any of what it shows changed: the published build, the evaluation, the predictions, its code."""
    import shutil

    from flightdelay.flow.build_inputs import project_digest
    from flightdelay.flow.modeling import last_scoring_run

    docs_dir, report_dir = settings.artifacts_dir / "dbt_docs", settings.artifacts_dir / "report"
    docs_stamp_path, report_stamp_path = docs_dir / "generated_from.json", report_dir / "generated_from.json"
    build_id, _ = _published_inputs(settings)
    docs_stamp = {"project": project_digest(settings, {}), "published build": build_id}
    scoring = last_scoring_run(settings)
    report_stamp = {**docs_stamp, "scored": [scoring.model_id, scoring.build_id] if scoring else None,
                    "evaluation and code": _files_digest([settings.ml_dir / "evaluation.json",
                                                          *sorted(Path(__file__).parents[1].glob("report/*.py"))])}
    facts: dict[str, object] = {}
    if (not settings.force and (docs_dir / "index.html").exists() and docs_stamp_path.exists()
            and json.loads(docs_stamp_path.read_text()) == docs_stamp):
        facts["dbt docs skipped"] = f"generated from this dbt project and build {build_id}; --force regenerates"
    else:
        dbt_command.dbt_invoke(settings, ["docs", "generate", "--static"])
        docs_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(settings.project_root / "target" / "static_index.html", docs_dir / "index.html")
        docs_stamp_path.write_text(json.dumps(docs_stamp))
    report = report_dir / "index.html"
    shown = json.loads(report_stamp_path.read_text()) if report.exists() and report_stamp_path.exists() else None
    if not settings.force and shown == report_stamp:
        facts["report skipped"] = "it shows this published build, evaluation and predictions; --force rewrites it"
    else:
        from flightdelay.report.run_report import write_report

        facts["report written because"] = "--force" if settings.force else "no report yet" if shown is None else \
            "changed since it was written: " + ", ".join(k for k, v in report_stamp.items() if shown.get(k) != v)
        report = write_report(settings)
        report_stamp_path.write_text(json.dumps(report_stamp))
    return {"report": str(report), "dbt docs": str(docs_dir / "index.html"), **facts}
