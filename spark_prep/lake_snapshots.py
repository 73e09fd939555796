"""The weather lake's commit pointer: which run's copy of each table a reader sees.

Every `prep` run writes a complete copy of each table it produces into a folder of its own,
`weather/<table>/run-<run id>/station_id=.../observation_month=.../*.parquet`, and only then commits, by
replacing one small file, `weather/_current.json`, in one step (a rename on a local disk, one PUT on S3:
both atomic). Readers resolve every table through that file (dbt's lake sources, the quality suite, the
PostgreSQL mirror, the Glue catalog), so whatever moment a run is killed at, they see all tables of one
run: the new one if the pointer was replaced, else the one before. Nothing is ever half-swapped, because
nothing is swapped. Folders the pointer does not name are a killed run's leftovers; the next run deletes
them (and keeps the previous run's copy, for readers that resolved the pointer just before the commit).

Pure Python, no Spark: the Spark job writes this format and the warehouse side reads it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

POINTER = "_current.json"
# written after a committed run registered its tables in the metastore and deleted what no reader can see: a
# pointer without it names a run killed after its commit, whose follow-up work the next run must still do
FINISHED = "_finished.json"
FORMAT = 1
QUARANTINE = "_quarantine"  # not a table; committed with the run so its rows match the tables they explain
RUN_ID = re.compile(r"[0-9a-z]{1,32}")  # no separators: a run id cannot leave its folder or a SQL string
RUN_FOLDER = re.compile(f"run-{RUN_ID.pattern}")
_TABLE = re.compile(r"_?[a-z][a-z0-9_]{0,62}")


class LakeNotCommitted(LookupError):
    """No run has committed the table a reader asked for (or the pointer is not ours)."""


def run_folder(run_id: str) -> str:
    if not RUN_ID.fullmatch(run_id):
        raise ValueError(f"run id {run_id!r}: expected 1-32 lowercase letters and digits")
    return f"run-{run_id}"


@dataclass(frozen=True)
class Snapshot:
    run_id: str  # the run that committed this pointer
    committed_at: str  # ISO 8601, UTC
    tables: dict[str, str] = field(default_factory=dict)  # table -> folder under weather/, e.g. t/run-<id>
    previous_run_id: str | None = None  # the run committed before; its folders are kept one more run
    # what the tables were built from (spark_prep/lake_inputs.py): {"code_version": str, "lcd": [entry, ...],
    # "daily": {"cdo_units": str | None, "cdo": [entry, ...], "ghcn": [entry, ...]} or None}, each entry a file's
    # name, size, sha256 and its counts (rows_read, rows_loaded, rows_quarantined, blank_lines)
    inputs: dict | None = None
    # table -> "station_id=<id>/observation_month=<YYYY-MM>" -> content digest of that partition's rows
    # ("<rows>:<sum of xxhash64 of each row>"): equal digests, equal rows, without reading data
    partitions: dict[str, dict[str, str]] = field(default_factory=dict)
    summary: dict[str, int] = field(default_factory=dict)  # the lake-wide counts of the run's result

    def months(self, table: str) -> dict[str, str]:
        """The digests of `table`'s partitions (empty if the snapshot has none)."""
        return self.partitions.get(table, {})

    def folder(self, table: str) -> str:
        if table not in self.tables:
            raise LakeNotCommitted(f"no `flightdelay prep` run has committed the lake table {table!r} "
                                   f"(committed: {sorted(self.tables)}). Run `flightdelay prep`.")
        return self.tables[table]

    def kept_folders(self) -> set[str]:
        """Folders a reader may still be reading: every current one and the previous run's."""
        previous = {f"{table}/{run_folder(self.previous_run_id)}" for table in self.tables} \
            if self.previous_run_id else set()
        return {*self.tables.values(), *previous}

    def dumps(self) -> str:
        return json.dumps({"format": FORMAT, "run_id": self.run_id, "committed_at": self.committed_at,
                           "previous_run_id": self.previous_run_id, "tables": self.tables, "inputs": self.inputs,
                           "partitions": self.partitions, "summary": self.summary}, indent=2,
                          sort_keys=True) + "\n"


def parse(text: str, where: str) -> Snapshot:
    """A pointer's text -> Snapshot, refusing anything but the exact shape written above: the folders it
    names end up inside file paths and SQL string literals, so they are checked, not trusted."""
    try:
        data = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
        run_id, tables = data["run_id"], data["tables"]
        previous = data.get("previous_run_id")
        ok = (data.get("format") == FORMAT and isinstance(run_id, str) and RUN_ID.fullmatch(run_id)
              and (previous is None or (isinstance(previous, str) and RUN_ID.fullmatch(previous)))
              and isinstance(tables, dict) and all(
                  isinstance(t, str) and _TABLE.fullmatch(t) and isinstance(f, str)
                  and re.fullmatch(f"{re.escape(t)}/{RUN_FOLDER.pattern}", f) for t, f in tables.items())
              and _valid_extras(data))
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise LakeNotCommitted(f"{where} is not a lake pointer this version wrote; move it away and run "
                               f"`flightdelay prep` to rebuild the lake")
    return Snapshot(run_id, str(data.get("committed_at", "")), dict(tables), previous, data.get("inputs"),
                    data.get("partitions") or {}, data.get("summary") or {})


def _valid_entries(entries: object) -> bool:
    return isinstance(entries, list) and all(
        isinstance(e, dict) and isinstance(e.get("file"), str) and isinstance(e.get("sha256"), str)
        and all(isinstance(v, int) and not isinstance(v, bool) for k, v in e.items() if k not in ("file", "sha256"))
        for e in entries)


def _valid_extras(data: dict) -> bool:
    """The optional keys later versions write (a pointer without them is from before incremental runs): the
    input manifest, the partition digests and the run's counts, each of its exact shape."""
    inputs, partitions, summary = data.get("inputs"), data.get("partitions") or {}, data.get("summary") or {}
    daily = inputs.get("daily") if isinstance(inputs, dict) else None
    return ((inputs is None or (isinstance(inputs, dict) and isinstance(inputs.get("code_version"), str)
                                and _valid_entries(inputs.get("lcd"))
                                and (daily is None or (isinstance(daily, dict)
                                                       and all(_valid_entries(daily.get(k)) for k in ("cdo", "ghcn"))
                                                       and isinstance(daily.get("cdo_units"), str | None)))))
            and isinstance(partitions, dict) and all(
                isinstance(t, str) and isinstance(p, dict)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in p.items())
                for t, p in partitions.items())
            and isinstance(summary, dict) and all(isinstance(v, int) for v in summary.values()))


def parquet_files(weather_dir: Path, table: str) -> str:
    """A glob that matches exactly the Parquet files of the committed copy of `table`, for DuckDB's
    read_parquet: the folder's own characters are taken literally (`[`, `]`, `*`, `?` in a lake path would
    otherwise be a pattern and read some other folder's files)."""
    return literal_glob(str(table_dir(weather_dir, table))) + "/*/*/*.parquet"


def has_parquet_files(weather_dir: Path, table: str) -> bool:
    """Whether the committed copy of `table` holds a file: a table committed empty (the daily files' table
    before such files are given) has none, and read_parquet refuses a pattern that matches nothing."""
    return any(table_dir(weather_dir, table).glob("*/*/*.parquet"))


def literal_glob(path: str) -> str:
    """`path` as a glob pattern that matches only itself: each pattern character in a class of its own."""
    return "".join(f"[{c}]" if c in "[]*?" else c for c in path)


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):  # readers that keep the first and readers that keep the last would differ
        raise ValueError(f"duplicate keys {sorted({k for k in keys if keys.count(k) > 1})}")
    return dict(pairs)


def read_local(weather_dir: Path) -> Snapshot | None:
    """The committed snapshot of a lake on local disk; None before the first commit."""
    pointer = weather_dir / POINTER
    try:
        text = pointer.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return parse(text, str(pointer))


def finished_local(weather_dir: Path, snapshot: Snapshot) -> bool:
    """Whether the run that committed `snapshot` also finished what follows its commit (FINISHED), and no
    folder the pointer does not keep is left in its tables (a run killed before its commit leaves some)."""
    marker = weather_dir / FINISHED
    try:  # anything but a small regular file of ours (a folder, a FIFO, a link to a device) is "not finished"
        if not marker.is_file() or marker.stat().st_size > 4096:
            return False
        finished = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(finished, dict) or finished.get("run_id") != snapshot.run_id:
        return False
    kept = snapshot.kept_folders()
    for table in snapshot.tables:
        folder = weather_dir / table
        if folder.is_dir() and any(RUN_FOLDER.fullmatch(child.name) and f"{table}/{child.name}" not in kept
                                   for child in folder.iterdir()):
            return False
    return True


def table_dir(weather_dir: Path, table: str) -> Path:
    """The folder of the committed copy of `table` (Hive-partitioned Parquet under it)."""
    snapshot = read_local(weather_dir)
    if snapshot is None:
        raise LakeNotCommitted(f"the weather lake at {weather_dir} has no committed `prep` run ({POINTER} is "
                               "missing). Run `flightdelay prep`.")
    return weather_dir / snapshot.folder(table)
