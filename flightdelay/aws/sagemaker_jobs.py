"""SageMaker as plan data: the training job on the channels the warehouse unloaded, the model that serves it,
and the batch transform over the feature mart. The job is named when the plan is made, so the model's artifact
URL is known in advance and every request is printed whole by --dry-run."""

from __future__ import annotations

import json
from pathlib import Path

from flightdelay.aws.plan import AwsCall, Wait
from flightdelay.aws.settings import AwsSettings
from flightdelay.aws.staging import SOURCEDIR_KEY
from flightdelay.flow.modeling import CHANNELS, versioned_hyperparameters
from ml.explain import TABLE_REASONS

# SageMaker's XGBoost framework container (script mode) per region; FLIGHTDELAY_SAGEMAKER_IMAGE overrides.
XGBOOST_IMAGE_ACCOUNTS = {"us-east-1": "683313688378", "us-east-2": "257758044811", "us-west-2": "246618743249",
                          "eu-west-1": "141502667606", "eu-central-1": "492215442770"}
XGBOOST_FRAMEWORK_VERSION = "1.7-1"
TRAINING_PROGRAM = "train.py"
# The module the container imports to serve (sagemaker_xgboost_container.serving imports SAGEMAKER_PROGRAM
# without `.py` from the unpacked SAGEMAKER_SUBMIT_DIRECTORY; its handler service takes model_fn / input_fn /
# predict_fn / output_fn from it). serve.py defines them; train.py does not.
SERVING_PROGRAM = "serve.py"
TRANSFORM_ACCEPT = "application/jsonlines"  # ml/serve.py's JSON_LINES: what Redshift COPYs back
# CSV files with a header line, asking for the reasons the predictions table holds (ml/request_parsing.py)
TRANSFORM_CONTENT_TYPE = f"text/csv; reasons={TABLE_REASONS}"
MAX_PAYLOAD_MB = 6  # the container's default request size; the scoring UNLOAD writes files under it


def xgboost_image(aws: AwsSettings) -> str:
    if aws.sagemaker_image:
        return aws.sagemaker_image
    account = XGBOOST_IMAGE_ACCOUNTS.get(aws.region)
    if account is None:
        raise ValueError(f"no XGBoost image account known for {aws.region}; set FLIGHTDELAY_SAGEMAKER_IMAGE")
    return f"{account}.dkr.ecr.{aws.region}.amazonaws.com/sagemaker-xgboost:{XGBOOST_FRAMEWORK_VERSION}"


def channel_key(channel: str) -> str:
    return f"ml/channels/{channel}/"


def channel_uri(aws: AwsSettings, channel: str) -> str:
    return aws.uri(channel_key(channel))


def model_data_url(aws: AwsSettings) -> str:
    return aws.uri(f"ml/output/{aws.training_job_name}/output/model.tar.gz")


def training_job(aws: AwsSettings, project_root: Path) -> AwsCall:
    """CreateTrainingJob in script mode: the framework container downloads `sagemaker_submit_directory` and runs
    `sagemaker_program` with every other hyperparameter as `--name value` (the versioned ml/hyperparameters.json,
    as local training passes them), SM_CHANNEL_* pointing at the unloaded channels."""
    hyperparameters = {name: str(value) for name, value in versioned_hyperparameters(project_root).items()}
    hyperparameters |= {"sagemaker_program": json.dumps(TRAINING_PROGRAM),
                        "sagemaker_submit_directory": json.dumps(aws.uri(SOURCEDIR_KEY)),
                        "sagemaker_region": json.dumps(aws.region)}
    return AwsCall("sagemaker", "create_training_job", {
        "TrainingJobName": aws.training_job_name,
        "RoleArn": aws.role_arn,
        "AlgorithmSpecification": {"TrainingImage": xgboost_image(aws), "TrainingInputMode": "File"},
        "HyperParameters": hyperparameters,
        "InputDataConfig": [{"ChannelName": channel, "ContentType": "application/x-parquet",
                             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                             "S3Uri": channel_uri(aws, channel),
                                                             "S3DataDistributionType": "FullyReplicated"}}}
                            for channel in CHANNELS],
        "OutputDataConfig": {"S3OutputPath": aws.uri("ml/output/")},
        "ResourceConfig": {"InstanceType": aws.instance_type, "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Tags": [{"Key": "project", "Value": "flightdelay"}],
    })


def serving_container(image: str, model_data_url: str, submit_directory: str, region: str) -> dict:
    """CreateModel's container: the framework image, the training job's model.tar.gz (unpacked to /opt/ml/model,
    what model_fn reads) and the code channel whose SERVING_PROGRAM the container imports to serve."""
    return {"Image": image, "ModelDataUrl": model_data_url,
            "Environment": {"SAGEMAKER_PROGRAM": SERVING_PROGRAM, "SAGEMAKER_SUBMIT_DIRECTORY": submit_directory,
                            "SAGEMAKER_REGION": region}}


def model_name(aws: AwsSettings) -> str:
    return f"{aws.training_job_name}-model"


def after_training(aws: AwsSettings) -> list[AwsCall | Wait]:
    return [Wait("sagemaker", "training_job_completed_or_stopped", {"TrainingJobName": aws.training_job_name}),
            AwsCall("sagemaker", "create_model", {
                "ModelName": model_name(aws), "ExecutionRoleArn": aws.role_arn,
                "PrimaryContainer": serving_container(xgboost_image(aws), model_data_url(aws),
                                                      aws.uri(SOURCEDIR_KEY), aws.region)})]


def scoring_input(aws: AwsSettings) -> str:
    return aws.uri(f"ml/scoring/{aws.training_job_name}/")


def transform_output(aws: AwsSettings) -> str:
    return aws.uri(f"ml/predictions/{aws.training_job_name}/")


def transform_job(aws: AwsSettings) -> list[AwsCall | Wait]:
    """Each unloaded CSV file (a header line, then flights) is one request (SplitType None: the header stays with
    its rows); the answers are JSON lines, one file per input file, each line a flight's probability, model id and
    reasons."""
    name = f"{aws.training_job_name}-scores"
    return [AwsCall("sagemaker", "create_transform_job", {
        "TransformJobName": name,
        "ModelName": model_name(aws),
        "MaxPayloadInMB": MAX_PAYLOAD_MB,
        "BatchStrategy": "SingleRecord",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": scoring_input(aws)}},
                           "ContentType": TRANSFORM_CONTENT_TYPE, "SplitType": "None"},
        "TransformOutput": {"S3OutputPath": transform_output(aws), "Accept": TRANSFORM_ACCEPT},
        "TransformResources": {"InstanceType": aws.instance_type, "InstanceCount": 1},
    }), Wait("sagemaker", "transform_job_completed_or_stopped", {"TransformJobName": name})]
