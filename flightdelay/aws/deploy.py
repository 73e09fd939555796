"""`flightdelay deploy`: the same flow on AWS. Settings only; credentials only from the standard AWS chain.

Steps (each can run alone with --only):
  stage      S3: raw files by source and month, numbered copies for Redshift COPY, the Spark job's code,
             the ML channels and ml/train.py; multipart uploads with SHA-256 checksums.
  catalog    Glue: the lake database, its external Parquet tables and the partitions found in S3
             (batches of 100) - what EMR's Spark writes when the Glue catalog is its metastore.
  emr        EMR: the weather job as a spark-submit step on a running cluster (add_job_flow_steps), or
             a transient cluster with the Glue catalog as Hive metastore (run_job_flow) with --transient.
  redshift   Redshift: COPY of every BTS file into raw.flights / raw.flights_rejected, the Spectrum
             external schema over the Glue database, then `dbt build --target redshift`.
  sagemaker  SageMaker: a training job launched with the sagemaker 3.x SDK's ModelTrainer, running ml/train.py
             in the XGBoost framework container (the SDK uploads ml/ as the code channel and runs it with the
             hyperparameters as --name value, SM_CHANNEL_* and SM_MODEL_DIR set), then with --wait a model
             and a batch transform job over the test channel.

`--dry-run` prints the whole plan (buckets, keys, API requests, SQL, commands) and calls nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from flightdelay.flow.modeling import CHANNELS  # the folders export_channels writes
from flightdelay.settings import Settings
from spark_prep import lake_snapshots

STEPS = ("stage", "catalog", "emr", "redshift", "sagemaker")
LAKE_TABLES = {  # Glue table -> (columns, partition keys); types as Spark writes them
    "hourly_observations": (
        [("wban_id", "string"), ("airport_code", "string"), ("temp_f", "double"), ("dew_point_f", "double"),
         ("relative_humidity_pct", "double"), ("wind_direction_deg", "double"), ("wind_speed_mph", "double"),
         ("wind_gust_mph", "double"), ("precip_in", "double"), ("sea_level_pressure_inhg", "double"),
         ("visibility_mi", "double"), ("is_variable_wind", "boolean"), ("has_trace_precip", "boolean"),
         ("has_suspect_value", "boolean"), ("unparsed_fields", "string"), ("implausible_fields", "string"),
         ("observed_at_lst", "timestamp"), ("observed_at_utc", "timestamp"), ("source_file", "string"),
         ("source_line", "bigint")],
        ["station_id", "observation_month"]),
    "daily_summaries": (
        [("wban_id", "string"), ("airport_code", "string"), ("tmax_f", "double"), ("tmin_f", "double"),
         ("precip_in", "double"), ("avg_wind_speed_mph", "double"), ("max_wind_gust_mph", "double"),
         ("min_visibility_mi", "double"), ("observation_count", "bigint"), ("summary_date", "date")],
        ["station_id", "observation_month"]),
}
# SageMaker's XGBoost framework container (script mode) per region; FLIGHTDELAY_SAGEMAKER_IMAGE overrides.
XGBOOST_IMAGE_ACCOUNTS = {"us-east-1": "683313688378", "us-east-2": "257758044811", "us-west-2": "246618743249",
                          "eu-west-1": "141502667606", "eu-central-1": "492215442770"}
XGBOOST_FRAMEWORK_VERSION = "1.7-1"
EMR_RELEASE = "emr-7.5.0"
GLUE_CATALOG_FACTORY = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
# The module the XGBoost framework container imports to serve (sagemaker_xgboost_container.serving: it imports
# SAGEMAKER_PROGRAM without `.py` from the unpacked SAGEMAKER_SUBMIT_DIRECTORY, and its handler service takes
# model_fn / input_fn / predict_fn / output_fn from that module). serve.py defines them; train.py does not.
SERVING_PROGRAM = "serve.py"
MULTIPART_THRESHOLD = 64 * 1024 * 1024
POINTER_KEY = f"lake/weather/{lake_snapshots.POINTER}"  # which run's copy of each lake table is committed


@dataclass(frozen=True)
class DeployConfig:
    bucket: str
    cluster_id: str | None
    role_arn: str  # SageMaker execution role; also Redshift's COPY/Spectrum role unless redshift_role_arn
    region: str = "us-east-1"
    glue_database: str = "flightdelay_lake"
    redshift_role_arn: str | None = None
    transient: bool = False
    emr_service_role: str = "EMR_DefaultRole"
    emr_instance_profile: str = "EMR_EC2_DefaultRole"
    instance_type: str = "ml.m5.xlarge"
    job_name: str = "flightdelay-xgboost"
    training_job_name: str | None = None  # for the transform part of the sagemaker step
    with_local_lake: bool = False
    wait: bool = False

    @property
    def copy_role(self) -> str:
        return self.redshift_role_arn or self.role_arn

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


@dataclass
class Plan:
    """Every action the deploy takes, in order: what --dry-run prints and what execution performs."""
    uploads: list[tuple[Path | bytes, str]] = field(default_factory=list)  # (local file or bytes, key)
    calls: list[tuple[str, str, dict]] = field(default_factory=list)  # (service, operation, request)
    sql: list[str] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)

    def render(self, bucket: str) -> str:
        lines = []
        if self.uploads:
            lines.append("# S3 uploads (SHA-256 checksums; multipart above 64 MiB)")
            lines += [f"put s3://{bucket}/{key}  <- {source if isinstance(source, Path) else f'({len(source)} bytes)'}"
                      for source, key in self.uploads]
        for service, operation, request in self.calls:
            lines.append(f"# {service}.{operation}")
            lines.append(json.dumps(request, indent=2, default=str))
        if self.sql:
            lines.append("# Redshift SQL")
            lines += [statement + ";" for statement in self.sql]
        for command in self.commands:
            lines.append("# command")
            lines.append(" ".join(command))
        return "\n".join(lines)


# ---------------------------------------------------------------- plan


def _month_of(name: str) -> str:
    match = re.search(r"(\d{4})[_-](\d{1,2})(?!\d)", name)
    return f"year={match.group(1)}/month={int(match.group(2)):02d}" if match else "undated"


def _numbered_keys(name: str) -> tuple[str, str]:
    """(numbered copy, its COPY manifest) of a BTS file. Both under staging/bts_numbered/, the prefix the Redshift
    role may read (deploy/iam); the manifests in a folder of their own, apart from the data."""
    month = _month_of(name)
    return f"staging/bts_numbered/{month}/{name}", f"staging/bts_numbered/manifests/{month}/{name}.manifest"


def plan_stage(settings: Settings, config: DeployConfig) -> Plan:
    from flightdelay.aws.redshift_load import copy_manifest, numbered_copy

    plan = Plan()
    plan.calls.append(("s3", "create_bucket_if_missing", {"Bucket": config.bucket, "Region": config.region}))
    for path in sorted(settings.flights_raw_dir.glob("*.csv")):
        key = f"raw/bts/{_month_of(path.name)}/{path.name}"
        plan.uploads.append((path, key))
        numbered_key, manifest_key = _numbered_keys(path.name)
        plan.uploads.append((numbered_copy(path.read_bytes()), numbered_key))
        plan.uploads.append((copy_manifest(config.uri(numbered_key)), manifest_key))
    for folder, prefix in ((settings.weather_raw_dir, "raw/lcd"), (settings.cdo_daily_raw_dir, "raw/cdo"),
                           (settings.ghcn_daily_raw_dir, "raw/ghcn")):
        plan.uploads += [(path, f"{prefix}/{path.name}") for path in sorted(folder.glob("*")) if path.is_file()]
    plan.uploads.append((settings.seeds_dir / "airport_weather_stations.csv",
                         "raw/reference/airport_weather_stations.csv"))
    from spark_prep import PY_FILES, PY_PACKAGES, package_zip

    spark_prep = settings.project_root / "spark_prep"
    plan.uploads += [(spark_prep / name, f"code/spark_prep/{name}") for name in ("weather_job.py", *PY_FILES)]
    plan.uploads += [(package_zip(settings.project_root, name), f"code/spark_prep/{name}.zip") for name in PY_PACKAGES]
    plan.uploads.append((_sourcedir_tarball(settings), "code/ml/sourcedir.tar.gz"))
    for channel in CHANNELS:
        plan.uploads += [(path, f"ml/channels/{channel}/{path.name}")
                         for path in sorted((settings.ml_dir / "channels" / channel).glob("*.parquet"))]
    if config.with_local_lake:
        lake = settings.lake_dir / "weather"
        snapshot = lake_snapshots.read_local(lake)
        if snapshot is None:
            raise RuntimeError(f"--with-local-lake: {lake} has no committed `flightdelay prep` run; run it first")
        folders = {table: snapshot.folder(table) for table in LAKE_TABLES}
        for folder in folders.values():
            plan.uploads += [(path, f"lake/weather/{path.relative_to(lake).as_posix()}")
                             for path in sorted((lake / folder).rglob("*.parquet"))]
        # the pointer last, naming only what was uploaded: a reader of the bucket sees the new copy once whole
        shipped = lake_snapshots.Snapshot(snapshot.run_id, snapshot.committed_at, folders, None)
        plan.uploads.append((shipped.dumps().encode(), f"lake/weather/{lake_snapshots.POINTER}"))
    return plan


def _sourcedir_tarball(settings: Settings) -> bytes:
    """ml/ as SageMaker script mode expects it: a sourcedir.tar.gz with the entry point train.py and every
    module beside it that train.py and serve.py import (all ml/*.py, side by side at the archive root, as
    they import each other without the `ml` package), ml/hyperparameters.json (train.py's defaults), and
    raw_contracts/ranges.py as the package raw_contracts/ (ml/feature_ranges.py, which serve.py imports,
    reads the measured ranges from it; pure Python, no dependencies). The same bytes every deploy: files
    in sorted order, fixed mtime, owner and mode, and no timestamp in the gzip header."""
    import gzip
    import io

    root = settings.project_root
    members = [(path.name, path) for path in sorted((root / "ml").glob("*.py")) if path.name != "__init__.py"]
    if (root / "ml" / "hyperparameters.json").exists():
        members.append(("hyperparameters.json", root / "ml" / "hyperparameters.json"))
    members += [(f"raw_contracts/{name}", root / "raw_contracts" / name) for name in ("__init__.py", "ranges.py")]
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, path in sorted(members):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, fileobj=io.BytesIO(data))
    return buffer.getvalue()


def glue_table_input(config: DeployConfig, table: str, folder: str) -> dict:
    """A lake table for Glue, at `folder` (its committed copy, e.g. hourly_observations/run-<id>)."""
    columns, partition_keys = LAKE_TABLES[table]
    return {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": "parquet"},
        "PartitionKeys": [{"Name": name, "Type": "string"} for name in partition_keys],
        "StorageDescriptor": {
            "Columns": [{"Name": name, "Type": kind} for name, kind in columns],
            "Location": config.uri(f"lake/weather/{folder}/"),
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
    }


def plan_catalog(config: DeployConfig) -> Plan:
    plan = Plan()
    plan.calls.append(("glue", "create_database", {"DatabaseInput": {
        "Name": config.glue_database, "Description": "flightdelay weather lake (Hive external Parquet tables)",
        "LocationUri": config.uri("lake/weather/")}}))
    for table in LAKE_TABLES:
        plan.calls.append(("glue", "create_table", {"DatabaseName": config.glue_database,
                                                    "TableInput": glue_table_input(
                                                        config, table, f"{table}/<run-id from {POINTER_KEY}>")}))
        plan.calls.append(("glue", "batch_create/update/delete_partition (the partitions found under the table's "
                           "committed copy, 100 per request)", {"DatabaseName": config.glue_database,
                                                                "TableName": table}))
    return plan


def spark_submit_args(config: DeployConfig) -> list[str]:
    from spark_prep import PY_FILES, PY_PACKAGES

    py_files = [*PY_FILES, *[f"{name}.zip" for name in PY_PACKAGES]]  # as plan_stage uploads them
    return [
        "spark-submit", "--deploy-mode", "cluster",
        "--py-files", ",".join(config.uri(f"code/spark_prep/{name}") for name in py_files),
        config.uri("code/spark_prep/weather_job.py"),
        "--raw-weather", config.uri("raw/lcd/"),
        "--stations", config.uri("raw/reference/airport_weather_stations.csv"),
        "--lake", config.uri("lake"),
        "--database", config.glue_database,
        "--metastore", "external",
    ]


def emr_step(config: DeployConfig) -> dict:
    return {
        "Name": "flightdelay weather prep",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": spark_submit_args(config)},
    }


def plan_emr(config: DeployConfig) -> Plan:
    plan = Plan()
    if config.transient:
        plan.calls.append(("emr", "run_job_flow", {
            "Name": "flightdelay-weather-prep",
            "ReleaseLabel": EMR_RELEASE,
            "Applications": [{"Name": "Spark"}],
            "LogUri": config.uri("logs/emr/"),
            "Configurations": [
                {"Classification": "spark-hive-site",
                 "Properties": {"hive.metastore.client.factory.class": GLUE_CATALOG_FACTORY}},
                {"Classification": "hive-site",
                 "Properties": {"hive.metastore.client.factory.class": GLUE_CATALOG_FACTORY}},
            ],
            "Instances": {
                "InstanceGroups": [
                    {"Name": "primary", "InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1},
                    {"Name": "core", "InstanceRole": "CORE", "InstanceType": "m5.xlarge", "InstanceCount": 2},
                ],
                "KeepJobFlowAliveWhenNoSteps": False,
            },
            "Steps": [emr_step(config)],
            "JobFlowRole": config.emr_instance_profile,
            "ServiceRole": config.emr_service_role,
            "VisibleToAllUsers": True,
        }))
    else:
        if not config.cluster_id:
            raise ValueError("the emr step needs --cluster-id (a running cluster) or --transient")
        plan.calls.append(("emr", "add_job_flow_steps", {"JobFlowId": config.cluster_id, "Steps": [emr_step(config)]}))
    return plan


def plan_redshift(settings: Settings, config: DeployConfig) -> Plan:
    """The tables, the Spectrum external schema, then one `begin` ... `commit` transaction per BTS file
    (`execute_redshift_sql` runs it as one). The external DDL comes first and outside any transaction: Redshift
    refuses CREATE EXTERNAL SCHEMA/TABLE and external ALTER TABLE inside a transaction block."""
    from flightdelay.aws.redshift_load import CopyJob, data_line_count, ddl, file_transaction
    from flightdelay.raw.load import read_header

    plan = Plan()
    plan.sql += ddl()
    plan.sql += spectrum_statements(settings, config)
    for path in sorted(settings.flights_raw_dir.glob("*.csv")):
        data = path.read_bytes()
        numbered_key, manifest_key = _numbered_keys(path.name)
        job = CopyJob(s3_uri=config.uri(numbered_key), manifest_uri=config.uri(manifest_key), source_file=path.name,
                      header=read_header(path), file_sha256=hashlib.sha256(data).hexdigest(),
                      rows_read=data_line_count(data))
        plan.sql += file_transaction(job, config.copy_role, config.region)
    plan.commands.append(["dbt", "build", "--target", "redshift", "--profiles-dir", str(settings.project_root),
                          "--project-dir", str(settings.project_root)])
    return plan


def spectrum_statements(settings: Settings, config: DeployConfig) -> list[str]:
    """The Spectrum external schema over the Glue database, rendered by the project's dbt macro."""
    dbt = Path(sys.executable).with_name("dbt")
    inline = ("{% for s in flight_delays.spectrum_setup_statements('" + config.glue_database + "', '"
              + config.copy_role + "', '" + config.region + "') %}{{ s }}\n-- end --\n{% endfor %}")
    with tempfile.TemporaryDirectory() as target:
        completed = subprocess.run(
            [str(dbt) if dbt.exists() else "dbt", "compile", "--quiet", "--target", "redshift", "--no-populate-cache",
             "--inline", inline, "--target-path", target, "--project-dir", str(settings.project_root),
             "--profiles-dir", str(settings.project_root)],
            env={**settings.dbt_env(), **_env_passthrough()}, cwd=settings.project_root, capture_output=True,
            text=True, timeout=300)
    if completed.returncode != 0:
        raise RuntimeError(f"rendering the Spectrum SQL failed: {completed.stdout[-2000:]}")
    return [part.strip() for part in completed.stdout.split("-- end --") if part.strip()]


def _env_passthrough() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME") or k.startswith("FLIGHTDELAY_")}


def xgboost_image(config: DeployConfig) -> str:
    import os

    if os.environ.get("FLIGHTDELAY_SAGEMAKER_IMAGE"):
        return os.environ["FLIGHTDELAY_SAGEMAKER_IMAGE"]
    account = XGBOOST_IMAGE_ACCOUNTS.get(config.region)
    if account is None:
        raise ValueError(f"no XGBoost image account known for {config.region}; set FLIGHTDELAY_SAGEMAKER_IMAGE")
    return f"{account}.dkr.ecr.{config.region}.amazonaws.com/sagemaker-xgboost:{XGBOOST_FRAMEWORK_VERSION}"


def training_hyperparameters(project_root: Path) -> dict[str, str]:
    """The versioned ml/hyperparameters.json, as local training passes them; SageMaker hands each to
    ml/train.py as `--name value`."""
    from flightdelay.flow.modeling import versioned_hyperparameters

    return {name: str(value) for name, value in versioned_hyperparameters(project_root).items()}


def model_trainer_arguments(config: DeployConfig, base_job_name: str, project_root: Path) -> dict:
    """What the sagemaker SDK's ModelTrainer is given, as plain data (the dry run prints it)."""
    return {
        "base_job_name": base_job_name,
        "role": config.role_arn,
        "training_image": xgboost_image(config),
        "source_code": {"source_dir": str(project_root / "ml"), "entry_script": "train.py"},
        "compute": {"instance_type": config.instance_type, "instance_count": 1, "volume_size_in_gb": 30},
        "hyperparameters": training_hyperparameters(project_root),
        "input_data_config": {channel: config.uri(f"ml/channels/{channel}/") for channel in CHANNELS},
        "output_data_config": {"s3_output_path": config.uri("ml/output/")},
        "stopping_condition": {"max_runtime_in_seconds": 3600},
        # the SDK uploads the code (and its own launcher) under this prefix, one folder per job
        "input_s3_key_prefix": "code/ml/model-trainer",
        "tags": {"project": "flightdelay"},
    }


def model_trainer(config: DeployConfig, base_job_name: str, project_root: Path, boto_session=None):
    """sagemaker 3.x ModelTrainer for ml/train.py. With `SAGEMAKER_VALIDATE_ROLE=false` the SDK takes the
    role ARN as given (offline tests have no IAM to look it up in)."""
    import boto3
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import (
        Compute,
        InputData,
        OutputDataConfig,
        SourceCode,
        StoppingCondition,
        Tag,
    )

    arguments = model_trainer_arguments(config, base_job_name, project_root)
    session = Session(boto_session=boto_session or boto3.session.Session(region_name=config.region),
                      default_bucket=config.bucket)
    return ModelTrainer(
        sagemaker_session=session,
        role=arguments["role"],
        base_job_name=arguments["base_job_name"],
        training_image=arguments["training_image"],
        source_code=SourceCode(**arguments["source_code"]),
        compute=Compute(**arguments["compute"]),
        hyperparameters=arguments["hyperparameters"],
        input_data_config=[InputData(channel_name=name, data_source=uri)
                           for name, uri in arguments["input_data_config"].items()],
        output_data_config=OutputDataConfig(**arguments["output_data_config"]),
        stopping_condition=StoppingCondition(**arguments["stopping_condition"]),
        input_s3_key_prefix=arguments["input_s3_key_prefix"],
        tags=[Tag(key=key, value=value) for key, value in arguments["tags"].items()],
    )


def serving_container(image: str, model_data_url: str, submit_directory: str, region: str) -> dict:
    """CreateModel's container: the framework image, the training job's model.tar.gz (unpacked to /opt/ml/model,
    what model_fn reads) and the code channel whose SERVING_PROGRAM the container imports to serve."""
    return {"Image": image, "ModelDataUrl": model_data_url,
            "Environment": {"SAGEMAKER_PROGRAM": SERVING_PROGRAM, "SAGEMAKER_SUBMIT_DIRECTORY": submit_directory,
                            "SAGEMAKER_REGION": region}}


def transform_requests(config: DeployConfig, training_job_name: str, model_data_url: str) -> list[tuple[str, dict]]:
    model_name = f"{training_job_name}-model"
    return [
        ("create_model", {
            "ModelName": model_name,
            "ExecutionRoleArn": config.role_arn,
            "PrimaryContainer": serving_container(xgboost_image(config), model_data_url,
                                                  config.uri("code/ml/sourcedir.tar.gz"), config.region),
        }),
        ("create_transform_job", {
            "TransformJobName": f"{training_job_name}-test-scores",
            "ModelName": model_name,
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                "S3Uri": config.uri("ml/channels/test/")}},
                               "ContentType": "application/x-parquet"},
            "TransformOutput": {"S3OutputPath": config.uri(f"ml/predictions/{training_job_name}/")},
            "TransformResources": {"InstanceType": config.instance_type, "InstanceCount": 1},
        }),
    ]


def plan_sagemaker(settings: Settings, config: DeployConfig, job_name: str) -> Plan:
    plan = Plan()
    plan.calls.append(("sagemaker", "ModelTrainer.train (sagemaker SDK: uploads the code, then CreateTrainingJob "
                       f"named {job_name}-<timestamp>)",
                       model_trainer_arguments(config, job_name, settings.project_root)))
    training_job = f"{job_name}-<timestamp>"
    model_data = config.uri(f"ml/output/{training_job}/output/model.tar.gz")
    for operation, request in transform_requests(config, training_job, model_data):
        plan.calls.append(("sagemaker", operation + (" (after the training job completes)"), request))
    return plan


def build_plan(settings: Settings, config: DeployConfig, steps: tuple[str, ...], job_name: str) -> dict[str, Plan]:
    builders = {
        "stage": lambda: plan_stage(settings, config),
        "catalog": lambda: plan_catalog(config),
        "emr": lambda: plan_emr(config),
        "redshift": lambda: plan_redshift(settings, config),
        "sagemaker": lambda: plan_sagemaker(settings, config, job_name),
    }
    return {step: builders[step]() for step in steps}


# ---------------------------------------------------------------- execute


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def upload(s3, config: DeployConfig, source: Path | bytes, key: str) -> dict:
    """Multipart above 64 MiB (boto3's transfer manager), a SHA-256 checksum that S3 verifies on receipt."""
    from boto3.s3.transfer import TransferConfig

    if isinstance(source, bytes):
        s3.put_object(Bucket=config.bucket, Key=key, Body=source, ChecksumSHA256=_sha256_b64(source))
        return {"key": key, "bytes": len(source)}
    s3.upload_file(str(source), config.bucket, key, ExtraArgs={"ChecksumAlgorithm": "SHA256"},
                   Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD,
                                         multipart_chunksize=MULTIPART_THRESHOLD))
    return {"key": key, "bytes": source.stat().st_size}


def _ensure_bucket(s3, config: DeployConfig) -> None:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=config.bucket)
    except ClientError:
        request = {"Bucket": config.bucket}
        if config.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": config.region}
        s3.create_bucket(**request)


def committed_lake(s3, config: DeployConfig) -> lake_snapshots.Snapshot | None:
    """The lake's committed snapshot in the bucket (written by the EMR step, or by stage --with-local-lake);
    None before the first commit."""
    try:
        body = s3.get_object(Bucket=config.bucket, Key=POINTER_KEY)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return lake_snapshots.parse(body.decode("utf-8", errors="replace"), config.uri(POINTER_KEY))


def _lake_partitions(s3, config: DeployConfig, table: str, folder: str) -> list[dict]:
    prefix = f"lake/weather/{folder}/"
    found = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=config.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            match = re.match(r"station_id=([^/]+)/observation_month=([^/]+)/", item["Key"][len(prefix):])
            if match:
                found.add(match.groups())
    return [{"Values": [station, month], "StorageDescriptor": {
        **glue_table_input(config, table, folder)["StorageDescriptor"],
        "Location": config.uri(f"{prefix}station_id={station}/observation_month={month}/")}}
        for station, month in sorted(found)]


def sync_glue_partitions(glue, config: DeployConfig, table: str, wanted: list[dict]) -> int:
    """Make the table's Glue partitions exactly `wanted`: a partition already registered gets the new copy's
    location (else it would go on reading the previous run's folder), new ones are created, gone ones dropped."""
    existing = {tuple(p["Values"]) for page in glue.get_paginator("get_partitions").paginate(
        DatabaseName=config.glue_database, TableName=table) for p in page["Partitions"]}
    update = [p for p in wanted if tuple(p["Values"]) in existing]
    create = [p for p in wanted if tuple(p["Values"]) not in existing]
    drop = sorted(existing - {tuple(p["Values"]) for p in wanted})
    errors = []
    for start in range(0, len(update), 100):
        errors += glue.batch_update_partition(DatabaseName=config.glue_database, TableName=table, Entries=[
            {"PartitionValueList": p["Values"], "PartitionInput": p} for p in update[start:start + 100]]).get(
            "Errors", [])
    for start in range(0, len(create), 100):
        errors += glue.batch_create_partition(DatabaseName=config.glue_database, TableName=table,
                                              PartitionInputList=create[start:start + 100]).get("Errors", [])
    for start in range(0, len(drop), 25):  # Glue deletes at most 25 per request
        errors += glue.batch_delete_partition(DatabaseName=config.glue_database, TableName=table,
                                              PartitionsToDelete=[{"Values": list(v)} for v in drop[start:start + 25]]
                                              ).get("Errors", [])
    if errors:
        raise RuntimeError(f"glue partitions for {table}: {errors[:3]}")
    return len(wanted)


def execute(settings: Settings, config: DeployConfig, plans: dict[str, Plan], job_name: str) -> dict[str, object]:
    import boto3

    session = boto3.session.Session(region_name=config.region)
    facts: dict[str, object] = {}
    if "stage" in plans:
        s3 = session.client("s3")
        _ensure_bucket(s3, config)
        uploaded = [upload(s3, config, source, key) for source, key in plans["stage"].uploads]
        facts["stage: objects uploaded"] = len(uploaded)
    if "catalog" in plans:
        glue, s3 = session.client("glue"), session.client("s3")
        try:
            glue.create_database(DatabaseInput=plans["catalog"].calls[0][2]["DatabaseInput"])
        except glue.exceptions.AlreadyExistsException:
            pass
        snapshot = committed_lake(s3, config)
        partitions = 0
        for table in LAKE_TABLES if snapshot else ():
            table_input = glue_table_input(config, table, snapshot.folder(table))
            try:
                glue.create_table(DatabaseName=config.glue_database, TableInput=table_input)
            except glue.exceptions.AlreadyExistsException:
                glue.update_table(DatabaseName=config.glue_database, TableInput=table_input)
            partitions += sync_glue_partitions(glue, config, table,
                                               _lake_partitions(s3, config, table, snapshot.folder(table)))
        facts["catalog: lake run"] = snapshot.run_id if snapshot else (
            f"none yet ({config.uri(POINTER_KEY)} is missing): the EMR step registers its tables in Glue itself")
        facts["catalog: partitions registered"] = partitions
    if "emr" in plans:
        emr = session.client("emr")
        service, operation, request = plans["emr"].calls[0]
        response = getattr(emr, operation)(**request)
        facts["emr"] = response.get("StepIds") or response.get("JobFlowId")
    if "redshift" in plans:
        facts["redshift: statements"] = _run_redshift(settings, plans["redshift"])
    if "sagemaker" in plans:
        sagemaker = session.client("sagemaker")
        if config.training_job_name:
            facts["sagemaker: transform"] = _transform(sagemaker, config, config.training_job_name)
        else:
            trainer = model_trainer(config, job_name, settings.project_root, session)
            trainer.train(wait=False, logs=False)
            # the SDK names the job <base name>-<timestamp> and keeps it on the trainer
            training_job = trainer._latest_training_job.training_job_name
            facts["sagemaker: training job"] = training_job
            if config.wait:
                sagemaker.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=training_job)
                facts["sagemaker: transform"] = _transform(sagemaker, config, training_job)
    return facts


def _transform(sagemaker, config: DeployConfig, training_job_name: str) -> str:
    described = sagemaker.describe_training_job(TrainingJobName=training_job_name)
    model_data = described.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if not model_data:
        raise RuntimeError(f"training job {training_job_name} has no model artifacts "
                           f"(status {described.get('TrainingJobStatus')})")
    for operation, request in transform_requests(config, training_job_name, model_data):
        getattr(sagemaker, operation)(**request)
    return f"{training_job_name}-test-scores"


def _sql_units(statements: list[str]) -> list[tuple[bool, list[str]]]:
    """(is a transaction, its statements): each `begin` ... `commit` span is one unit, every other statement
    one of its own."""
    from flightdelay.aws.redshift_load import BEGIN, COMMIT

    units: list[tuple[bool, list[str]]] = []
    opened: int | None = None  # position of the open `begin`
    for position, statement in enumerate(statements, start=1):
        word = statement.strip().lower()
        if word == BEGIN:
            if opened is not None:
                raise ValueError(f"Redshift SQL statement {position}: expected `{COMMIT}` to close the `{BEGIN}` "
                                 f"of statement {opened}, found another `{BEGIN}`")
            opened = position
            units.append((True, []))
        elif word == COMMIT:
            if opened is None:
                raise ValueError(f"Redshift SQL statement {position}: found `{COMMIT}` with no `{BEGIN}` open")
            opened = None
        elif opened is not None:
            units[-1][1].append(statement)
        else:
            units.append((False, [statement]))
    if opened is not None:
        raise ValueError(f"Redshift SQL: expected `{COMMIT}` for the `{BEGIN}` of statement {opened}, "
                         f"found the end of the {len(statements)} statements")
    return units


def execute_redshift_sql(connection, statements: list[str]) -> int:
    """Run the plan's SQL on a DB-API connection (redshift_connector; psycopg2 in the tests) and return how many
    statements ran. A `begin` ... `commit` span runs as one real transaction: autocommit off, commit at its end,
    rollback on any error, so a file's load either replaces all of its rows or leaves the previous load as it
    was. The statements outside a span run with autocommit on: Redshift refuses the Spectrum DDL (external
    schema and tables) inside a transaction block, and the `create ... if not exists` tables need none."""
    from flightdelay.aws.redshift_load import COMMIT

    ran = 0
    for transactional, unit in _sql_units(statements):
        connection.autocommit = not transactional
        cursor = connection.cursor()
        statement = ""
        try:
            for statement in unit:
                cursor.execute(statement)
                ran += 1
            if transactional:
                statement = COMMIT  # Redshift can refuse the commit itself (serializable isolation)
                connection.commit()
        except Exception as error:
            if not transactional:
                raise RuntimeError(f"Redshift statement failed: {statement[:300]}: {error}") from error
            connection.rollback()
            connection.autocommit = True  # the connection is left as it was found, whatever the caller does next
            # the first statement of a file's transaction deletes by its source_file: it names the file
            raise RuntimeError(
                f"Redshift transaction rolled back, the previous rows are kept: failed at {statement[:300]}: "
                f"{error} (the transaction begins with: {unit[0][:300] if unit else '(empty)'})"
            ) from error
    connection.autocommit = True
    return ran


def _run_redshift(settings: Settings, plan: Plan) -> int:
    import os

    import redshift_connector

    connection = redshift_connector.connect(
        host=os.environ["FLIGHTDELAY_REDSHIFT_HOST"], database=os.environ.get("FLIGHTDELAY_REDSHIFT_DATABASE",
                                                                              "flight_delays"),
        port=int(os.environ.get("FLIGHTDELAY_REDSHIFT_PORT", "5439")), user=os.environ["FLIGHTDELAY_REDSHIFT_USER"],
        password=os.environ.get("FLIGHTDELAY_REDSHIFT_PASSWORD", ""))
    try:
        ran = execute_redshift_sql(connection, plan.sql)
    finally:
        connection.close()
    for command in plan.commands:
        subprocess.run(command, check=True, cwd=settings.project_root,
                       env={**os.environ, "FLIGHTDELAY_DBT_TARGET": "redshift"})
    return ran
