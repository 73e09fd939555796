"""`python -m bench.model_queries`: one dbt model's query at two code revisions, timed on a built warehouse, and
the two results compared row for row.

Each revision's project files (`git archive`) are compiled as a full refresh (`dbt compile --vars
'{compile_without_warehouse: true}'`, no warehouse needed), and each model's compiled query is run into a scratch
schema of the warehouse with the flow's DuckDB memory cap, in the order given (alternate the revisions to see
the noise): wall time, and this process's CPU time and peak RSS as bench/run.py's monitor samples them. The
scratch schema is dropped at the end; nothing else in the warehouse is written. A query that fails (DuckDB out
of memory) is reported, not raised.

    python -m bench.model_queries --warehouse bench/work/sf30-increment/incremental/warehouse/flight_delays.duckdb \
        --revisions 2afb121 HEAD --models int_flights_converted_to_utc int_flights_joined_to_known_outcomes
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import duckdb

from bench.run import PROJECT_ROOT, TreeMonitor, machine
from bench.tables import save_result

PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "selectors.yml", "macros", "models", "seeds", "analyses")


def compiled_queries(revision: str, models: list[str], warehouse: Path) -> dict[str, str]:
    """The models' full-refresh SQL as `revision` of this repository compiles it."""
    with tempfile.TemporaryDirectory(prefix=f"model-queries-{revision}-") as folder:
        archive = subprocess.run(["git", "archive", revision, *PROJECT_FILES], cwd=PROJECT_ROOT,
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        target = Path(folder) / "target"
        env = {**os.environ, "FLIGHTDELAY_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        done = subprocess.run(
            [str(Path(sys.executable).with_name("dbt")), "compile", "--quiet", "--no-populate-cache",
             "--select", *models, "--project-dir", folder, "--profiles-dir", folder, "--target", "local",
             "--target-path", str(target), "--vars", "{compile_without_warehouse: true}"],
            env=env, cwd=folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"dbt compile at {revision} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return {model: next((target / "compiled").rglob(f"{model}.sql")).read_text() for model in models}


def run_query(con: duckdb.DuckDBPyConnection, table: str, sql: str, monitor: TreeMonitor, label: str) -> dict:
    """The query into `table`: wall time, and this process's CPU and peak RSS over it (bench/run.py's monitor)."""
    monitor.enter(label)
    wall = time.perf_counter()
    try:
        con.execute(f"create or replace table {table} as {sql}")
    except duckdb.Error as failure:
        monitor.enter("between")
        return {"failed": f"{type(failure).__name__}: {str(failure)[:300]}",
                "wall_seconds": round(time.perf_counter() - wall, 1)}
    seconds = round(time.perf_counter() - wall, 1)
    monitor.enter("between")
    return {"wall_seconds": seconds, **monitor.summary()[label],
            "rows": con.execute(f"select count(*) from {table}").fetchone()[0]}


def rows_only_in(con: duckdb.DuckDBPyConnection, first: str, second: str) -> int:
    return con.execute(f"select count(*) from (select * from {first} except all select * from {second})").fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True, help="a DuckDB warehouse the flow built")
    parser.add_argument("--revisions", nargs=2, required=True, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--order", nargs="+", default=["after", "before"], choices=["before", "after"],
                        help="which revision's query runs when (default: after, then before)")
    parser.add_argument("--memory-limit", default=os.environ.get("FLIGHTDELAY_DUCKDB_MEMORY_LIMIT", "4GB"))
    args = parser.parse_args(argv)
    queries = dict(zip(("before", "after"), (compiled_queries(rev, args.models, args.warehouse)
                                             for rev in args.revisions), strict=True))
    monitor = TreeMonitor(os.getpid(), interval=0.2)
    monitor.start()
    results: dict[str, object] = {}
    with duckdb.connect(str(args.warehouse), config={"memory_limit": args.memory_limit}) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute("create schema if not exists model_queries_scratch")
        try:
            for model in args.models:
                runs = []
                for position, side in enumerate(args.order, 1):
                    # a label per run: the monitor sums a label's CPU from its first run to its last
                    outcome = run_query(con, f"model_queries_scratch.{side}", queries[side][model], monitor,
                                        f"{model} {side} run {position}")
                    runs.append({"revision": args.revisions[side == "after"], **outcome})
                    print(json.dumps({"model": model, **runs[-1]}), flush=True)
                compared = None
                if all("failed" not in run for run in runs) and {"before", "after"} <= set(args.order):
                    compared = {"rows only before": rows_only_in(con, "model_queries_scratch.before",
                                                                 "model_queries_scratch.after"),
                                "rows only after": rows_only_in(con, "model_queries_scratch.after",
                                                                "model_queries_scratch.before")}
                    print(json.dumps({"model": model, **compared}), flush=True)
                results[model] = {"runs": runs, "compared": compared}
        finally:
            monitor.stop()
            con.execute("drop schema if exists model_queries_scratch cascade")
    path = save_result("model-queries", {"machine": machine(), "warehouse": str(args.warehouse),
                                         "revisions": args.revisions,
                                         "memory_limit": args.memory_limit, "models": results})
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
