"""`flightdelay deploy` against a real moto_server on 127.0.0.1 (control plane only: moto runs no EMR step
and trains no model), the Redshift COPY SQL parsed with sqlglot, and the IAM documents."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import sqlglot
from sqlglot import exp

from spark_prep import lake_snapshots
from tests.conftest import PROJECT_ROOT, FlowRun

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::123456789012:role/flightdelay-sagemaker"
BUCKET = "flightdelay-test-bucket"


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory) -> dict[str, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("moto_server did not start")
    yield {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
           # the sagemaker SDK would look the role up in IAM; moto holds no such role
           "SAGEMAKER_VALIDATE_ROLE": "false"}
    server.terminate()
    server.wait(timeout=10)


def client(env: dict[str, str], service: str):
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flightdelay.cli", "deploy", *args], env={**os.environ, **env},
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)


def test_deploy_requests_against_moto(january_run: FlowRun, moto_server: dict[str, str]):
    assert january_run.first.returncode == 0
    env = {**january_run.env, **moto_server}
    emr = client(moto_server, "emr")
    cluster_id = emr.run_job_flow(
        Name="existing", ReleaseLabel="emr-7.5.0", Applications=[{"Name": "Spark"}],
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole")["JobFlowId"]

    done = cli(env, "--bucket", BUCKET, "--cluster-id", cluster_id, "--role-arn", ROLE, "--with-local-lake",
               "--only", "stage", "--only", "catalog", "--only", "emr", "--only", "sagemaker",
               "--job-name", "flightdelay-xgboost-test")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # S3: raw files by source and month, with the checksum S3 verified on receipt
    s3 = client(moto_server, "s3")
    keys = {item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for item in page.get("Contents", [])}
    raw_bts = Path(january_run.env["FLIGHTDELAY_RAW"]) / "bts" / "bts_ontime_2013_01.csv"
    key = "raw/bts/year=2013/month=01/bts_ontime_2013_01.csv"
    assert key in keys
    head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(raw_bts.read_bytes()).digest()).decode()
    numbered = s3.get_object(Bucket=BUCKET, Key="staging/bts_numbered/year=2013/month=01/bts_ontime_2013_01.csv")
    first, second = numbered["Body"].read().decode().splitlines()[:2]
    assert first.startswith("SOURCE_LINE,FL_DATE,") and second.startswith("2,")
    # Redshift COPY reads this manifest, not the key, which it would take as a prefix of every key it starts
    manifest = s3.get_object(Bucket=BUCKET, Key="staging/bts_numbered/manifests/year=2013/month=01/"
                             "bts_ontime_2013_01.csv.manifest")
    assert json.loads(manifest["Body"].read()) == {"entries": [
        {"url": f"s3://{BUCKET}/staging/bts_numbered/year=2013/month=01/bts_ontime_2013_01.csv", "mandatory": True}]}
    shipped = ["code/spark_prep/cdo_daily.py", "code/spark_prep/ghcn_daily.py", "code/spark_prep/lake_snapshots.py",
               "code/spark_prep/lake_tables.py", "code/spark_prep/lcd_hourly.py", "code/spark_prep/lcd_quarantine.py",
               "code/spark_prep/lcd_records.py", "code/spark_prep/raw_contracts.zip"]
    assert {"code/spark_prep/weather_job.py", *shipped, "code/ml/sourcedir.tar.gz",
            "raw/reference/airport_weather_stations.csv", "ml/channels/train/part-0000.parquet"} <= keys
    assert any(k.startswith("raw/lcd/LCD_74486094789") for k in keys)

    # Glue: database, both lake tables, one partition per local partition folder
    glue = client(moto_server, "glue")
    assert glue.get_database(Name="flightdelay_lake")["Database"]["Name"] == "flightdelay_lake"
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="flightdelay_lake")["TableList"]}
    assert set(tables) == {"hourly_observations", "daily_summaries"}
    hourly = tables["hourly_observations"]
    assert [k["Name"] for k in hourly["PartitionKeys"]] == ["station_id", "observation_month"]
    weather = Path(january_run.env["FLIGHTDELAY_LAKE"]) / "weather"
    committed = lake_snapshots.read_local(weather).folder("hourly_observations")  # e.g. hourly_observations/run-<id>
    assert hourly["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/lake/weather/{committed}/"
    local = sorted((weather / committed).glob("*/*"))
    partitions = glue.get_partitions(DatabaseName="flightdelay_lake", TableName="hourly_observations")["Partitions"]
    assert len(partitions) == len(local) > 0
    assert {tuple(p["Values"]) for p in partitions} == {
        (station.name.split("=")[1], month.split("=")[1]) for station, month in
        ((p.parent, p.name) for p in local)}

    # EMR: the spark-submit step on the running cluster, with the S3 URIs of code, input and lake
    [step] = emr.list_steps(ClusterId=cluster_id)["Steps"]
    args = step["Config"]["Args"]
    assert step["Name"] == "flightdelay weather prep" and step["Config"]["Jar"] == "command-runner.jar"
    assert args[:4] == ["spark-submit", "--deploy-mode", "cluster", "--py-files"]
    # everything weather_job.py imports from the project ships with it, and is in the bucket
    assert args[4].split(",") == [f"s3://{BUCKET}/{key}" for key in shipped]
    assert args[args.index("--raw-weather") + 1] == f"s3://{BUCKET}/raw/lcd/"
    assert args[args.index("--lake") + 1] == f"s3://{BUCKET}/lake"
    assert args[args.index("--metastore") + 1] == "external"
    assert f"s3://{BUCKET}/code/spark_prep/weather_job.py" in args

    # SageMaker: the SDK's ModelTrainer, the XGBoost image, the very same ml/train.py and ml/hyperparameters.json
    sagemaker = client(moto_server, "sagemaker")
    [summary] = sagemaker.list_training_jobs(NameContains="flightdelay-xgboost-test")["TrainingJobSummaries"]
    job_name = summary["TrainingJobName"]
    assert f"sagemaker: training job: {job_name}" in done.stdout
    job = sagemaker.describe_training_job(TrainingJobName=job_name)
    assert job["RoleArn"] == ROLE
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("/sagemaker-xgboost:1.7-1")
    versioned = json.loads((PROJECT_ROOT / "ml" / "hyperparameters.json").read_text())
    hyper = {name: json.loads(value) if value[:1] in '"[{' else value for name, value in job["HyperParameters"].items()}
    assert {name: str(hyper[name]) for name in versioned} == {name: str(value) for name, value in versioned.items()}
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert {name: channels[name] for name in ("train", "validation", "test")} == {
        name: f"s3://{BUCKET}/ml/channels/{name}/" for name in ("train", "validation", "test")}
    # the SDK uploaded ml/ as the code channel: train.py byte for byte
    code = channels["code"].removeprefix(f"s3://{BUCKET}/")
    assert code.startswith("code/ml/model-trainer/")
    uploaded = s3.get_object(Bucket=BUCKET, Key=f"{code}/train.py")["Body"].read()
    assert uploaded == (PROJECT_ROOT / "ml" / "train.py").read_bytes()
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/ml/output/"

    # batch transform from the finished job (moto marks jobs Completed at once; no model is trained)
    transform = cli(env, "--bucket", BUCKET, "--role-arn", ROLE, "--only", "sagemaker",
                    "--training-job-name", job_name)
    assert transform.returncode == 0, transform.stdout[-3000:] + transform.stderr[-3000:]
    model = sagemaker.describe_model(ModelName=f"{job_name}-model")
    assert model["PrimaryContainer"]["ModelDataUrl"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert model["ExecutionRoleArn"] == ROLE
    scores = sagemaker.describe_transform_job(TransformJobName=f"{job_name}-test-scores")
    assert scores["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/ml/channels/test/"
    assert scores["TransformOutput"]["S3OutputPath"] == f"s3://{BUCKET}/ml/predictions/{job_name}/"

    # the staged source tarball (what the transform's container loads) holds train.py byte for byte
    import io
    import tarfile

    tarball = s3.get_object(Bucket=BUCKET, Key="code/ml/sourcedir.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        assert archive.extractfile("train.py").read() == (PROJECT_ROOT / "ml" / "train.py").read_bytes()


def test_model_trainer_dry_run_validates_without_creating_a_job(moto_server: dict[str, str], monkeypatch):
    """The sagemaker SDK's own dry run: the whole request is built and validated, no training job is created."""
    from flightdelay.aws.deploy import DeployConfig, model_trainer

    for name, value in moto_server.items():
        monkeypatch.setenv(name, value)
    s3 = client(moto_server, "s3")
    bucket = "flightdelay-dry-run"
    s3.create_bucket(Bucket=bucket)
    config = DeployConfig(bucket=bucket, cluster_id=None, role_arn=ROLE)
    trainer = model_trainer(config, "flightdelay-dry-run", PROJECT_ROOT)
    assert trainer.train(dry_run=True) is None
    sagemaker = client(moto_server, "sagemaker")
    assert sagemaker.list_training_jobs(NameContains="flightdelay-dry-run")["TrainingJobSummaries"] == []



def test_dry_run_prints_the_whole_plan_and_its_sql_parses(january_run: FlowRun):
    assert january_run.first.returncode == 0
    env = {**january_run.env, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    dry = cli(env, "--dry-run", "--bucket", BUCKET, "--cluster-id", "j-EXAMPLE", "--role-arn", ROLE)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    out = dry.stdout
    for section in ("## step: stage", "## step: catalog", "## step: emr", "## step: redshift", "## step: sagemaker",
                    "# emr.add_job_flow_steps", "# glue.create_table", "# sagemaker.ModelTrainer.train",
                    "# sagemaker.create_transform_job", "dbt build --target redshift"):
        assert section in out, section
    sql_block = out.split("# Redshift SQL\n")[1].split("\n# command")[0]
    statements = [s.strip() for s in (sql_block + "\n").split(";\n") if s.strip()]  # the last ends in ";"
    copies = [s for s in statements if s.startswith("copy ")]
    assert len(copies) == 1  # one BTS file in the January run
    # the external (Spectrum) DDL first, outside any transaction, as Redshift requires; then the file's load as
    # one transaction that starts by deleting the file's earlier rows
    begin = statements.index("begin")
    assert statements[begin:].count("begin") == 1 and statements[-1] == "commit"
    assert any(s.startswith("create external schema") for s in statements[:begin])
    assert not any(s.startswith(("create external", "alter table weather.")) for s in statements[begin:])
    assert statements[begin + 1:begin + 3] == [
        f"delete from raw.{table} where source_file = 'bts_ontime_2013_01.csv'" for table in ("flights",
                                                                                             "flights_rejected")]
    assert copies[0] in statements[begin:]
    for statement in statements:
        if statement.startswith("create external schema"):
            continue  # no sqlglot grammar; covered in test_redshift_sql
        tree = sqlglot.parse_one(statement, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)
        assert not isinstance(tree, exp.Command), statement[:80]
    copy = sqlglot.parse_one(copies[0], read="redshift")
    assert isinstance(copy, exp.Copy)
    assert copy.args["files"][0].name == (f"s3://{BUCKET}/staging/bts_numbered/manifests/year=2013/month=01/"
                                          "bts_ontime_2013_01.csv.manifest")
    assert copy.args["credentials"].args["iam_role"].name == ROLE
    assert [c.name for c in copy.this.expressions][:3] == ["source_line", "c1_fl_date", "c2_op_unique_carrier"]


def test_iam_policy_documents_are_valid_and_scoped():
    for path in sorted((PROJECT_ROOT / "deploy" / "iam").glob("*.json")):
        policy = json.loads(path.read_text())
        assert policy["Version"] == "2012-10-17"
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow" and statement["Action"] and statement["Resource"]
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any(action in ("*", "s3:*", "glue:*", "sagemaker:*") for action in actions), path.name
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if any(action.startswith("s3:") for action in actions):
                assert all(r.startswith("arn:aws:s3:::BUCKET") for r in resources), path.name


def test_transient_cluster_uses_the_glue_catalog_as_metastore(january_run: FlowRun, moto_server: dict[str, str]):
    assert january_run.first.returncode == 0
    env = {**january_run.env, **moto_server}
    done = cli(env, "--bucket", BUCKET, "--role-arn", ROLE, "--only", "emr", "--transient")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    emr = client(moto_server, "emr")
    [cluster] = [c for c in emr.list_clusters()["Clusters"] if c["Name"] == "flightdelay-weather-prep"]
    described = emr.describe_cluster(ClusterId=cluster["Id"])["Cluster"]
    assert described["ReleaseLabel"].startswith("emr-7.")
    assert [a["Name"] for a in described["Applications"]] == ["Spark"]
    factories = {c["Classification"]: c["Properties"]["hive.metastore.client.factory.class"]
                 for c in described["Configurations"]}
    assert factories == {
        "spark-hive-site": "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory",
        "hive-site": "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory",
    }
    [step] = emr.list_steps(ClusterId=cluster["Id"])["Steps"]
    assert step["Config"]["Args"][0] == "spark-submit"
