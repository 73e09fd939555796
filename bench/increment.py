"""`make bench SF=N INCREMENT=1`: the flow kept up to date one month at a time, against a full rebuild.

The generated raw files (bench/generate.py: one BTS file per month, `bts/bts_ontime_<year>_<month>.csv`; one
LCD file per station and year, `lcd/LCD_<station>_<year>.csv`, in date order) are split into
- a "before" state without the last calendar month: that month's BTS file(s) withheld, and every LCD file
  holding records of that month (or later) cut before its first such record, header kept, as a user who
  downloaded the station files a month ago would have them; and
- "one new month": the withheld BTS file(s) added, and the cut LCD files replaced by the complete ones (as
  re-downloaded), each written beside its place and renamed into it, byte for byte the generated file.
Files the split leaves alone (earlier years' LCD files) are not rewritten by the increment.

The scenario, in `bench/work/sf<N>-increment/`:
1. `incremental/`: `flightdelay run --skip-sample` on the before state (the "full flow" figure); the month is
   added and the same command runs again (the "new month" figure), then once more with nothing changed.
2. `full/`: the same command from scratch (no lake, warehouse or artifacts) on the complete files: the "full
   flow after the month" figure and the reference the incrementally maintained marts must equal.
3. The published marts of both are fingerprinted by bench/mart_hashes.py and compared.
Each run's wall time, CPU time and peak RSS are sampled per stage as bench/run.py does for the whole flow;
the result is `bench/results/sf<N>-increment-<time>.json`.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# the year and month a BTS file holds, from its name as generate.py (and BTS's download page) writes it
BTS_MONTH = re.compile(r"(\d{4})_(\d{1,2})\.(?:csv|zip)$", re.IGNORECASE)
RUN_NAMES = ("full_flow_before", "new_month", "nothing_changed", "full_flow_after")
DONE_LINE = re.compile(r"^\[\d+/\d+\] (\w+) done in ([\d.]+) s")
FLOW_COMMAND = ["-m", "flightdelay.cli", "run", "--skip-sample"]


@dataclass
class Split:
    """What the before state lacks: `month` is YYYY-MM; paths are relative to the raw folder."""

    month: str
    withheld: list[str] = field(default_factory=list)  # BTS files of the month, added by the increment
    truncated: list[str] = field(default_factory=list)  # LCD files cut before the month, replaced whole
    flights_added: int = 0  # records in the withheld BTS files
    weather_rows_added: int = 0  # LCD records cut off


def _bts_month(path: Path) -> str | None:
    match = BTS_MONTH.search(path.name)
    return f"{int(match.group(1)):04d}-{int(match.group(2)):02d}" if match else None


def last_month(raw: Path) -> str:
    """The latest month (YYYY-MM) a BTS file under raw/bts is named for."""
    months = [month for path in (raw / "bts").iterdir() if (month := _bts_month(path))]
    if not months:
        raise ValueError(f"no BTS file named <...>_<year>_<month>.csv under {raw / 'bts'}")
    return max(months)


def raw_records(data: bytes) -> Iterator[tuple[bytes, list[str]]]:
    """(the record's bytes exactly as in the file, its fields) for every CSV record, header first; a quoted
    line break stays inside its record, a blank line is a record without fields."""
    lines = data.splitlines(keepends=True)
    position = 0

    def feed() -> Iterator[str]:
        nonlocal position
        while position < len(lines):
            position += 1
            yield lines[position - 1].decode("utf-8", errors="replace")

    start = 0
    for fields in csv.reader(feed()):
        yield b"".join(lines[start:position]), fields
        start = position


def truncate_lcd(data: bytes, month: str) -> tuple[bytes, int]:
    """The file cut before its first record dated in `month` or later (LCD `DATE` is YYYY-MM-DDThh:mm:ss),
    header kept; and how many records were cut off (0: the file is returned as it is)."""
    records = raw_records(data)
    header_bytes, header = next(records)
    names = [name.strip().lstrip("\ufeff").upper() for name in header]
    if "DATE" not in names:
        raise ValueError(f"an LCD file without a DATE column: {header}")
    date = names.index("DATE")
    kept, cut = [header_bytes], 0
    for raw, fields in records:
        if cut or (len(fields) > date and fields[date][:7] >= month):
            cut += bool(fields)
        else:
            kept.append(raw)
    return b"".join(kept), cut


def _count_records(data: bytes) -> int:
    return sum(1 for _, fields in raw_records(data) if fields) - 1


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def lcd_before_month(data: bytes, month: str) -> tuple[bytes | None, int]:
    """An LCD file as a user who downloaded it before `month` has it (truncate_lcd), or None when nothing of it
    preceded the month: such a file had not been published then, so it is not there at all; and how many
    records were cut off."""
    kept, cut = truncate_lcd(data, month)
    return (kept if not cut or _count_records(kept) > 0 else None), cut


def split_last_month(complete: Path, before: Path) -> Split:
    """Write into `before` (emptied first) the raw files of `complete` without its last month."""
    shutil.rmtree(before, ignore_errors=True)
    split = Split(last_month(complete))
    for path in sorted(p for p in complete.rglob("*") if p.is_file()):
        relative = path.relative_to(complete)
        kind = relative.parts[0]
        if kind == "bts" and _bts_month(path) == split.month:
            split.withheld.append(relative.as_posix())
            split.flights_added += _count_records(path.read_bytes())
            continue
        if kind == "lcd" and path.suffix.lower() == ".csv":
            kept, cut = lcd_before_month(path.read_bytes(), split.month)
            if cut:
                split.truncated.append(relative.as_posix())
                split.weather_rows_added += cut
                if kept is not None:
                    _write(before / relative, kept)
                continue
        (before / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, before / relative)
    return split


def apply_increment(complete: Path, raw: Path, split: Split) -> None:
    """Add the month: each withheld or cut file copied whole from `complete`, next to the raw folder first and
    then renamed into place, as a finished download would be."""
    for relative in split.withheld + split.truncated:
        target = raw / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = raw.parent / f".{target.name}.download"
        shutil.copyfile(complete / relative, partial)
        os.replace(partial, target)


class FlowRunFailed(Exception):
    """A measured run exited non-zero: `run` holds what was measured of it (its stages up to the failure)."""

    def __init__(self, what: str, returncode: int, run: dict[str, object], output_tail: str):
        super().__init__(f"{what} failed (exit {returncode})")
        self.run = {**run, "failed": f"exit {returncode}", "output_tail": output_tail}


def flow_run(env: dict[str, str], what: str) -> dict[str, object]:
    """`flightdelay run --skip-sample` measured as bench/run.py measures it: wall, CPU and peak RSS of the whole
    process tree, per stage. Stage seconds are the run record's when this run wrote it, else the progress lines'."""
    from bench.run import monitored_run

    started_at = time.time()
    load_before = os.getloadavg()[0]  # other work on the machine: the figures are only as quiet as it was
    returncode, output, wall, monitor = monitored_run([sys.executable, *FLOW_COMMAND], env)
    artifacts = Path(env["FLIGHTDELAY_ARTIFACTS"])
    record_path = artifacts / "run_summary.json"
    steps = None
    if record_path.exists() and record_path.stat().st_mtime >= started_at:
        steps = [{"name": step["name"], "seconds": step["seconds"],
                  **({"skipped": step["facts"]["skipped"]} if "skipped" in (step.get("facts") or {}) else {})}
                 for step in json.loads(record_path.read_text())["steps"]]
    if steps is None:  # the flow wrote no record this time: its progress lines are all there is
        steps = [{"name": match.group(1), "seconds": float(match.group(2))}
                 for match in map(DONE_LINE.match, output.splitlines()) if match]
    by_stage = monitor.summary()
    run = {
        "command": "flightdelay " + " ".join(FLOW_COMMAND[3:]),
        "wall_seconds": round(wall, 1),
        **monitor.totals(),
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "stages": [{**step, **by_stage.get(step["name"], {})} for step in steps],
        # what the flow said about skipping (empty until steps skip themselves)
        "skip_lines": [line.strip() for line in output.splitlines() if "skip" in line.lower()][:40],
    }
    if returncode != 0:  # what was measured up to the failure (the flow writes its record step by step)
        print(output[-6000:])
        raise FlowRunFailed(what, returncode, run, output[-3000:])
    evaluation = artifacts / "ml" / "evaluation.json"
    if evaluation.exists() and evaluation.stat().st_mtime >= started_at:
        run["test_roc_auc"] = json.loads(evaluation.read_text())["binary_classification_metrics"]["auc"]["value"]
    return run


def mart_fingerprint(env: dict[str, str]) -> dict[str, object]:
    """bench/mart_hashes.py's fingerprint of the published marts of the run `env` names."""
    from bench.run import PROJECT_ROOT

    done = subprocess.run([sys.executable, "-m", "bench.mart_hashes"], env=env, cwd=PROJECT_ROOT, text=True,
                          capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"bench.mart_hashes failed (exit {done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout[done.stdout.index("{"):])


def differing_marts(reference: dict[str, object], other: dict[str, object]) -> list[str]:
    """Marts whose rows or row hash differ between two fingerprints (a mart missing from one of them too)."""
    return sorted(name for name in set(reference) | set(other)
                  if name != "test_auc" and reference.get(name) != other.get(name))


def run_increment(scale_factor: int, keep: bool) -> dict[str, object]:
    from bench.generate import generate
    from bench.mart_hashes import compare
    from bench.run import WORK_DIR, flow_env, machine

    root = WORK_DIR / f"sf{scale_factor}-increment"
    incremental, full = root / "incremental", root / "full"
    for folder in (incremental, full):  # every measured run starts from raw files only
        for stale in ("raw", "lake", "warehouse", "artifacts"):
            if folder is incremental or stale != "raw":  # full/raw: generate() rewrites only what differs
                shutil.rmtree(folder / stale, ignore_errors=True)
    started = time.perf_counter()
    counts = generate(scale_factor, full / "raw")
    generate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    split = split_last_month(full / "raw", incremental / "raw")
    split_seconds = time.perf_counter() - started
    print(f"SF={scale_factor}: {counts['flight_rows']:,} flights; before state without {split.month} "
          f"({split.flights_added:,} flights in {len(split.withheld)} BTS file(s) withheld, "
          f"{len(split.truncated)} LCD file(s) cut)", flush=True)

    incremental_env = {**os.environ, **flow_env(scale_factor, incremental)}
    full_env = {**os.environ, **flow_env(scale_factor, full)}
    runs: dict[str, dict[str, object]] = {}
    try:
        print("run 1/4: whole flow on the before state", flush=True)
        runs["full_flow_before"] = flow_run(incremental_env, f"the whole flow before {split.month}")
        apply_increment(full / "raw", incremental / "raw", split)
        print(f"run 2/4: {split.month} added", flush=True)
        runs["new_month"] = flow_run(incremental_env, f"the run after adding {split.month}")
        print("run 3/4: nothing changed", flush=True)
        runs["nothing_changed"] = flow_run(incremental_env, "the rerun with nothing changed")
        incremental_marts = mart_fingerprint(incremental_env)
        print("run 4/4: whole flow from scratch on the complete files (the reference)", flush=True)
        runs["full_flow_after"] = flow_run(full_env, "the whole flow on the complete files")
        full_marts = mart_fingerprint(full_env)
    except FlowRunFailed as failure:
        # the runs measured before it are an hour of quiet machine each at SF=30: kept, in a file of their own
        # that the BENCHMARKS.md tables do not read (scenario "increment-failed")
        failed = next(name for name in RUN_NAMES if name not in runs)
        return {"scenario": "increment-failed", "scale_factor": scale_factor,
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                "generated": {**counts, "seconds": round(generate_seconds, 1)},
                "split": {**asdict(split), "flights_before": counts["flight_rows"] - split.flights_added},
                "failed_run": failed, "failure": str(failure), "runs": {**runs, failed: failure.run}}

    differing = differing_marts(full_marts, incremental_marts)
    result = {
        "scenario": "increment",
        "scale_factor": scale_factor,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "generated": {**counts, "seconds": round(generate_seconds, 1)},
        "split": {**asdict(split), "flights_before": counts["flight_rows"] - split.flights_added,
                  "seconds": round(split_seconds, 1)},
        "runs": runs,
        "peak_rss_mib": max(run["peak_rss_mib"] for run in runs.values()),
        "reference": "the whole flow from scratch in a fresh work dir on the complete files (runs.full_flow_after)",
        "marts_identical": not differing,
        "differing_marts": differing,
        # compare() also holds the test AUCs to within 0.002 of each other
        "differences": compare(full_marts, incremental_marts),
        "mart_fingerprints": {"incremental": incremental_marts, "full_refresh": full_marts},
    }
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return result
