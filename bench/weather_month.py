"""`python -m bench.weather_month --sf N`: what a new month costs the Spark weather job alone, on the generated
LCD files at scale factor N, and whether the lake it leaves equals a full run's.

The LCD files of `bench/work/sf<N>-increment/full/raw/lcd` (written by `make bench SF=N INCREMENT=1`, or
generated here when missing) are split as bench/increment.py splits them: every file holding records of the
last month cut before its first such record, header kept. Then, in `bench/work/sf<N>-weather-month/`:
1. the job (`python -m spark_prep.weather_job`, as `flightdelay prep` starts it) on the cut files: a full run;
2. the cut files replaced by the complete ones, and the job again: the incremental run of a new month;
3. unless `--no-check`: a full run on the complete files into a second lake, and the two lakes' hourly and
   daily tables compared row for row (an order-free hash per table, in DuckDB).
Each run's wall time, and what the job says it did (mode, files parsed, files that only grew, months changed),
go to `bench/results/weather-month-sf<N>-<time>.json`. Run it from two checkouts to compare code versions on
the same files: the job and the module are the checkout's own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import duckdb

from bench.increment import Split, apply_increment, last_month, lcd_before_month
from bench.run import WORK_DIR, machine, monitored_run
from bench.tables import PROJECT_ROOT, save_result

STATIONS = PROJECT_ROOT / "seeds" / "airport_weather_stations.csv"
LAKE_TABLES = ("hourly_observations", "daily_summaries")


def job(raw_lcd: Path, lake: Path) -> dict[str, object]:
    """The weather job on `raw_lcd` into `lake`, measured as bench/run.py measures the flow (wall, and CPU and
    peak RSS over the process tree, Spark's JVM included); with what its result line says it did."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1"}
    command = [sys.executable, "-m", "spark_prep.weather_job", "--raw-weather", str(raw_lcd),
               "--stations", str(STATIONS), "--lake", str(lake), "--master", "local[2]"]
    returncode, output, wall, monitor = monitored_run(command, env)
    if returncode != 0:
        raise SystemExit(f"the weather job failed (exit {returncode}):\n{output[-4000:]}")
    result = json.loads(next(line for line in reversed(output.splitlines()) if line.startswith("{")))
    shown = ("mode", "rows_read", "hourly_rows", "files_processed", "files_appended", "changed_months")
    return {"wall_seconds": round(wall, 1), **monitor.totals(), "load_average_1min": round(os.getloadavg()[0], 2),
            **{key: result.get(key) for key in shown}}


def lake_hashes(lake: Path) -> dict[str, list]:
    """Rows and an order-free content hash of each committed lake table."""
    from spark_prep import lake_snapshots

    out = {}
    with duckdb.connect() as con:
        for table in LAKE_TABLES:
            files = lake_snapshots.parquet_files(lake / "weather", table)
            out[table] = list(con.execute(
                "select count(*), coalesce(sum(hash(t)), 0)::varchar from read_parquet(?, hive_partitioning = true, "
                "hive_types_autocast = false) as t", [files]).fetchone())
    return out


def split_lcd(complete: Path, root: Path, month: str) -> Split:
    """Write into root/lcd the LCD files of complete/lcd as they stood before `month`, by bench/increment.py's
    rule (lcd_before_month); the Split names the files cut, as paths relative to `root`."""
    shutil.rmtree(root / "lcd", ignore_errors=True)
    (root / "lcd").mkdir(parents=True)
    split = Split(month)
    for path in sorted((complete / "lcd").glob("*.csv")):
        kept, cut = lcd_before_month(path.read_bytes(), month)
        if cut:
            split.truncated.append(f"lcd/{path.name}")
        if kept is not None:
            (root / "lcd" / path.name).write_bytes(kept)
    return split


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The weather job on a new month: incremental against full.")
    parser.add_argument("--sf", type=int, required=True)
    parser.add_argument("--no-check", action="store_true", help="skip the full run the lake is compared with")
    args = parser.parse_args(argv)
    complete = WORK_DIR / f"sf{args.sf}-increment" / "full" / "raw"
    if not (complete / "lcd").is_dir():
        from bench.generate import generate

        generate(args.sf, complete)
    month = last_month(complete)
    root = WORK_DIR / f"sf{args.sf}-weather-month"
    for folder in ("lcd", "lake", "lake-full"):
        shutil.rmtree(root / folder, ignore_errors=True)
    split = split_lcd(complete, root, month)
    runs = {"full_before": job(root / "lcd", root / "lake")}
    apply_increment(complete, root, split)  # the cut files replaced whole, as finished downloads
    runs["new_month"] = job(root / "lcd", root / "lake")
    result = {"kind": f"weather-month-sf{args.sf}", "scale_factor": args.sf, "month": month,
              "lcd_files": len(list((root / "lcd").glob("*.csv"))), "files_cut": len(split.truncated), "runs": runs,
              "machine": machine()}
    if not args.no_check:
        runs["full_after"] = job(root / "lcd", root / "lake-full")
        incremental, full = lake_hashes(root / "lake"), lake_hashes(root / "lake-full")
        result["lake_equals_full_run"] = incremental == full
        result["lake"] = incremental
    path = save_result(result["kind"], result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
