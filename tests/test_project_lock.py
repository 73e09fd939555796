"""The project lock with real processes: a second writing command exits with code 3 naming the holder, waits
when told to, is not held up by another warehouse and lake, and proceeds once the holder is killed with -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flightdelay import cli
from flightdelay.flow import project_lock
from tests.conftest import PROJECT_ROOT, run_cli

pytestmark = pytest.mark.engine  # runs the CLI in subprocesses

# A real `flightdelay sample` through cli.main, whose step prints a line and then waits for a line on stdin
# (or its end): the lock is taken by the same code path as every command's.
HOLDER = """
import sys
from flightdelay import cli
from flightdelay.flow import pipeline

def slow_sample(settings):
    print("holding", flush=True)
    sys.stdin.readline()
    return {}

pipeline.STEPS["sample"] = slow_sample
sys.exit(cli.main(["sample"]))
"""


def project_env(root: Path, lake: Path | None = None) -> dict[str, str]:
    return {
        "FLIGHTDELAY_RAW": str(root / "raw"),
        "FLIGHTDELAY_LAKE": str(lake or root / "lake"),
        "FLIGHTDELAY_WAREHOUSE": str(root / "warehouse" / "flight_delays.duckdb"),
        "FLIGHTDELAY_ARTIFACTS": str(root / "artifacts"),
    }


def start_holder(env: dict[str, str]) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], env={**os.environ, **env}, cwd=PROJECT_ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = holder.stdout.readline()
    while line and line.strip() != "holding":
        line = holder.stdout.readline()
    assert line.strip() == "holding", holder.stderr.read()
    return holder


def kill_9(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def proceeded(result: subprocess.CompletedProcess) -> bool:
    """`load` over an empty raw folder got past the lock: it failed on the missing files instead."""
    return result.returncode == 1 and "run `flightdelay sample` first" in result.stderr


def test_second_command_is_refused_naming_the_holder_and_runs_after_kill_9(tmp_path):
    env = project_env(tmp_path)
    holder = start_holder(env)
    try:
        for command in ("load", "prep", "publish"):
            refused = run_cli(env, command)
            assert refused.returncode == project_lock.EXIT_BUSY == 3, (command, refused.stderr)
            assert f"PID {holder.pid}" in refused.stderr and "`flightdelay sample`" in refused.stderr
            assert "FLIGHTDELAY_LOCK_WAIT_SECONDS" in refused.stderr and f"kill {holder.pid}" in refused.stderr
            assert "Traceback" not in refused.stderr
        # a dry run only prints a plan: it does not wait for writers
        dry_run = run_cli(env, "deploy", "--dry-run", "--bucket", "b", "--role-arn",
                          "arn:aws:iam::123456789012:role/r", "--only", "build")
        assert dry_run.returncode == 0, dry_run.stderr[-2000:]
    finally:
        kill_9(holder)

    lock_file = Path(env["FLIGHTDELAY_WAREHOUSE"]).parent / project_lock.LOCK_FILE
    # kill -9 left the holder's record in the file; only the flock says whether it is held, and it is not
    assert json.loads(lock_file.read_text())["pid"] == holder.pid
    after = run_cli(env, "load")
    assert proceeded(after), after.stderr


def test_waits_for_the_holder_when_told_to(tmp_path):
    env = project_env(tmp_path)
    holder = start_holder(env)
    stderr = tmp_path / "second.err"
    try:
        with stderr.open("w") as err:
            second = subprocess.Popen([sys.executable, "-m", "flightdelay.cli", "load"], cwd=PROJECT_ROOT,
                                      env={**os.environ, **env, "FLIGHTDELAY_LOCK_WAIT_SECONDS": "120"},
                                      stdout=subprocess.DEVNULL, stderr=err, text=True)
        deadline = time.monotonic() + 60
        while "waiting up to" not in stderr.read_text() and second.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"waiting up to 120 s for PID {holder.pid}, `flightdelay sample`" in stderr.read_text()
        holder.communicate("done\n", timeout=60)  # the holder finishes: its lock is released
        second.wait(timeout=60)
    finally:
        if holder.poll() is None:
            kill_9(holder)
    assert holder.returncode == 0
    assert proceeded(subprocess.CompletedProcess(second.args, second.returncode, "", stderr.read_text()))


def test_lock_is_per_warehouse_and_lake(tmp_path):
    first = project_env(tmp_path / "first")
    holder = start_holder(first)
    try:
        elsewhere = run_cli(project_env(tmp_path / "second"), "load")
        same_lake = run_cli(project_env(tmp_path / "third", lake=Path(first["FLIGHTDELAY_LAKE"])), "load")
    finally:
        kill_9(holder)
    assert proceeded(elsewhere), elsewhere.stderr
    assert same_lake.returncode == 3 and f"PID {holder.pid}" in same_lake.stderr
    assert str(Path(first["FLIGHTDELAY_LAKE"]) / project_lock.LOCK_FILE) in same_lake.stderr


def test_a_clean_exit_leaves_no_holder_record(tmp_path, monkeypatch):
    for name, value in project_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    assert cli.main(["load"]) == 1
    lock_file = tmp_path / "warehouse" / project_lock.LOCK_FILE
    assert lock_file.exists() and lock_file.read_text() == ""


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_unusable_wait_setting_says_what_is_expected(tmp_path, monkeypatch, capsys, value):
    for name, setting in project_env(tmp_path).items():
        monkeypatch.setenv(name, setting)
    monkeypatch.setenv("FLIGHTDELAY_LOCK_WAIT_SECONDS", value)
    assert cli.main(["load"]) == 2
    error = capsys.readouterr().err
    assert "FLIGHTDELAY_LOCK_WAIT_SECONDS must be a number of seconds >= 0" in error and repr(value) in error
