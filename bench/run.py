"""`make bench SF=N`: generate the raw files at scale factor N, run the whole flow on them in a folder of
their own, and record per-stage wall time, CPU time and peak memory in bench/results/sf<N>-<time>.json;
then rewrite the tables in BENCHMARKS.md from the newest result per scale factor (bench/tables.py).

The flow is `flightdelay run --skip-sample` in a child process, exactly as users run it; the split dates
follow the generated years (test = Nov-Dec of the last year, validation = its October).

`--increment` runs the incremental scenario instead (bench/increment.py: the flow before the last month,
after adding it, once more with nothing changed, and a full rebuild whose marts must equal the incremental
ones), recorded in bench/results/sf<N>-increment-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.generate import FIRST_YEAR, TRIOS_PER_YEAR, generate
from bench.tables import BENCHMARKS_MD, PROJECT_ROOT, RESULTS_DIR, update_benchmarks_md

WORK_DIR = PROJECT_ROOT / "bench" / "work"


STAGE_LINE = re.compile(r"^\[\d+/\d+\] (\w+) (\.\.\.|done in)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def process_table() -> dict[int, tuple[int, int, float, int]]:
    """pid -> (parent pid, start time, CPU seconds, resident bytes), from /proc."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
                                  int(fields[21]) * PAGE_BYTES)
    return table


class TreeMonitor:
    """Samples a process and all its descendants (Spark's JVM, dbt, training) twice a second: CPU seconds
    summed over every process seen, resident memory summed over those alive, split by stage of the flow
    (read from its "[i/n] name ..." progress lines). rusage misses the JVMs nobody waits for; this does not."""

    def __init__(self, root_pid: int, interval: float = 0.5):
        self.root_pid, self.interval = root_pid, interval
        self.cpu_by_process: dict[tuple[int, int], float] = {}
        self.stage = "start"
        self.stages: dict[str, dict[str, float]] = {}
        self.peak_rss_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        table = process_table()
        tree, frontier = set(), [self.root_pid]
        while frontier:
            pid = frontier.pop()
            if pid in table and pid not in tree:
                tree.add(pid)
                frontier += [child for child, row in table.items() if row[0] == pid]
        rss = 0
        for pid in tree:
            _, started, cpu, resident = table[pid]
            self.cpu_by_process[(pid, started)] = cpu
            rss += resident
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        stage = self.stages.setdefault(self.stage, {"cpu_start": self.cpu_seconds, "peak_rss_bytes": 0})
        stage["cpu_end"] = self.cpu_seconds
        stage["peak_rss_bytes"] = max(stage["peak_rss_bytes"], rss)

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_process.values())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._thread.start()

    def enter(self, stage: str) -> None:
        self._sample()
        self.stage = stage

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def totals(self) -> dict[str, float]:
        return {"cpu_seconds": round(self.cpu_seconds, 1), "peak_rss_mib": round(self.peak_rss_bytes / 2 ** 20, 1)}

    def summary(self) -> dict[str, dict[str, float]]:
        return {name: {"cpu_seconds": round(values["cpu_end"] - values["cpu_start"], 1),
                       "peak_rss_mib": round(values["peak_rss_bytes"] / 2 ** 20, 1)}
                for name, values in self.stages.items() if name not in ("start", "end")}


def monitored_run(command: list[str], env: dict[str, str]) -> tuple[int, str, float, TreeMonitor]:
    """Run a command, echoing nothing, while a TreeMonitor samples it; returns (exit code, output, wall, monitor)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    monitor = TreeMonitor(process.pid)
    monitor.start()
    output = []
    for line in process.stdout:
        output.append(line)
        match = STAGE_LINE.match(line)
        if match:
            monitor.enter(match.group(1) if match.group(2) == "..." else "between stages")
    process.wait()
    wall = time.perf_counter() - started
    monitor.enter("end")
    monitor.stop()
    return process.returncode, "".join(output), wall, monitor


def measured_run(command: list[str], env: dict[str, str], what: str) -> tuple[float, TreeMonitor]:
    """monitored_run that stops the benchmark, showing the output's tail, when the command fails."""
    returncode, output, wall, monitor = monitored_run(command, env)
    if returncode != 0:
        print(output[-6000:])
        raise SystemExit(f"{what} failed (exit {returncode})")
    return wall, monitor


def stage_rows(artifacts: Path, monitor: TreeMonitor) -> list[dict[str, object]]:
    """Each step of the flow's run_summary.json with its seconds, and the CPU and memory the monitor saw in it."""
    stages = monitor.summary()
    record = json.loads((artifacts / "run_summary.json").read_text())
    return [{"name": step["name"], "seconds": step["seconds"], **stages.get(step["name"], {})}
            for step in record["steps"]]


def machine() -> dict[str, object]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[:1]
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory_kib / 1024 ** 2, 1),
            "os": platform.platform(), "python": platform.python_version(), "java": java[0] if java else None}


def flow_env(scale_factor: int, root: Path) -> dict[str, str]:
    last_year = FIRST_YEAR + (scale_factor - 1) // TRIOS_PER_YEAR
    return {
        "FLIGHTDELAY_RAW": str(root / "raw"),
        "FLIGHTDELAY_LAKE": str(root / "lake"),
        "FLIGHTDELAY_WAREHOUSE": str(root / "warehouse" / "flight_delays.duckdb"),
        "FLIGHTDELAY_ARTIFACTS": str(root / "artifacts"),
        "FLIGHTDELAY_TRAIN_START": f"{FIRST_YEAR}-01-01",
        "FLIGHTDELAY_VALIDATION_START": f"{last_year}-10-01",
        "FLIGHTDELAY_TEST_START": f"{last_year}-11-01",
        "FLIGHTDELAY_TEST_END": f"{last_year}-12-31",
    }


def run_peer(scale_factor: int, root: Path) -> dict[str, object]:
    """The all-Spark peer (bench/peers/all_spark.py) on the same raw files, in a child process of its own."""
    env = flow_env(scale_factor, root)
    out = root / "peer"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "bench.peers.all_spark", "--raw", env["FLIGHTDELAY_RAW"], "--out", str(out),
               "--validation-start", env["FLIGHTDELAY_VALIDATION_START"], "--test-start", env["FLIGHTDELAY_TEST_START"],
               "--test-end", env["FLIGHTDELAY_TEST_END"]]
    spark_env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    wall, monitor = measured_run(command, spark_env, f"the all-Spark peer at SF={scale_factor}")
    return {"wall_seconds": round(wall, 1), **monitor.totals(), **json.loads((out / "result.json").read_text())}


def run_flow(scale_factor: int, keep: bool, peer: bool = True) -> dict[str, object]:
    root = WORK_DIR / f"sf{scale_factor}"
    for stale in ("lake", "warehouse", "artifacts"):  # every measured run starts from raw files only
        shutil.rmtree(root / stale, ignore_errors=True)
    started = time.perf_counter()
    counts = generate(scale_factor, root / "raw")
    generate_seconds = time.perf_counter() - started

    env = {**os.environ, **flow_env(scale_factor, root)}
    command = [sys.executable, "-m", "flightdelay.cli", "run", "--skip-sample"]
    wall, monitor = measured_run(command, env, f"flightdelay run at SF={scale_factor}")
    evaluation = json.loads((root / "artifacts" / "ml" / "evaluation.json").read_text())
    result = {
        "scale_factor": scale_factor,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "generated": {**counts, "seconds": round(generate_seconds, 1)},
        # CPU and resident memory of the whole process tree (the CLI, Spark's JVM, dbt, training)
        "flow": {"wall_seconds": round(wall, 1), **monitor.totals()},
        "stages": stage_rows(root / "artifacts", monitor),
        "test_roc_auc": evaluation["binary_classification_metrics"]["auc"]["value"],
        "baseline_test_roc_auc": evaluation["baseline"]["binary_classification_metrics"]["auc"]["value"],
    }
    if peer:
        try:
            result["peer"] = run_peer(scale_factor, root)
            result["peer_to_flow_wall_ratio"] = round(result["peer"]["wall_seconds"] / wall, 2)
        except SystemExit as failure:  # the flow's measurement stands; the table says the peer failed
            result["peer"] = {"failed": str(failure)}
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return result


def write_result(result: dict[str, object]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = result["measured_at"].replace(":", "").replace("-", "")[:15]
    scenario = {"increment": "-increment", "increment-failed": "-increment-failed"}.get(result.get("scenario"), "")
    path = RESULTS_DIR / f"sf{result['scale_factor']}{scenario}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the whole flow at scale factor SF.")
    parser.add_argument("--sf", type=int, required=True)
    parser.add_argument("--keep", action="store_true", help="keep bench/work/sf<N> (raw, lake, warehouse)")
    parser.add_argument("--no-peer", action="store_true", help="skip the all-Spark peer")
    parser.add_argument("--increment", action="store_true",
                        help="the incremental scenario (bench/increment.py) instead of the whole flow and the peer; "
                             "work in bench/work/sf<N>-increment")
    args = parser.parse_args(argv)
    if args.increment:
        from bench.increment import run_increment

        result = run_increment(args.sf, args.keep)
        if result["scenario"] == "increment-failed":
            path = write_result(result)
            print(f"{result['failure']}; the runs measured before it: {path}")
            return 1
        shown = {"scale_factor": result["scale_factor"], "split": {k: result["split"][k] for k in (
                     "month", "flights_before", "flights_added")},
                 "runs": {name: {k: run[k] for k in ("wall_seconds", "cpu_seconds", "peak_rss_mib")}
                          for name, run in result["runs"].items()},
                 "marts_identical": result["marts_identical"], "differences": result["differences"]}
    else:
        result = run_flow(args.sf, args.keep, peer=not args.no_peer)
        shown = {key: result[key] for key in ("scale_factor", "flow", "test_roc_auc")}
    path = write_result(result)
    update_benchmarks_md()
    print(json.dumps(shown, indent=2))
    print(f"result: {path}\ntable: {BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
