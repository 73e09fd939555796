"""The aws home's plan against a real moto_server on 127.0.0.1: every S3, Glue, EMR and SageMaker call of the
plan executes through the one executor (control plane only: moto runs no EMR step and trains no model); the
dry run prints every step of the flow. The Redshift SQL is tested in test_redshift_plan.py."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import boto3
import pytest

from flightdelay.aws import execute, steps
from flightdelay.aws.plan import AwsCall, Wait
from flightdelay.aws.settings import AwsSettings
from flightdelay.aws.staging import sourcedir_tarball
from flightdelay.settings import load_settings
from tests.conftest import PROJECT_ROOT

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


def aws_settings(env: dict[str, str], **changes) -> AwsSettings:
    return AwsSettings.from_env({**env, "FLIGHTDELAY_AWS_BUCKET": BUCKET, "FLIGHTDELAY_AWS_ROLE_ARN": ROLE},
                                run_id="20130101-000000", **changes)


def run_control_plane(plans, aws: AwsSettings, skip_waits: tuple[str, ...] = ("emr",)) -> list[str]:
    """Exactly the plan's AWS calls and waits, through the executor's own run_call; SQL and commands left out."""
    session, responses, done = aws.session(), {}, []
    for plan in plans:
        for action in plan.actions:
            if isinstance(action, AwsCall):
                execute.run_call(aws.client(action.service, session), action, responses)
                done.append(f"{action.service}.{action.operation}")
            elif isinstance(action, Wait) and action.service not in skip_waits:
                aws.client(action.service, session).get_waiter(action.waiter).wait(
                    **execute._resolve(action.request, responses), WaiterConfig={"Delay": 1, "MaxAttempts": 5})
                done.append(f"wait {action.waiter}")
    return done


@pytest.fixture()
def local_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("FLIGHTDELAY_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("FLIGHTDELAY_RAW", str(january_raw(tmp_path)))  # a fresh clone has no data/raw
    return load_settings()


def january_raw(tmp_path) -> Path:
    from flightdelay.raw.sample import write_sample

    write_sample(tmp_path / "raw", PROJECT_ROOT / "seeds", months=[1])
    return tmp_path / "raw"


def test_the_plan_s_control_plane_calls_execute_against_moto(moto_server: dict[str, str], local_settings):
    emr = client(moto_server, "emr")
    cluster_id = emr.run_job_flow(
        Name="existing", ReleaseLabel="emr-7.5.0", Applications=[{"Name": "Spark"}],
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole")["JobFlowId"]
    aws = aws_settings(moto_server, cluster_id=cluster_id)
    plans = steps.build_plans(local_settings, aws, ("prep", "train", "score"))
    done = run_control_plane(plans, aws)
    assert {"s3.create_bucket", "s3.upload_file", "s3.put_object", "glue.create_database", "emr.add_job_flow_steps",
            "sagemaker.create_training_job", "wait training_job_completed_or_stopped", "sagemaker.create_model",
            "sagemaker.create_transform_job"} <= set(done)
    # a second run of the same plan: the bucket and the database are already there, which is fine
    run_control_plane(plans[:1], aws)

    # S3: raw weather files, the Spark job and every module it imports, the code channel; checksums verified
    s3 = client(moto_server, "s3")
    keys = {item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for item in page.get("Contents", [])}
    shipped = ["code/spark_prep/spark_prep.zip", "code/spark_prep/raw_contracts.zip"]
    assert {"code/spark_prep/weather_job.py", *shipped, "code/ml/sourcedir.tar.gz",
            "raw/reference/airport_weather_stations.csv"} <= keys
    lcd = sorted(local_settings.weather_raw_dir.glob("*"))[0]
    head = s3.head_object(Bucket=BUCKET, Key=f"raw/lcd/{lcd.name}", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(lcd.read_bytes()).digest()).decode()
    tarball = s3.get_object(Bucket=BUCKET, Key="code/ml/sourcedir.tar.gz")["Body"].read()
    assert tarball == sourcedir_tarball(PROJECT_ROOT)  # the code channel as built here, byte for byte
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        assert archive.extractfile("ml/serve.py").read() == (PROJECT_ROOT / "ml" / "serve.py").read_bytes()

    # EMR: the spark-submit step with the S3 URIs of code, input and lake, Glue as its metastore
    step, _ = emr.list_steps(ClusterId=cluster_id)["Steps"]  # the plan ran twice: one step each time
    args = step["Config"]["Args"]
    assert args[:4] == ["spark-submit", "--deploy-mode", "cluster", "--py-files"]
    assert args[4].split(",") == [f"s3://{BUCKET}/{key}" for key in shipped]
    assert args[args.index("--raw-weather") + 1] == f"s3://{BUCKET}/raw/lcd/"
    assert args[args.index("--metastore") + 1] == "external"
    assert client(moto_server, "glue").get_database(Name="flightdelay_lake")["Database"]["Name"] == "flightdelay_lake"

    # SageMaker: training on the channels the warehouse unloads, the code channel's train.py; the model serves
    # serve.py from the same code channel; the transform reads the scoring unload and writes JSON lines
    sagemaker = client(moto_server, "sagemaker")
    job = sagemaker.describe_training_job(TrainingJobName=aws.training_job_name)
    assert job["RoleArn"] == ROLE
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("/sagemaker-xgboost:1.7-1")
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert channels == {name: f"s3://{BUCKET}/ml/channels/{name}/" for name in ("train", "validation", "test")}
    hyper = job["HyperParameters"]
    assert json.loads(hyper["sagemaker_program"]) == "train.py"
    assert json.loads(hyper["sagemaker_submit_directory"]) == f"s3://{BUCKET}/code/ml/sourcedir.tar.gz"
    versioned = json.loads((PROJECT_ROOT / "ml" / "hyperparameters.json").read_text())
    assert {name: hyper[name] for name in versioned} == {name: str(value) for name, value in versioned.items()}
    model = sagemaker.describe_model(ModelName=f"{aws.training_job_name}-model")
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "serve.py"
    assert model["PrimaryContainer"]["ModelDataUrl"] == (
        f"s3://{BUCKET}/ml/output/{aws.training_job_name}/output/model.tar.gz")
    transform = sagemaker.describe_transform_job(TransformJobName=f"{aws.training_job_name}-scores")
    assert transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == (
        f"s3://{BUCKET}/ml/scoring/{aws.training_job_name}/")
    assert transform["TransformOutput"]["S3OutputPath"] == f"s3://{BUCKET}/ml/predictions/{aws.training_job_name}/"


def test_transient_cluster_uses_the_glue_catalog_as_metastore(moto_server: dict[str, str], local_settings):
    aws = aws_settings(moto_server, transient=True)
    [prep] = steps.build_plans(local_settings, aws, ("prep",))
    run_control_plane([prep], aws)
    emr = client(moto_server, "emr")
    [cluster] = [c for c in emr.list_clusters()["Clusters"] if c["Name"] == "flightdelay-weather-prep"]
    described = emr.describe_cluster(ClusterId=cluster["Id"])["Cluster"]
    assert [a["Name"] for a in described["Applications"]] == ["Spark"]
    factories = {c["Classification"]: c["Properties"]["hive.metastore.client.factory.class"]
                 for c in described["Configurations"]}
    assert set(factories.values()) == {"com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"}
    [step] = emr.list_steps(ClusterId=cluster["Id"])["Steps"]
    assert step["Config"]["Args"][0] == "spark-submit"


def test_dry_run_prints_every_step_of_the_flow(tmp_path):
    env = {**os.environ, "FLIGHTDELAY_ARTIFACTS": str(tmp_path / "artifacts"), "FLIGHTDELAY_AWS_BUCKET": BUCKET,
           "FLIGHTDELAY_RAW": str(january_raw(tmp_path)),
           "FLIGHTDELAY_AWS_ROLE_ARN": ROLE, "FLIGHTDELAY_AWS_EMR_CLUSTER_ID": "j-EXAMPLE",
           "FLIGHTDELAY_REDSHIFT_PASSWORD": "s3cret-never-printed"}
    dry = subprocess.run([sys.executable, "-m", "flightdelay.cli", "run", "--backend", "aws", "--dry-run",
                          "--skip-sample"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    out = dry.stdout
    assert [line.removeprefix("## step: ") for line in out.splitlines() if line.startswith("## step: ")] == [
        "prep", "load", "build", "validate", "publish", "train", "score", "report"]
    for expected in ("# emr.add_job_flow_steps", "copy raw.flights (", "format as parquet manifest",
                     '--vars {"prediction_horizon_minutes": 120, "marts_schema": "marts_audit"}',
                     "flightdelay.aws.gx_redshift",
                     "GX checkpoint fct_flights.critical.checkpoint", "publish: ledger check",
                     "create table marts.fct_flights as select * from marts_audit.fct_flights", "unload (",
                     "format as parquet cleanpath", "# sagemaker.create_training_job", "# sagemaker.create_model",
                     "# sagemaker.create_transform_job", "copy predictions_landing from", "--selector predictions",
                     "docs generate"):
        assert expected in out, expected
    assert "s3cret-never-printed" not in out and "${FLIGHTDELAY_REDSHIFT_PASSWORD}" in out


def test_the_registry_row_of_the_aws_home_is_read_from_the_training_job_s_output(moto_server: dict[str, str],
                                                                                 local_settings):
    """SageMaker leaves SM_OUTPUT_DATA_DIR as <job>/output/output.tar.gz; evaluation.json in it is the registry row."""
    from flightdelay.aws import model_registry

    aws = aws_settings(moto_server)
    s3 = client(moto_server, "s3")
    s3.create_bucket(Bucket=BUCKET)
    evaluation = {"model_id": "0123456789abcdef", "dataset": {}}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in (("model_card.md", b"# card"), ("evaluation.json", json.dumps(evaluation).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    key = model_registry.training_output_key(aws)
    assert key == f"ml/output/{aws.training_job_name}/output/output.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    assert model_registry.read_evaluation(aws) == evaluation

    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w:gz"):
        pass
    s3.put_object(Bucket=BUCKET, Key=key, Body=empty.getvalue())
    with pytest.raises(ValueError, match=rf"s3://{BUCKET}/{key} holds no evaluation.json"):
        model_registry.read_evaluation(aws)
    # the train step runs it once the training job has completed
    plan = steps.build_plans(local_settings, aws, ("train",))[0]
    waited = [i for i, a in enumerate(plan.actions) if isinstance(a, Wait) and a.waiter.startswith("training_job")]
    registered = [i for i, a in enumerate(plan.actions) if "flightdelay.aws.model_registry" in getattr(a, "argv", ())]
    assert waited and registered and registered[0] > waited[0]
    # at the horizon the channels were exported at, which the plan passes (the job's own process has no flag)
    horizon = str(local_settings.prediction_horizon_minutes)
    assert plan.actions[registered[0]].argv[-2:] == ("--horizon-minutes", horizon)
