"""The aws home's registry row: the training job's evaluation.json, read from its output.tar.gz on S3, becomes the
model's row of ml.model_registry in Redshift, as `flightdelay train` writes it locally (modeling.registry_row).
The train step's plan runs it as a command once the job has completed:

    python -m flightdelay.aws.model_registry --horizon-minutes 120

The values are bound as parameters, never written into the SQL.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile

from flightdelay.aws.settings import AwsSettings
from flightdelay.flow.modeling import MODEL_REGISTRY_TABLE, REGISTRY_COLUMNS_SQL, registry_row, registry_statements

EVALUATION_FILE = "evaluation.json"
MAX_EVALUATION_BYTES = 16 * 1024 * 1024  # evaluation.json with its curves is ~100 KB; anything far larger is not it


def training_output_key(aws: AwsSettings) -> str:
    """Where SageMaker puts SM_OUTPUT_DATA_DIR of the job: <S3OutputPath><job>/output/output.tar.gz."""
    return f"ml/output/{aws.training_job_name}/output/output.tar.gz"


def evaluation_from_archive(archive: bytes, where: str) -> dict:
    """evaluation.json from the output.tar.gz bytes; ValueError naming the archive when it is not there."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.name.lstrip("./") == EVALUATION_FILE and member.isfile() and member.size <= MAX_EVALUATION_BYTES:
                handle = tar.extractfile(member)
                if handle is not None:
                    return json.loads(handle.read().decode("utf-8"))
    raise ValueError(f"{where} holds no {EVALUATION_FILE} (a regular file under {MAX_EVALUATION_BYTES:,} bytes): "
                     "did the training job finish? Run the train step again")


def read_evaluation(aws: AwsSettings, session=None) -> dict:
    key = training_output_key(aws)
    body = aws.client("s3", session).get_object(Bucket=aws.bucket, Key=key)["Body"].read()
    return evaluation_from_archive(body, f"s3://{aws.bucket}/{key}")


def register(connection, evaluation: dict, prediction_horizon_minutes: int) -> None:
    """Replace the model's row, in one transaction, on a DB-API connection (redshift_connector; psycopg2 in tests)."""
    row = registry_row(evaluation, prediction_horizon_minutes)
    cursor = connection.cursor()
    try:
        cursor.execute("create schema if not exists ml")
        cursor.execute(REGISTRY_COLUMNS_SQL)
        for statement in registry_statements({name for (name,) in cursor.fetchall()}):
            cursor.execute(statement)
        cursor.execute(f"delete from {MODEL_REGISTRY_TABLE} where model_id = %s", (row[0],))
        cursor.execute(f"insert into {MODEL_REGISTRY_TABLE} values ({', '.join(['%s'] * len(row))})", tuple(row))
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


def main(argv: list[str] | None = None) -> int:
    import redshift_connector

    parser = argparse.ArgumentParser(description="Register the training job's model in ml.model_registry.")
    parser.add_argument("--horizon-minutes", type=int, required=True,
                        help="the horizon the channels were exported at (the train step's plan passes its own)")
    args = parser.parse_args(argv)
    aws = AwsSettings.from_env()
    evaluation = read_evaluation(aws)
    connection = redshift_connector.connect(**aws.redshift_connect_args())
    try:
        register(connection, evaluation, args.horizon_minutes)
    finally:
        connection.close()
    print(f"registered model {evaluation['model_id']} in {MODEL_REGISTRY_TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
