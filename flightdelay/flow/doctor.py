"""`flightdelay doctor`: check the machine before a run, and say how to fix what is missing."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass

from flightdelay.settings import Settings

PINNED = ("duckdb", "pyspark", "dbt-core", "dbt-duckdb", "great-expectations", "xgboost-cpu", "pandas")
MIN_FREE_GIB = 5.0
DOCS_PORT = 8080


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_python() -> Check:
    version = sys.version_info
    ok = (version.major, version.minor) == (3, 11)
    return Check("python", ok, f"{sys.version.split()[0]} at {sys.executable}",
                 "" if ok else "use Python 3.11 (make creates .venv with python3.11)")


def check_java() -> Check:
    java = shutil.which("java")
    if not java:
        return Check("java", False, "not found", "apt-get install -y openjdk-17-jre-headless")
    output = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', output)
    major = int(match.group(1)) if match else 0
    ok = major >= 17
    return Check("java", ok, f"{java}: {output.splitlines()[0] if output else 'no version'}",
                 "" if ok else "Spark 4 needs Java 17+: apt-get install -y openjdk-17-jre-headless")


def check_disk(settings: Settings) -> Check:
    folder = settings.project_root
    free_gib = shutil.disk_usage(folder).free / 2**30
    ok = free_gib >= MIN_FREE_GIB
    return Check("disk", ok, f"{free_gib:.1f} GiB free at {folder}",
                 "" if ok else f"free at least {MIN_FREE_GIB} GiB (the sample run writes about 1 GiB)")


def check_port(port: int = DOCS_PORT) -> Check:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as error:
            return Check(f"port {port}", False, f"in use ({error.strerror})",
                         f"stop what listens on {port} or run `make docs DOCS_PORT=<free port>`")
    return Check(f"port {port}", True, "free (used by `make docs`)")


def check_packages() -> list[Check]:
    checks = []
    for name in PINNED:
        try:
            version = importlib.metadata.version(name)
            checks.append(Check(name, True, version))
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(name, False, "not installed", "run `make setup` (installs requirements.lock)"))
    return checks


def check_warehouse(settings: Settings) -> Check:
    path = settings.warehouse_path
    if not path.exists():
        return Check("warehouse", True, f"{path} not created yet (`flightdelay run` creates it)")
    import duckdb

    try:
        with duckdb.connect(str(path), read_only=True) as con:
            tables = con.execute("select count(*) from information_schema.tables").fetchone()[0]
        return Check("warehouse", True, f"{path}: {tables} tables")
    except duckdb.Error as error:
        busy = "lock" in str(error).lower()
        return Check("warehouse", False, f"{path}: {error}",
                     "another command is writing to it (flightdelay's project lock names it); wait for it to "
                     "finish and rerun" if busy else
                     "the file was written by another DuckDB version, or is damaged: rebuild it with "
                     "`flightdelay run` (move the old file aside first; the raw files rebuild everything)")


def run_checks(settings: Settings) -> list[Check]:
    return [check_python(), check_java(), check_disk(settings), check_port(), *check_packages(),
            check_warehouse(settings)]


def render(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        lines.append(f"[{mark}] {check.name:<20} {check.detail}")
        if check.fix:
            lines.append(f"       fix: {check.fix}")
    return "\n".join(lines)
