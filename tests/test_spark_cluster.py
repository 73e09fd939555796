"""The weather job on a Spark cluster, not only in local mode: a standalone master and one worker on
127.0.0.1, the job submitted with `spark-submit` as deploy's EMR step submits it (the entry point, its
modules as `--py-files`), from an empty working folder, with a minimal environment and a Python that cannot
import the checkout. Also: everything the job imports is in what deploy ships (spark_prep.PY_PACKAGES)."""

from __future__ import annotations

import ast
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pyspark
import pytest

from spark_prep import PY_PACKAGES, lake_snapshots, package_zip
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration  # a master, a worker, a driver and an executor: four JVMs

SPARK_HOME = Path(pyspark.__file__).parent
APP_NAME = "flightdelay-weather-prep"  # weather_job.build_spark
JAVA_HOME = Path(os.environ.get("JAVA_HOME") or Path(shutil.which("java") or "/usr/bin/java").resolve().parents[1])
HEADER = '"STATION","DATE","REPORT_TYPE","HourlyDryBulbTemperature","HourlyWindSpeed","HourlyPrecipitation"\n'
STATIONS = ("airport_code,station_id,usaf_id,wban_id,station_name,lst_utc_offset_hours\n"
            "JFK,74486094789,744860,94789,JFK,-5\n"
            "ORD,72530094846,725300,94846,ORD,-6\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def master_state(webui_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{webui_port}/json/", timeout=5) as response:
        return json.load(response)


def node_python(folder: Path) -> Path:
    """The venv's interpreter without its site-packages hooks (the editable install would put the checkout
    on the path): only the standard library and the installed packages (pyspark), like an EMR node's."""
    script = folder / "python"
    script.write_text("#!/bin/sh\n"
                      f'PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{sysconfig.get_paths()["purelib"]}" '
                      f'exec {sys.executable} -S "$@"\n')
    script.chmod(0o755)
    return script


def minimal_env(python: Path) -> dict[str, str]:
    return {"PATH": f"{JAVA_HOME / 'bin'}:/usr/bin:/bin", "JAVA_HOME": str(JAVA_HOME), "SPARK_HOME": str(SPARK_HOME),
            "PYSPARK_PYTHON": str(python), "SPARK_LOCAL_IP": "127.0.0.1", "LANG": "C.UTF-8"}


@dataclass
class Cluster:
    url: str
    webui_port: int
    work_dir: Path  # the worker's: one folder per application, one per executor under it
    env: dict[str, str]
    logs: Path


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: the JVM and the executors it started
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("spark_cluster")
    env = {**minimal_env(node_python(root)), "SPARK_DAEMON_MEMORY": "256m", "SPARK_CONF_DIR": str(root / "conf"),
           "SPARK_LOG_DIR": str(root / "logs")}
    (root / "conf").mkdir()
    port, webui_port, worker_webui_port = free_port(), free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    work_dir = root / "work"
    processes: list[subprocess.Popen] = []
    try:
        for name, command in (
            ("master", [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                        "--port", str(port), "--webui-port", str(webui_port)]),
            ("worker", [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--cores", "1",
                        "--memory", "1g", "--host", "127.0.0.1", "--webui-port", str(worker_webui_port),
                        "--work-dir", str(work_dir)]),
        ):
            with (root / f"{name}.log").open("wb") as log:
                processes.append(subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                  start_new_session=True))
        deadline = time.monotonic() + 180
        while True:
            for process in processes:
                assert process.poll() is None, (root / "master.log").read_text()[-3000:] + \
                    (root / "worker.log").read_text()[-3000:]
            try:
                if any(w["state"] == "ALIVE" for w in master_state(webui_port)["workers"]):
                    break
            except OSError:
                pass  # the master's web UI is not up yet
            assert time.monotonic() < deadline, "no worker registered with the master within 180 s: " + \
                (root / "worker.log").read_text()[-3000:]
            time.sleep(1)
        yield Cluster(url, webui_port, work_dir, env, root)
    finally:
        for process in reversed(processes):  # the worker first: it stops its executors
            _stop(process)


def shipped_code(folder: Path) -> tuple[Path, list[Path]]:
    """The entry point and its --py-files as deploy stages them for the EMR step (flightdelay/aws reads the same
    spark_prep.PY_PACKAGES): each in a folder apart, so the entry point's own folder (first on the driver's
    sys.path) holds nothing else and every module comes in through --py-files."""
    (folder / "entry").mkdir(parents=True)
    (folder / "lib").mkdir()
    entry = folder / "entry" / "weather_job.py"
    shutil.copyfile(PROJECT_ROOT / "spark_prep" / "weather_job.py", entry)
    py_files = []
    for package in PY_PACKAGES:
        (folder / "lib" / f"{package}.zip").write_bytes(package_zip(PROJECT_ROOT, package))
        py_files.append(folder / "lib" / f"{package}.zip")
    return entry, py_files


def write_inputs(folder: Path) -> tuple[Path, Path]:
    """Two LCD files (two stations, so two files for binaryFiles to spread) and the stations CSV."""
    raw = folder / "lcd"
    raw.mkdir(parents=True)
    (raw / "LCD_74486094789_2013.csv").write_text(HEADER + "".join([
        '"74486094789","2013-01-31T22:51:00","FM-15","30","5","0.00"\n',
        '"74486094789","2013-01-31T23:51:00","FM-15","31","6","0.01"\n',
        '"74486094789","2013-02-01T00:51:00","FM-15","32","7","T"\n',
        '"74486094789","2013-02-01T00:51:00","FM-15","32","7","T"\n',  # exact duplicate: quarantined
        '"74486094789","2013-02-01T23:59:00","SOD","","",""\n',  # not an hourly report: quarantined
    ]))
    (raw / "LCD_72530094846_2013.csv").write_text(HEADER + "".join([
        '"72530094846","2013-01-15T10:51:00","FM-15","20","10","0.00"\n',
        '"72530094846","2013-01-15T11:51:00","FM-15","21","11","0.00"\n',
    ]))
    stations = folder / "reference" / "airport_weather_stations.csv"
    stations.parent.mkdir()
    stations.write_text(STATIONS)
    return raw, stations


def test_the_weather_job_runs_on_a_standalone_cluster_through_spark_submit(cluster, tmp_path):
    entry, py_files = shipped_code(tmp_path / "code")
    raw, stations = write_inputs(tmp_path / "inputs")
    lake = tmp_path / "lake"
    driver_cwd = tmp_path / "driver_cwd"  # unrelated and empty; must stay empty
    driver_cwd.mkdir()
    command = [
        str(SPARK_HOME / "bin" / "spark-submit"), "--master", cluster.url, "--deploy-mode", "client",
        "--driver-memory", "512m", "--executor-memory", "512m", "--total-executor-cores", "1",
        "--py-files", ",".join(str(path) for path in py_files),
        str(entry), "--raw-weather", str(raw), "--stations", str(stations), "--lake", str(lake),
    ]
    started = time.monotonic()
    done = subprocess.run(command, cwd=driver_cwd, env=cluster.env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-5000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"spark-submit on the cluster: {time.monotonic() - started:.0f} s")

    # what the job reports and what the lake holds
    assert (result["rows_read"], result["hourly_rows"], result["rows_quarantined"], result["stations"]) == (7, 5, 2, 2)
    assert (result["duplicates_resolved"], result["rows_other_report_types"]) == (1, 1)
    assert {f["source_file"]: (f["rows_read"], f["rows_loaded"]) for f in result["files"]} == {
        "LCD_74486094789_2013.csv": (5, 3), "LCD_72530094846_2013.csv": (2, 2)}
    snapshot = lake_snapshots.read_local(lake / "weather")
    assert snapshot is not None and {"hourly_observations", "daily_summaries", "_quarantine"} <= set(snapshot.tables)
    hourly = pq.read_table(lake_snapshots.table_dir(lake / "weather", "hourly_observations")).to_pylist()
    assert sorted((r["airport_code"], str(r["observed_at_utc"]), r["temp_f"]) for r in hourly) == [
        ("JFK", "2013-02-01 03:51:00+00:00", 30.0), ("JFK", "2013-02-01 04:51:00+00:00", 31.0),
        ("JFK", "2013-02-01 05:51:00+00:00", 32.0), ("ORD", "2013-01-15 16:51:00+00:00", 20.0),
        ("ORD", "2013-01-15 17:51:00+00:00", 21.0)]
    assert {"metastore_db", "derby.log"} <= set(os.listdir(lake / "_metastore"))  # Derby lives in the lake argument

    # nothing depends on, or is left in, the driver's working folder
    assert sorted(os.listdir(driver_cwd)) == []

    # the work ran on the cluster's executor, which got the code through --py-files
    [app] = [a for a in master_state(cluster.webui_port)["completedapps"] if a["name"] == APP_NAME]
    assert app["state"] == "FINISHED"
    executor_dirs = list((cluster.work_dir / app["id"]).iterdir())
    assert executor_dirs, f"no executor ran for {app['id']}"
    fetched = {path.name for folder in executor_dirs for path in folder.iterdir()}
    assert {path.name for path in py_files} <= fetched, fetched
    stderr = "".join((folder / "stderr").read_text(errors="replace") for folder in executor_dirs)
    assert "Finished task" in stderr, stderr[-3000:]


# ---------------------------------------------------------------- what ships

STANDARD = set(sys.stdlib_module_names)
ON_THE_CLUSTER = {"pyspark", "py4j"}  # installed with Spark itself


def _imports(path: Path) -> set[str]:
    """Dotted names `path` imports at run time (not those under `if TYPE_CHECKING:`), relative ones resolved
    against its package; `from a import b` gives `a` and `a.b` (b may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    checking_only = {id(node) for branch in ast.walk(tree) if isinstance(branch, ast.If)
                     and ast.unparse(branch.test).endswith("TYPE_CHECKING") for node in ast.walk(branch)}
    package = path.parent.name
    names = set()
    for node in ast.walk(tree):
        if id(node) in checking_only:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = f"{package}.{node.module or ''}".rstrip(".") if node.level else node.module
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def test_every_module_the_job_imports_is_shipped_with_it():
    """Transitively from weather_job.py: a module of the checkout must be imported by its package's name
    (`spark_prep.x`, `raw_contracts.y`; a bare `x` finds nothing in the zips under --py-files) and its package
    must be in PY_PACKAGES; everything else must be the standard library or Spark's own."""
    spark_prep = PROJECT_ROOT / "spark_prep"
    todo, seen, unshipped = [spark_prep / "weather_job.py"], set(), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] in STANDARD or parts[0] in ON_THE_CLUSTER:
                continue
            where = path.relative_to(PROJECT_ROOT)
            if (spark_prep / f"{parts[0]}.py").is_file():
                unshipped.add(f"{name} (imported by {where}): import it as spark_prep.{name}")
            elif (PROJECT_ROOT / parts[0] / "__init__.py").is_file():
                if parts[0] not in PY_PACKAGES:
                    unshipped.add(f"package {parts[0]} (imported by {where})")
                module = PROJECT_ROOT / Path(*parts)
                todo += [p for p in (module.with_suffix(".py"), module / "__init__.py") if p.is_file()]
            else:
                unshipped.add(f"{name} (imported by {where}): neither the standard library, Spark, nor code "
                              "of this project")
    assert not unshipped, f"not shipped with the job (spark_prep.PY_PACKAGES): {sorted(unshipped)}"
    assert {spark_prep / "lcd_records.py", PROJECT_ROOT / "raw_contracts" / "records.py"} <= seen  # it walked
    zipped = {name for package in PY_PACKAGES
              for name in zipfile.ZipFile(io.BytesIO(package_zip(PROJECT_ROOT, package))).namelist()}
    walked = {path.relative_to(PROJECT_ROOT).as_posix() for path in seen if path.name != "weather_job.py"}
    assert walked <= zipped, f"imported by the job but not in its package's zip: {sorted(walked - zipped)}"
