"""Least privilege in deploy/iam/: every statement of every policy names its actions exactly (no `*`, no
`s3:*`, no `s3:Get*`), scopes its resources to ARNs of the action's own service with a region and account
(or the README's placeholders), and uses `Resource: "*"` only for the actions that have no resource-level
scoping in IAM. The ECR statement names exactly the XGBoost image repositories that `flightdelay deploy`
pulls from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flightdelay.aws.deploy import XGBOOST_IMAGE_ACCOUNTS
from tests.conftest import PROJECT_ROOT

POLICY_DIR = PROJECT_ROOT / "deploy" / "iam"
# IAM accepts no resource but "*" for these (the service authorization reference lists no resource type)
STAR_ALLOWED = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9]+")  # service:Name, no wildcard anywhere
ACCOUNT = re.compile(r"[0-9]{12}|ACCOUNT")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]|REGION")


def as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def statement_problems(statement: dict, where: str) -> list[str]:
    """What is too broad or malformed in one statement, each naming the statement and the offending value."""
    problems = []
    if statement.get("Effect") != "Allow":
        problems.append(f"{where}: Effect {statement.get('Effect')!r}; these documents only grant (expected Allow)")
    for key in ("NotAction", "NotResource", "NotPrincipal"):
        if key in statement:
            problems.append(f"{where}: {key} grants everything not listed; name the actions and resources")
    actions, resources = as_list(statement.get("Action", [])), as_list(statement.get("Resource", []))
    if not actions or not resources:
        problems.append(f"{where}: needs both Action and Resource, found {sorted(statement)}")
    for action in actions:
        if not ACTION.fullmatch(action):
            problems.append(f"{where}: action {action!r} is not one exact service:Action (a wildcard?)")
    for resource in resources:
        if resource == "*":
            broad = sorted(set(actions) - STAR_ALLOWED)
            if broad:
                problems.append(f"{where}: Resource '*' for {broad}; only {sorted(STAR_ALLOWED)} may use it")
            continue
        parts = resource.split(":", 5)
        if len(parts) != 6 or parts[:2] != ["arn", "aws"]:
            problems.append(f"{where}: resource {resource!r} is not an arn:aws:service:region:account:resource ARN")
            continue
        _, _, service, region, account, name = parts
        services = {action.split(":")[0] for action in actions}
        if services != {service}:
            problems.append(f"{where}: resource {resource!r} is a {service} ARN, the actions are {sorted(services)}")
        if service != "s3":  # S3 ARNs have no region or account
            if not REGION.fullmatch(region):
                problems.append(f"{where}: resource {resource!r} has region {region!r} (expected one, or REGION)")
            if not ACCOUNT.fullmatch(account):
                problems.append(f"{where}: resource {resource!r} has account {account!r} (expected 12 digits or "
                                "ACCOUNT)")
        if re.fullmatch(r"[A-Za-z-]*[:/]?\*", name):
            problems.append(f"{where}: resource {resource!r} names every {name.rstrip(':/*') or 'resource'}")
    return problems


def policy_problems(policy: dict, name: str) -> list[str]:
    if policy.get("Version") != "2012-10-17":
        return [f"{name}: Version {policy.get('Version')!r}, expected '2012-10-17'"]
    statements = as_list(policy.get("Statement", []))
    if not statements:
        return [f"{name}: no Statement"]
    return [problem for number, statement in enumerate(statements, 1)
            for problem in statement_problems(statement, f"{name} statement {number} ({statement.get('Sid')})")]


def policy_files() -> list[Path]:
    return sorted(POLICY_DIR.rglob("*.json"))


def test_there_are_policies_to_check():
    assert {path.name for path in policy_files()} >= {
        "emr_instance_role_policy.json", "redshift_spectrum_role_policy.json", "sagemaker_execution_role_policy.json"}


@pytest.mark.parametrize("path", policy_files(), ids=lambda path: path.name)
def test_every_statement_is_scoped(path: Path):
    assert policy_problems(json.loads(path.read_text()), path.name) == []


def test_the_image_pull_names_exactly_the_xgboost_repositories_deploy_uses():
    policy = json.loads((POLICY_DIR / "sagemaker_execution_role_policy.json").read_text())
    pulls = [s for s in policy["Statement"] if "ecr:GetDownloadUrlForLayer" in as_list(s["Action"])]
    assert len(pulls) == 1
    assert sorted(as_list(pulls[0]["Resource"])) == sorted(
        f"arn:aws:ecr:{region}:{account}:repository/sagemaker-xgboost"
        for region, account in XGBOOST_IMAGE_ACCOUNTS.items())
    logs = [s for s in policy["Statement"] if any(a.startswith("logs:") for a in as_list(s["Action"]))]
    assert logs and all(r.split(":", 6)[6].startswith("/aws/sagemaker/")
                        for s in logs for r in as_list(s["Resource"]))


def test_the_checker_rejects_what_the_policies_used_to_grant():
    old = {"Version": "2012-10-17", "Statement": [
        {"Sid": "PullTheXGBoostImage", "Effect": "Allow",
         "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability"], "Resource": "*"},
        {"Sid": "TrainingLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
                    "cloudwatch:PutMetricData"], "Resource": "*"},
    ]}
    assert policy_problems(old, "old") == [
        "old statement 1 (PullTheXGBoostImage): Resource '*' for ['ecr:BatchCheckLayerAvailability', "
        "'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer']; only ['cloudwatch:PutMetricData', "
        "'ecr:GetAuthorizationToken'] may use it",
        "old statement 2 (TrainingLogs): Resource '*' for ['logs:CreateLogGroup', 'logs:CreateLogStream', "
        "'logs:DescribeLogStreams', 'logs:PutLogEvents']; only ['cloudwatch:PutMetricData', "
        "'ecr:GetAuthorizationToken'] may use it",
    ]
    broad = [
        {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::BUCKET"},
        {"Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::BUCKET/*"},
        {"Effect": "Allow", "Action": ["s3:Get*"], "Resource": "arn:aws:s3:::BUCKET/*"},
        {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::*"},
        {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "arn:aws:logs:*:*:log-group:*"},
        {"Effect": "Allow", "Action": ["ecr:BatchGetImage"], "Resource": "arn:aws:s3:::BUCKET/x"},
    ]
    for number, statement in enumerate(broad, 1):
        assert statement_problems(statement, f"broad {number}"), statement
