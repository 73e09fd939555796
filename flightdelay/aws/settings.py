"""AwsSettings: everything the aws home needs to reach AWS, in one object built from environment variables
(flags of `flightdelay deploy` override them). Credentials stay in the standard AWS chain unless given here;
secrets are never printed (`repr=False`, and `redshift_url(redacted=True)` for plans)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class AwsSettings:
    bucket: str
    role_arn: str  # SageMaker execution role; also Redshift's COPY/UNLOAD/Spectrum role unless redshift_role_arn
    region: str = "us-east-1"
    endpoint_url: str | None = None  # one endpoint for every service: a moto_server in the tests
    profile: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    redshift_role_arn: str | None = None
    cluster_id: str | None = None  # a running EMR cluster, or None with transient
    transient: bool = False
    glue_database: str = "flightdelay_lake"
    emr_service_role: str = "EMR_DefaultRole"
    emr_instance_profile: str = "EMR_EC2_DefaultRole"
    with_local_lake: bool = False
    instance_type: str = "ml.m5.xlarge"
    sagemaker_image: str | None = None
    job_name: str = "flightdelay-xgboost"
    run_id: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    redshift_host: str | None = None
    redshift_port: int = 5439
    redshift_database: str = "flight_delays"
    redshift_user: str | None = None
    redshift_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> AwsSettings:
        """FLIGHTDELAY_AWS_* for the deployment, the standard AWS_* variables for region, endpoint and
        credentials, FLIGHTDELAY_REDSHIFT_* (as profiles.yml) for the warehouse; `overrides` (CLI flags) win
        where not None."""
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "bucket": env.get("FLIGHTDELAY_AWS_BUCKET", ""),
            "role_arn": env.get("FLIGHTDELAY_AWS_ROLE_ARN", ""),
            "region": env.get("FLIGHTDELAY_AWS_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
            or "us-east-1",
            "endpoint_url": env.get("AWS_ENDPOINT_URL") or None,
            "profile": env.get("AWS_PROFILE") or None,
            "access_key_id": env.get("AWS_ACCESS_KEY_ID") or None,
            "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY") or None,
            "session_token": env.get("AWS_SESSION_TOKEN") or None,
            "redshift_role_arn": env.get("FLIGHTDELAY_AWS_REDSHIFT_ROLE_ARN") or None,
            "cluster_id": env.get("FLIGHTDELAY_AWS_EMR_CLUSTER_ID") or None,
            "transient": _flag(env.get("FLIGHTDELAY_AWS_EMR_TRANSIENT")),
            "glue_database": env.get("FLIGHTDELAY_AWS_GLUE_DATABASE") or "flightdelay_lake",
            "instance_type": env.get("FLIGHTDELAY_AWS_SAGEMAKER_INSTANCE_TYPE") or "ml.m5.xlarge",
            "sagemaker_image": env.get("FLIGHTDELAY_SAGEMAKER_IMAGE") or None,
            "job_name": env.get("FLIGHTDELAY_AWS_JOB_NAME") or "flightdelay-xgboost",
            "redshift_host": env.get("FLIGHTDELAY_REDSHIFT_HOST") or None,
            "redshift_port": int(env.get("FLIGHTDELAY_REDSHIFT_PORT") or 5439),
            "redshift_database": env.get("FLIGHTDELAY_REDSHIFT_DATABASE") or "flight_delays",
            "redshift_user": env.get("FLIGHTDELAY_REDSHIFT_USER") or None,
            "redshift_password": env.get("FLIGHTDELAY_REDSHIFT_PASSWORD") or None,
        }
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]

    def with_overrides(self, **changes: object) -> AwsSettings:
        return replace(self, **changes)

    @property
    def copy_role(self) -> str:
        return self.redshift_role_arn or self.role_arn

    @property
    def training_job_name(self) -> str:
        """The training job of this run: named at plan time, so the model and transform can be planned too."""
        return f"{self.job_name}-{self.run_id}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def session(self):
        import boto3

        return boto3.session.Session(region_name=self.region, profile_name=self.profile,
                                     aws_access_key_id=self.access_key_id,
                                     aws_secret_access_key=self.secret_access_key,
                                     aws_session_token=self.session_token)

    def client(self, service: str, session=None):
        return (session or self.session()).client(service, endpoint_url=self.endpoint_url)

    def redshift_url(self, redacted: bool = True) -> str:
        """SQLAlchemy URL of the warehouse for a GX SQL datasource (Redshift speaks PostgreSQL's protocol); the
        password as `${FLIGHTDELAY_REDSHIFT_PASSWORD}` unless `redacted` is False."""
        from urllib.parse import quote

        password = "${FLIGHTDELAY_REDSHIFT_PASSWORD}" if redacted else quote(self.redshift_password or "", safe="")
        user = quote(self.redshift_user or "USER", safe="")
        return (f"postgresql+psycopg2://{user}:{password}@{self.redshift_host or 'HOST'}:{self.redshift_port}/"
                f"{quote(self.redshift_database, safe='')}")

    def redshift_connect_args(self) -> dict[str, object]:
        missing = [name for name in ("redshift_host", "redshift_user") if not getattr(self, name)]
        if missing:
            raise ValueError("the Redshift SQL needs FLIGHTDELAY_REDSHIFT_HOST and FLIGHTDELAY_REDSHIFT_USER; "
                             f"missing: {', '.join(missing)}")
        return {"host": self.redshift_host, "port": self.redshift_port, "database": self.redshift_database,
                "user": self.redshift_user, "password": self.redshift_password or ""}
