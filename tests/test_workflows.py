"""The GitHub workflows: actionlint's checks (jactionlint) and zizmor pass offline, they catch a planted problem,
and the jobs do what README and .ci/run promise (the test job is .ci/run; slim CI defers to the prod state the
monthly run uploads; every action is pinned by commit SHA)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.engine  # runs the workflow linters

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "jactionlint"), "--profile", "correctness", "--no-online", "--no-hints",
                           *map(str, paths)], capture_output=True, text=True, timeout=120)


def zizmor(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "zizmor"), "--offline", "--no-progress", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as true
    return workflow


def steps(job: dict) -> list[dict]:
    return job["steps"]


def runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def uploads(job: dict) -> dict[str, dict]:
    return {step["with"]["name"]: step for step in steps(job) if "upload-artifact" in step.get("uses", "")}


def test_linters_pass():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["ci.yml", "monthly.yml"]
    for done in (actionlint(*files), zizmor(*files)):
        assert done.returncode == 0, done.stdout + done.stderr


def test_linters_catch_a_planted_problem(tmp_path):
    planted = tmp_path / ".github" / "workflows" / "planted.yml"
    planted.parent.mkdir(parents=True)
    planted.write_text("""\
on: pull_request
permissions: {}
jobs:
  greet:
    runs-on: ubuntu-24.04
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
      - run: echo "${{ matrix.os }}"
""")
    linted = actionlint(planted)
    assert linted.returncode != 0 and "undefined-property" in linted.stdout
    audited = zizmor(planted)
    assert audited.returncode != 0
    assert "template-injection" in audited.stdout and "unpinned-uses" in audited.stdout


@pytest.mark.parametrize("name", ["ci.yml", "monthly.yml"])
def test_least_privilege_and_pinned(name):
    workflow = load(name)
    assert workflow["permissions"] == {}
    for job_name, job in workflow["jobs"].items():
        assert set(job["permissions"]) <= {"contents", "actions"}, job_name
        assert all(level == "read" for level in job["permissions"].values()), job_name
        assert job["timeout-minutes"] <= 120, job_name
        for step in steps(job):
            if "uses" in step:
                assert re.fullmatch(r"actions/[a-z-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
                if "checkout" in step["uses"]:
                    assert step["with"]["persist-credentials"] is False
            # no expression expands into a script: inputs reach scripts through env only
            assert "${{" not in step.get("run", ""), step


def test_ci_runs_what_ci_run_runs_and_slim_ci_defers_to_prod():
    ci = load("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    test = ci["jobs"]["test"]
    assert "bash .ci/run" in runs(test)
    assert test["container"]["image"].startswith("python:3.11-bookworm")

    slim = ci["jobs"]["slim-ci"]
    assert slim["if"] == "github.event_name == 'pull_request'"
    downloads = {step["with"]["name"]: step["with"] for step in steps(slim)
                 if "download-artifact" in step.get("uses", "")}
    assert downloads["prod-manifest"]["path"] == "prod-artifacts"
    assert "dbt build --select state:modified+ --defer --state prod-artifacts" in runs(slim)
    assert "make conventions" in runs(slim)


def test_monthly_runs_the_flow_with_its_gates_and_publishes_prod_state():
    monthly = load("monthly.yml")
    assert "schedule" in monthly["on"] and "workflow_dispatch" in monthly["on"]
    job = monthly["jobs"]["flow"]
    script = runs(job)
    for command in ("make run", "dbt source freshness", "make conventions"):
        assert command in script
    published = uploads(job)
    assert published["dbt-docs"]["with"]["path"] == "artifacts/dbt_docs"
    assert "artifacts/report" in published["run-report"]["with"]["path"]
    # prod state only from a run whose every gate passed (the default `if: success()`), named as ci.yml reads it
    assert "cp target/manifest.json prod-artifacts/manifest.json" in script.split("make run", 1)[1]
    assert published["prod-manifest"]["with"]["path"] == "prod-artifacts/manifest.json"
    assert "if" not in published["prod-manifest"] and "if" not in published["prod-warehouse"]
    ci_downloads = {step["with"]["name"] for step in steps(load("ci.yml")["jobs"]["slim-ci"])
                    if "download-artifact" in step.get("uses", "")}
    assert ci_downloads == {"prod-manifest", "prod-warehouse"}
