"""The aws home of the flow: one plan per step of flightdelay.flow.pipeline.STEPS, the same names and order as
the local run. Each plan is data (flightdelay/aws/plan.py); execute.py runs it.

  sample    nothing on AWS (the raw files are written locally, then staged by prep and load)
  prep      weather files and code to S3, the Glue database, the weather job as an EMR step, Spectrum over it
  load      each BTS file typed locally (the one rule set), Parquet to S3, one COPY transaction per file
  build     dbt build --target redshift into marts_audit, recorded in the wap ledger
  validate  the GX suites on the audit marts through a SQL datasource, recorded in the ledger
  publish   one transaction: the ledger check, every mart replaced by its audited copy, the publication
  train     UNLOAD of the train/validation/test channels, the SageMaker training job on them, the model
  score     UNLOAD of the feature mart, batch transform, COPY of the predictions, dbt build of the predictions
  report    dbt docs generate --target redshift
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from flightdelay.aws import lake, redshift_load, sagemaker_jobs, staging, warehouse_sql
from flightdelay.aws.gx_redshift import NOT_ON_REDSHIFT, gx_run
from flightdelay.aws.plan import Command, Sql, StepPlan
from flightdelay.aws.settings import AwsSettings
from flightdelay.flow import pipeline
from flightdelay.flow.feature_contract import numeric_features, ranges_file
from flightdelay.flow.modeling import CHANNELS, TimeSplit
from flightdelay.settings import Settings
from ml.features import CATEGORICAL_FEATURES, ID_COLUMN, RANGES_FILE

STEPS = tuple(pipeline.STEPS)  # the flow's one vocabulary: sample, prep, load, build, ... report
DBT_ENV = {"FLIGHTDELAY_DBT_TARGET": "redshift", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def _dbt(settings: Settings, *args: str, extra_vars: dict[str, object] | None = None) -> Command:
    """dbt on the redshift target, with the variables the local flow passes (flightdelay/flow/dbt_command.py)."""
    dbt = Path(sys.executable).with_name("dbt")
    root = str(settings.project_root)
    dbt_vars = json.dumps({"prediction_horizon_minutes": settings.prediction_horizon_minutes, **(extra_vars or {})})
    return Command((str(dbt) if dbt.exists() else "dbt", *args, "--vars", dbt_vars, "--target", "redshift",
                    "--profiles-dir", root, "--project-dir", root), DBT_ENV)


def plan_sample(settings: Settings, aws: AwsSettings) -> StepPlan:
    return StepPlan("sample", (), ("runs locally (`flightdelay sample`): prep and load stage the raw files it wrote",))


def plan_prep(settings: Settings, aws: AwsSettings) -> StepPlan:
    actions: list = [staging.ensure_bucket(aws), *lake.weather_uploads(settings, aws),
                     *staging.code_uploads(aws, settings.project_root), lake.glue_database(aws)]
    notes = []
    if aws.with_local_lake:
        actions += lake.local_lake(settings, aws)
        notes.append("--with-local-lake: the locally built lake is uploaded and registered; no EMR step")
    else:
        actions += lake.emr_actions(aws)
        notes.append("the weather job commits the lake in S3 and keeps its Glue tables itself (--metastore external)")
    actions.append(lake.spectrum_sql(settings, aws))
    return StepPlan("prep", tuple(actions), tuple(notes))


def plan_load(settings: Settings, aws: AwsSettings) -> StepPlan:
    from flightdelay.raw.bts_reader import read_airport_id_map

    out_dir = settings.artifacts_dir / "aws" / "load"
    airport_codes = read_airport_id_map(settings.airport_id_map) if settings.airport_id_map else None
    actions: list = [staging.ensure_bucket(aws), Sql(tuple(redshift_load.ddl()), title="raw tables")]
    notes = [f"typed locally into {out_dir} by flightdelay/raw/bts_typing.py"]
    first_of: dict[str, str] = {}
    for path in sorted(settings.flights_raw_dir.glob("*.csv")):
        staged = redshift_load.stage_file(path, out_dir, airport_codes)
        if first_of.setdefault(staged.file_sha256, path.name) != path.name:
            notes.append(f"{path.name} left out: the same bytes as {first_of[staged.file_sha256]}")
            continue
        month = staging.month_of(path.name)
        actions.append(staging.upload(aws, path, f"raw/bts/{month}/{path.name}"))
        manifests = []
        for parquet in (staged.accepted, staged.rejected):
            if parquet is None:
                manifests.append(None)
                continue
            key = f"staging/bts_typed/{month}/{parquet.name}"
            manifest_key = f"staging/bts_typed/manifests/{month}/{parquet.name}.manifest"
            actions.append(staging.upload(aws, parquet, key))
            actions.append(staging.upload(aws, redshift_load.copy_manifest(aws.uri(key), parquet.stat().st_size),
                                          manifest_key))
            manifests.append(aws.uri(manifest_key))
        title = (f"load {path.name}: {staged.rows_read} read = {staged.rows_loaded} loaded + "
                 f"{staged.rows_rejected} rejected + {staged.blank_lines} blank")
        statements = redshift_load.file_transaction(staged, manifests[0], manifests[1], aws.copy_role)
        actions.append(Sql(tuple(statements), transaction=True, title=title))
    return StepPlan("load", tuple(actions), tuple(notes))


def plan_build(settings: Settings, aws: AwsSettings, build_id: str) -> StepPlan:
    tables = warehouse_sql.marts(settings.project_root)
    return StepPlan("build", (
        Sql(tuple(warehouse_sql.ledger_ddl()), title="write-audit-publish ledger"),
        Sql(tuple(warehouse_sql.start_build(build_id)), transaction=True, title=f"build {build_id} started"),
        _dbt(settings, "build", extra_vars={"marts_schema": warehouse_sql.AUDIT_SCHEMA}),
        Sql(tuple(warehouse_sql.finish_build(build_id, tables)), transaction=True, title=f"build {build_id} built"),
    ), ("dbt builds into marts_audit; marts is not touched",))


def plan_validate(settings: Settings, aws: AwsSettings) -> StepPlan:
    tables = warehouse_sql.marts(settings.project_root)
    spec = gx_run(aws.redshift_url(redacted=True), warehouse_sql.AUDIT_SCHEMA)
    return StepPlan("validate", (
        Sql(tuple(warehouse_sql.start_validation(tables)), transaction=True, title="validation started"),
        Command((sys.executable, "-m", "flightdelay.aws.gx_redshift", "--spec", spec.to_json())),
        Sql(tuple(warehouse_sql.pass_validation(tables, f"{len(spec.checkpoints)} checkpoints passed")),
            transaction=True, title="validation passed"),
    ), tuple(f"GX checkpoint {c.name}: suite {c.suite} on {c.table}" for c in spec.checkpoints)
        + tuple(f"not on Redshift: {asset} ({why})" for asset, why in NOT_ON_REDSHIFT.items()))


def plan_publish(settings: Settings, aws: AwsSettings) -> StepPlan:
    tables = warehouse_sql.marts(settings.project_root)
    return StepPlan("publish", (Sql(tuple(warehouse_sql.publish(tables)), transaction=True,
                                    title="publish: ledger check, marts replaced, publication recorded"),))


def plan_train(settings: Settings, aws: AwsSettings) -> StepPlan:
    split = TimeSplit.from_settings(settings)
    features = f"{warehouse_sql.PUBLISHED_SCHEMA}.{warehouse_sql.FEATURE_MART}"
    unloads = tuple(warehouse_sql.unload(
        f"select * from {features} where {split.where()} and {split.as_sql_cases()} = '{channel}'",
        sagemaker_jobs.channel_uri(aws, channel), aws.copy_role, "format as parquet") for channel in CHANNELS)
    # after the unload, whose CLEANPATH empties the prefix: the feature ranges training keeps with the model
    ranges = staging.upload(aws, ranges_file(settings.project_root), sagemaker_jobs.channel_key("train") + RANGES_FILE)
    return StepPlan("train", (Sql(unloads, title="the channels, exported by the warehouse"), ranges,
                              staging.upload(aws, staging.sourcedir_tarball(settings.project_root),
                                             staging.SOURCEDIR_KEY),
                              sagemaker_jobs.training_job(aws, settings.project_root),
                              *sagemaker_jobs.after_training(aws),
                              Command((sys.executable, "-m", "flightdelay.aws.model_registry", "--horizon-minutes",
                                       str(settings.prediction_horizon_minutes)))),
                     (f"training job {aws.training_job_name}", f"time split: {split}"))


def plan_score(settings: Settings, aws: AwsSettings) -> StepPlan:
    split = TimeSplit.from_settings(settings)
    features = f"{warehouse_sql.PUBLISHED_SCHEMA}.{warehouse_sql.FEATURE_MART}"
    columns = ", ".join([ID_COLUMN, *CATEGORICAL_FEATURES, *numeric_features(settings.project_root)])
    size = f"maxfilesize {sagemaker_jobs.MAX_PAYLOAD_MB - 1} mb"  # each file is one request
    scoring = warehouse_sql.unload(f"select {columns} from {features}", sagemaker_jobs.scoring_input(aws),
                                   aws.copy_role, f"format as csv header {size}")
    return StepPlan("score", (
        Sql((scoring,), title="the flights to score, one request per file"),
        *sagemaker_jobs.transform_job(aws),
        Sql(tuple(warehouse_sql.predictions_copy(sagemaker_jobs.transform_output(aws), aws.copy_role, aws.region,
                                                 split.as_sql_cases())),
            transaction=True, title="predictions back into the warehouse"),
        _dbt(settings, "build", "--selector", "predictions"),
    ))


def plan_report(settings: Settings, aws: AwsSettings) -> StepPlan:
    return StepPlan("report", (_dbt(settings, "docs", "generate"),))


def build_plans(settings: Settings, aws: AwsSettings, steps: tuple[str, ...] = STEPS) -> list[StepPlan]:
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown step(s) {unknown}; the flow's steps are {list(STEPS)}")
    build_id = hashlib.sha256(f"{aws.run_id}-{uuid.uuid4()}".encode()).hexdigest()[:16]
    builders: dict[str, Callable[[], StepPlan]] = {
        "sample": lambda: plan_sample(settings, aws),
        "prep": lambda: plan_prep(settings, aws),
        "load": lambda: plan_load(settings, aws),
        "build": lambda: plan_build(settings, aws, build_id),
        "validate": lambda: plan_validate(settings, aws),
        "publish": lambda: plan_publish(settings, aws),
        "train": lambda: plan_train(settings, aws),
        "score": lambda: plan_score(settings, aws),
        "report": lambda: plan_report(settings, aws),
    }
    return [builders[step]() for step in STEPS if step in steps]
