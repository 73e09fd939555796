"""What the aws home puts into S3, and where: raw files by source, the Spark job's code, the model's code
channel. Each upload is one S3 call of the plan, with a SHA-256 checksum S3 verifies on receipt."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import re
import tarfile
from pathlib import Path

from flightdelay.aws.plan import AwsCall
from flightdelay.aws.settings import AwsSettings
from ml.model_identity import code_files

SOURCEDIR_KEY = "code/ml/sourcedir.tar.gz"


def month_of(name: str) -> str:
    match = re.search(r"(\d{4})[_-](\d{1,2})(?!\d)", name)
    return f"year={match.group(1)}/month={int(match.group(2)):02d}" if match else "undated"


def upload(aws: AwsSettings, source: Path | bytes, key: str) -> AwsCall:
    """A file through boto3's transfer manager (multipart above its threshold), bytes in one PutObject."""
    if isinstance(source, bytes):
        checksum = base64.b64encode(hashlib.sha256(source).digest()).decode()
        return AwsCall("s3", "put_object",
                       {"Bucket": aws.bucket, "Key": key, "Body": source, "ChecksumSHA256": checksum})
    return AwsCall("s3", "upload_file", {"Filename": str(source), "Bucket": aws.bucket, "Key": key,
                                         "ExtraArgs": {"ChecksumAlgorithm": "SHA256"}})


def ensure_bucket(aws: AwsSettings) -> AwsCall:
    request: dict = {"Bucket": aws.bucket}
    if aws.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
    return AwsCall("s3", "create_bucket", request, tolerate=("BucketAlreadyOwnedByYou",))


# The programs SageMaker runs (sagemaker_program): at the archive root, so that `ml/` beside them is the same
# package it is in the project and every module imports `ml.x` in both homes. Training runs train.py as a
# script; hosting imports serve.py and takes model_fn, input_fn, predict_fn and output_fn from it.
ENTRY_POINTS = {
    "train.py": b'"""SageMaker training entry point: ml/train.py."""\n\nfrom ml.train import main\n\n'
                b"raise SystemExit(main())\n",
    "serve.py": b'"""SageMaker hosting entry point: the handlers of ml/serve.py."""\n\n'
                b"from ml.serve import input_fn, model_fn, output_fn, predict_fn\n\n"
                b'__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]\n',
}


def sourcedir_tarball(project_root: Path) -> bytes:
    """ml/ as SageMaker script mode expects it: a sourcedir.tar.gz with the entry points train.py and serve.py
    (ENTRY_POINTS) at its root, the package ml/ beside them (ml.model_identity.code_files and ml/hyperparameters.json,
    train.py's defaults); the feature ranges the server checks come with the model, not the code (ml/feature_ranges.py).
    The same bytes every deploy: files in sorted order, fixed mtime, owner and
    mode, and no timestamp in the gzip header."""
    members: list[tuple[str, Path | bytes]] = list(ENTRY_POINTS.items())
    members += [(f"ml/{path.name}", path) for path in code_files(project_root / "ml")]
    if (project_root / "ml" / "hyperparameters.json").exists():
        members.append(("ml/hyperparameters.json", project_root / "ml" / "hyperparameters.json"))
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, source in sorted(members, key=lambda member: member[0]):
            data = source if isinstance(source, bytes) else source.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, fileobj=io.BytesIO(data))
    return buffer.getvalue()


def code_uploads(aws: AwsSettings, project_root: Path) -> list[AwsCall]:
    """The Spark job with the packages it imports (spark_prep.PY_PACKAGES, zipped), and ml/'s code channel."""
    from spark_prep import PY_PACKAGES, package_zip

    calls = [upload(aws, project_root / "spark_prep" / "weather_job.py", "code/spark_prep/weather_job.py")]
    calls += [upload(aws, package_zip(project_root, name), f"code/spark_prep/{name}.zip") for name in PY_PACKAGES]
    calls.append(upload(aws, sourcedir_tarball(project_root), SOURCEDIR_KEY))
    return calls
