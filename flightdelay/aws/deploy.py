"""`flightdelay deploy` and `flightdelay run --backend aws`: the flow's steps on AWS. The plans are built by
steps.py (one per flow step), printed by --dry-run and run by execute.py; settings from AwsSettings only."""

from __future__ import annotations

import sys

from flightdelay.aws import execute, plan, steps
from flightdelay.aws.sagemaker_jobs import SERVING_PROGRAM, XGBOOST_IMAGE_ACCOUNTS, serving_container
from flightdelay.aws.settings import AwsSettings
from flightdelay.aws.staging import sourcedir_tarball
from flightdelay.settings import Settings

STEPS = steps.STEPS
__all__ = ["SERVING_PROGRAM", "STEPS", "XGBOOST_IMAGE_ACCOUNTS", "run_aws", "serving_container", "_sourcedir_tarball"]


def _sourcedir_tarball(settings) -> bytes:
    """The code channel (staging.sourcedir_tarball) of `settings.project_root`."""
    return sourcedir_tarball(settings.project_root)


def run_aws(settings: Settings, aws: AwsSettings, only: tuple[str, ...] | None = None, dry_run: bool = False) -> int:
    """Build the plan of every step asked for (all of the flow's by default), print it with dry_run, else run it."""
    if not aws.bucket or not aws.role_arn:
        print("ERROR: the aws home needs a bucket and a role: FLIGHTDELAY_AWS_BUCKET and FLIGHTDELAY_AWS_ROLE_ARN "
              "(`flightdelay deploy` also takes --bucket and --role-arn)", file=sys.stderr)
        return 2
    plans = steps.build_plans(settings, aws, tuple(only or steps.STEPS))
    if not aws.redshift_role_arn:
        print("WARNING: FLIGHTDELAY_AWS_REDSHIFT_ROLE_ARN is not set: Redshift's COPY, UNLOAD and Spectrum use the "
              f"SageMaker role {aws.role_arn}; deploy/iam/ describes a Redshift role of its own", file=sys.stderr)
    if dry_run:
        print(plan.render(plans))
        return 0
    facts = execute.run_plans(plans, aws, settings.project_root)
    for step, counts in facts.items():
        print(f"{step}: {counts}")
    return 0
