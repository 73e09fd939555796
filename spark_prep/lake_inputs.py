"""What the lake's committed tables were built from: every raw file (exact name, size, sha256) and the code.

The Spark job records this input manifest in the lake's pointer (spark_prep/lake_snapshots.py) with every
commit; the next run compares the raw files against it. `flightdelay prep` does so before starting Spark at
all (nothing changed: no job), the job itself to find the files to parse (new or changed) and the ones whose
rows must go (changed or removed). The code version covers the job's modules and the stations seed: rows
built by other code or another station list are never mixed with new ones (a full run rebuilds them).

Pure Python, no pyspark: the job (shipped to EMR in spark_prep.zip) and flightdelay both import it.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

# The modules whose source decides what the job writes: spark_prep's by their name in the package, then
# raw_contracts' by their full name.
CODE_MODULES = ("weather_job", "cdo_daily", "ghcn_daily", "lake_inputs", "lake_schema", "lake_snapshots",
                "lake_tables", "lcd_hourly", "lcd_quarantine", "lcd_records", "raw_contracts",
                "raw_contracts.ranges", "raw_contracts.records")
# Keys of a manifest entry that identify the file's bytes; the others are its counts from the run that read it.
IDENTITY = ("file", "size", "sha256")
COUNTS = ("rows_read", "rows_loaded", "rows_quarantined", "blank_lines")


def _source(module: str) -> str | None:
    """A module's source text, found without importing it (no pyspark needed); None if it cannot be found."""
    name = module if module.startswith("raw_contracts") else f"spark_prep.{module}"
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    source = None
    if spec is not None and spec.loader is not None and hasattr(spec.loader, "get_source"):
        source = spec.loader.get_source(spec.name)
    # a file's loader reads with universal newlines, a zip's (EMR) does not: the same code is the same version
    return None if source is None else source.replace("\r\n", "\n").replace("\r", "\n")


def code_version(stations: bytes) -> str:
    """sha256 over the job's module sources (CODE_MODULES) and the stations seed's bytes. A module that cannot
    be found hashes as missing, which only makes the next run a full one."""
    digest = hashlib.sha256()
    for module in CODE_MODULES:
        source = _source(module)
        digest.update(f"{module}\0{'missing' if source is None else len(source)}\0".encode())
        digest.update((source or "").encode("utf-8"))
    digest.update(b"stations\0")
    digest.update(stations)
    return digest.hexdigest()


def entry(name: str, content: bytes) -> dict:
    """A file's manifest entry from its bytes."""
    return {"file": name, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}


def local_entry(path: Path) -> dict:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"file": path.name, "size": size, "sha256": digest.hexdigest()}


def left_out(name: str, is_folder: bool, suffix: str = "") -> str | None:
    """Why an entry of an input folder is not read (None: it is read). Folders are not read recursively;
    names starting with '.' or '_' are Hadoop's bookkeeping files (`_SUCCESS`, `.crc`), which its readers
    refuse to open; only names ending in `suffix` are read."""
    if is_folder:
        return f"{name}/ (a folder; folders are not read recursively)"
    if name.startswith((".", "_")):
        return f"{name} (Hadoop treats names starting with '.' or '_' as hidden; rename it to load it)"
    if not name.endswith(suffix):
        return f"{name} (not a {suffix} file)"
    return None


def local_files(folder: Path, suffix: str = "") -> tuple[list[Path], list[str]]:
    """(files the job reads, entries left out with the reason) of a local folder, by the job's rule (left_out)."""
    if not folder.is_dir():
        return [], []
    files, skipped = [], []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        reason = left_out(path.name, path.is_dir(), suffix)
        if reason is None:
            files.append(path)
        else:
            skipped.append(reason)
    return files, skipped


def identity(entries: Iterable[dict] | None) -> list[tuple]:
    """The entries without their counts, in name order: what two manifests are compared on."""
    return sorted(tuple(e[key] for key in IDENTITY) for e in entries or [])


@dataclass(frozen=True)
class Changes:
    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: list[str]
    # of `changed`: files that only grew (lines after the committed bytes), of which only the new lines were read
    appended: list[str] = field(default_factory=list)

    @property
    def to_read(self) -> list[str]:
        return sorted([*self.added, *self.changed])

    @property
    def gone(self) -> list[str]:
        """Files whose committed rows must go: changed (their new rows replace them; not those that only grew,
        whose committed rows stand beside the new ones) or removed."""
        return sorted([*(set(self.changed) - set(self.appended)), *self.removed])

    def with_appended(self, names: Iterable[str]) -> Changes:
        appended = sorted(set(names))
        if not set(appended) <= set(self.changed):
            raise ValueError(f"only a changed file can have grown: {sorted(set(appended) - set(self.changed))}")
        return replace(self, appended=appended)


def diff(previous: Iterable[dict] | None, current: Iterable[dict]) -> Changes:
    before = {e["file"]: (e["size"], e["sha256"]) for e in previous or []}
    now = {e["file"]: (e["size"], e["sha256"]) for e in current}
    return Changes(
        added=sorted(set(now) - set(before)),
        changed=sorted(name for name in set(now) & set(before) if now[name] != before[name]),
        removed=sorted(set(before) - set(now)),
        unchanged=sorted(name for name in set(now) & set(before) if now[name] == before[name]),
    )
