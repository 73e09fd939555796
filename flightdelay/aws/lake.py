"""The lake on AWS: the weather files and the Spark job in S3, the job as an EMR step, its tables in the Glue
Data Catalog (from spark_prep/lake_schema.py, the one definition of their columns), Spectrum over them."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from flightdelay.aws.plan import AwsCall, FromResponse, Sql, Wait
from flightdelay.aws.settings import AwsSettings
from flightdelay.aws.staging import upload
from flightdelay.settings import Settings
from spark_prep import lake_schema, lake_snapshots

EMR_RELEASE = "emr-7.5.0"
GLUE_CATALOG_FACTORY = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
POINTER_KEY = f"lake/weather/{lake_snapshots.POINTER}"  # which run's copy of each lake table is committed
GLUE_PARTITIONS_PER_CALL = 100


def weather_uploads(settings: Settings, aws: AwsSettings) -> list[AwsCall]:
    calls = []
    for folder, prefix in ((settings.weather_raw_dir, "raw/lcd"), (settings.cdo_daily_raw_dir, "raw/cdo"),
                           (settings.ghcn_daily_raw_dir, "raw/ghcn")):
        calls += [upload(aws, path, f"{prefix}/{path.name}") for path in sorted(folder.glob("*")) if path.is_file()]
    calls.append(upload(aws, settings.seeds_dir / "airport_weather_stations.csv",
                        "raw/reference/airport_weather_stations.csv"))
    return calls


def glue_table_input(aws: AwsSettings, table: str, folder: str) -> dict:
    """A lake table for Glue, at `folder` (its committed copy, e.g. hourly_observations/run-<id>)."""
    return {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": "parquet"},
        "PartitionKeys": [{"Name": key.name, "Type": key.type} for key in lake_schema.PARTITION_KEYS],
        "StorageDescriptor": {
            "Columns": [{"Name": column.name, "Type": column.type} for column in lake_schema.TABLES[table]],
            "Location": aws.uri(f"lake/weather/{folder}/"),
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
    }


def glue_database(aws: AwsSettings) -> AwsCall:
    return AwsCall("glue", "create_database", {"DatabaseInput": {
        "Name": aws.glue_database, "Description": "flightdelay weather lake (Hive external Parquet tables)",
        "LocationUri": aws.uri("lake/weather/")}}, tolerate=("AlreadyExistsException",))


def local_lake(settings: Settings, aws: AwsSettings) -> list[AwsCall]:
    """--with-local-lake: the locally committed copy of each table, the pointer last (a reader of the bucket sees
    the new copy once whole), then its Glue tables and every partition, all known before anything is called."""
    lake = settings.lake_dir / "weather"
    snapshot = lake_snapshots.read_local(lake)
    if snapshot is None:
        raise RuntimeError(f"--with-local-lake: {lake} has no committed `flightdelay prep` run; run it first")
    folders = {table: snapshot.folder(table) for table in lake_schema.TABLES}
    calls = [upload(aws, path, f"lake/weather/{path.relative_to(lake).as_posix()}")
             for folder in folders.values() for path in sorted((lake / folder).rglob("*.parquet"))]
    shipped = lake_snapshots.Snapshot(snapshot.run_id, snapshot.committed_at, folders, None)
    calls.append(upload(aws, shipped.dumps().encode(), POINTER_KEY))
    for table, folder in folders.items():
        table_input = glue_table_input(aws, table, folder)
        calls.append(AwsCall("glue", "create_table", {"DatabaseName": aws.glue_database, "TableInput": table_input},
                             tolerate=("AlreadyExistsException",),
                             fallback=AwsCall("glue", "update_table", {"DatabaseName": aws.glue_database,
                                                                       "TableInput": table_input})))
        partitions = sorted({path.parent.relative_to(lake / folder).as_posix()
                             for path in (lake / folder).rglob("*.parquet")})
        inputs = [{"Values": [part.split("=", 1)[1] for part in relative.split("/")],
                   "StorageDescriptor": {**table_input["StorageDescriptor"],
                                         "Location": aws.uri(f"lake/weather/{folder}/{relative}/")}}
                  for relative in partitions]
        for start in range(0, len(inputs), GLUE_PARTITIONS_PER_CALL):
            batch = inputs[start:start + GLUE_PARTITIONS_PER_CALL]
            # new partitions are created; those already registered get the new copy's location
            calls.append(AwsCall("glue", "batch_create_partition", {
                "DatabaseName": aws.glue_database, "TableName": table, "PartitionInputList": batch},
                tolerate=("AlreadyExistsException",)))
            calls.append(AwsCall("glue", "batch_update_partition", {
                "DatabaseName": aws.glue_database, "TableName": table,
                "Entries": [{"PartitionValueList": p["Values"], "PartitionInput": p} for p in batch]}))
    return calls


def spark_submit_args(aws: AwsSettings) -> list[str]:
    from spark_prep import PY_PACKAGES

    py_files = [f"{name}.zip" for name in PY_PACKAGES]  # as staging.code_uploads puts them
    return [
        "spark-submit", "--deploy-mode", "cluster",
        "--py-files", ",".join(aws.uri(f"code/spark_prep/{name}") for name in py_files),
        aws.uri("code/spark_prep/weather_job.py"),
        "--raw-weather", aws.uri("raw/lcd/"),
        "--stations", aws.uri("raw/reference/airport_weather_stations.csv"),
        "--lake", aws.uri("lake"),
        "--database", aws.glue_database,
        "--metastore", "external",
    ]


def emr_step(aws: AwsSettings, action_on_failure: str = "CONTINUE") -> dict:
    return {"Name": "flightdelay weather prep", "ActionOnFailure": action_on_failure,
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": spark_submit_args(aws)}}


def emr_actions(aws: AwsSettings) -> list[AwsCall | Wait]:
    """The weather job as a step on the running cluster, then wait for it; or a transient cluster with the Glue
    catalog as its metastore that ends after the step (a failed step ends it with errors, which the wait reports)."""
    if aws.transient:
        return [AwsCall("emr", "run_job_flow", {
            "Name": "flightdelay-weather-prep",
            "ReleaseLabel": EMR_RELEASE,
            "Applications": [{"Name": "Spark"}],
            "LogUri": aws.uri("logs/emr/"),
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
            "Steps": [emr_step(aws, "TERMINATE_CLUSTER")],
            "JobFlowRole": aws.emr_instance_profile,
            "ServiceRole": aws.emr_service_role,
            "VisibleToAllUsers": True,
        }, saves="emr cluster"),
            Wait("emr", "cluster_terminated", {"ClusterId": FromResponse("emr cluster", ("JobFlowId",))})]
    if not aws.cluster_id:
        raise ValueError("prep on aws needs an EMR cluster: FLIGHTDELAY_AWS_EMR_CLUSTER_ID / --cluster-id, "
                         "or --transient")
    return [AwsCall("emr", "add_job_flow_steps", {"JobFlowId": aws.cluster_id, "Steps": [emr_step(aws)]},
                    saves="emr step"),
            Wait("emr", "step_complete", {"ClusterId": aws.cluster_id,
                                          "StepId": FromResponse("emr step", ("StepIds", 0))})]


def spectrum_sql(settings: Settings, aws: AwsSettings) -> Sql:
    """The Spectrum external schema over the Glue database, rendered by the project's dbt macro; outside any
    transaction, as Redshift requires for external DDL."""
    # pasted into a Jinja call below: only values of their documented shapes, never a quote or a `{{`
    for value, shape in ((aws.glue_database, r"[A-Za-z0-9_]{1,255}"), (aws.region, r"[a-z]{2}(-[a-z]+)+-[0-9]"),
                         (aws.copy_role, r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")):
        if not re.fullmatch(shape, value):
            raise ValueError(f"{value!r} is not a valid AWS name of its kind (expected {shape}); "
                             "check FLIGHTDELAY_AWS_*")
    dbt = Path(sys.executable).with_name("dbt")
    inline = ("{% for s in flight_delays.spectrum_setup_statements('" + aws.glue_database + "', '"
              + aws.copy_role + "', '" + aws.region + "') %}{{ s }}\n-- end --\n{% endfor %}")
    with tempfile.TemporaryDirectory() as target:
        completed = subprocess.run(
            [str(dbt) if dbt.exists() else "dbt", "compile", "--quiet", "--target", "redshift", "--no-populate-cache",
             "--inline", inline, "--target-path", target, "--project-dir", str(settings.project_root),
             "--profiles-dir", str(settings.project_root)],
            env={**settings.dbt_env(), **_env_passthrough()}, cwd=settings.project_root, capture_output=True,
            text=True, timeout=300)
    if completed.returncode != 0:
        raise RuntimeError(f"rendering the Spectrum SQL failed: {completed.stdout[-2000:]}")
    statements = tuple(part.strip() for part in completed.stdout.split("-- end --") if part.strip())
    return Sql(statements, title="Spectrum external schema over the Glue database")


def _env_passthrough() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME") or k.startswith("FLIGHTDELAY_")}
