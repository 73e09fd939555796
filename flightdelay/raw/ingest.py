"""`flightdelay ingest PATH...`: take raw files as users download them, land each one in the raw zone and run the
step that loads it. Reports per file: format, rows read, loaded, quarantined. What a file is and the name it
lands under are decided in `detect.py` (which refuses a file it cannot place with the columns it misses and the
ones it found); this file stages, unzips, loads and lands, and undoes a landing whose load failed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from flightdelay.raw.bts_reader import sha256_of
from flightdelay.raw.detect import (
    LANDING_DIRS,
    Detected,
    IngestError,
    collect,
    detect,
    landing_target,
    refuse_name_clashes,
    zip_member,
)
from flightdelay.settings import Settings

__all__ = ["Detected", "IngestError", "IngestResult", "detect", "ingest", "landing_target", "render"]

# Outputs below this size are never refused for their compression ratio: small CSVs compress very well.
RATIO_FLOOR_BYTES = 64 << 20


PARTIAL = ".partial-"



@dataclass
class IngestResult:
    source: str
    format: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    blank_lines: int = 0
    note: str = ""

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.blank_lines


def unzip_member(settings: Settings, path: Path, target: Path) -> None:
    """Stream the zip's CSV to `target`, refusing a zip bomb: more than `max_unzipped_bytes`, or more than
    `max_zip_ratio` times the compressed size (counted as it expands: declared sizes can lie)."""
    member = zip_member(path)
    limit = min(settings.max_unzipped_bytes,
                max(int(settings.max_zip_ratio * max(member.compress_size, 1)), RATIO_FLOOR_BYTES))
    if member.file_size > limit:
        raise IngestError(_bomb(path, member, member.file_size, limit, settings))
    written = 0
    with zipfile.ZipFile(path) as archive, archive.open(member) as source, target.open("wb") as out:
        for block in iter(lambda: source.read(1 << 20), b""):
            written += len(block)
            if written > limit:
                raise IngestError(_bomb(path, member, written, limit, settings))
            out.write(block)


def _bomb(path: Path, member: zipfile.ZipInfo, size: int, limit: int, settings: Settings) -> str:
    return (f"{path}: {member.filename} expands to more than {limit:,} bytes ({size:,} so far, from "
            f"{member.compress_size:,} compressed); refused as a possible zip bomb. If the file is genuine, raise "
            f"FLIGHTDELAY_MAX_UNZIPPED_BYTES (now {settings.max_unzipped_bytes:,}) or FLIGHTDELAY_MAX_ZIP_RATIO "
            f"(now {settings.max_zip_ratio:g})")


def stage(settings: Settings, detected: Detected) -> Path:
    """A private copy beside the landing place, under a name no step reads (`.<name>.partial-<pid>`): what
    is loaded from it lands by a rename only once it was read and loaded."""
    target = landing_target(settings, detected)
    target.parent.mkdir(parents=True, exist_ok=True)
    # short, whatever the name's length: the name itself may be near the file system's 255-byte limit
    temp = target.with_name(f".{hashlib.sha256(target.name.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}"
                            f"{PARTIAL}{os.getpid()}")
    try:
        if detected.format == "bts_zip":
            unzip_member(settings, detected.path, temp)
        else:
            shutil.copyfile(detected.path, temp)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


@dataclass(frozen=True)
class Landed:
    target: Path
    replaced: Path | None  # where the earlier file of the same name was kept
    note: str


def commit_landing(settings: Settings, temp: Path, target: Path) -> Landed:
    """Rename the staged copy into place. An earlier, different file of the same name (a re-delivered month)
    is never overwritten silently: it is kept under raw/_replaced/ and the report says so."""
    if target.exists() and sha256_of(target) == sha256_of(temp):
        temp.unlink()
        return Landed(target, None, "")
    replaced = None
    if target.exists():
        replaced = settings.raw_dir / "_replaced" / target.parent.name / f"{target.stem}.{sha256_of(target)[:12]}" \
            f"{target.suffix}"
        replaced.parent.mkdir(parents=True, exist_ok=True)
        os.replace(target, replaced)
    os.replace(temp, target)
    note = f"replaces the earlier {target.name}, kept as {replaced}" if replaced else ""
    return Landed(target, replaced, note)


def undo_landing(landed: Landed) -> None:
    landed.target.unlink(missing_ok=True)
    if landed.replaced is not None:
        os.replace(landed.replaced, landed.target)


def remove_stale_partials(settings: Settings) -> None:
    """Staged copies left by a killed ingest (its process is gone) are removed."""
    for folder in {settings.raw_dir / name for name in LANDING_DIRS.values()}:
        for partial in folder.glob(f".*{PARTIAL}*") if folder.is_dir() else ():
            pid = partial.name.rsplit(PARTIAL, 1)[-1]
            if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
                partial.unlink(missing_ok=True)


def ingest(settings: Settings, paths: list[Path]) -> list[IngestResult]:
    from flightdelay.flow import raw_steps

    files, skipped = collect(paths)
    if not files:
        raise IngestError(f"nothing to ingest: no .csv, .zip or .dly files under {[str(p) for p in paths]}")
    detected = refuse_name_clashes(settings, [detect(path) for path in files])  # refuse before landing anything
    remove_stale_partials(settings)

    results: list[IngestResult] = []
    failures: list[str] = []
    flights = [d for d in detected if d.format in ("bts_csv", "bts_zip")]
    if flights:
        results += _ingest_flights(settings, flights, failures)
    weather = [d for d in detected if d.format in ("lcd_hourly", "cdo_daily", "ghcn_dly")]
    if weather:
        results += _ingest_weather(settings, weather, raw_steps)
    if failures:
        raise IngestError("\n".join(failures) + ("\nThe other files were ingested." if results else ""), results)
    broken = [r for r in results if not r.reconciles]
    if broken:
        raise IngestError(f"rows read != loaded + quarantined + blank: {broken}")
    results += [IngestResult(str(path), "skipped", 0, 0, 0, note="not a data file suffix") for path in skipped]
    return results


def _ingest_flights(settings: Settings, flights: list[Detected], failures: list[str]) -> list[IngestResult]:
    """Each file is staged, loaded from the staged copy under its landing name, and landed only when its
    load committed; a file that cannot be read is refused whole and nothing of it lands."""
    from flightdelay.raw.load import FlightLoader, LoadError

    results = []
    with FlightLoader(settings.warehouse(), settings.airport_id_map) as loader:
        for d in flights:
            try:
                temp = stage(settings, d)
            except IngestError as refused:
                failures.append(str(refused))
                continue
            try:
                load = loader.load_file(temp, source_name=d.landing_name)
            except LoadError as error:
                temp.unlink(missing_ok=True)
                failures.append(f"{str(error).replace(str(temp), str(d.path))}; nothing of it was landed")
                continue
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            if load.status.startswith("duplicate"):
                temp.unlink()  # landing it would make every later `load` find the same flights twice
                note = f"not landed: the same bytes were loaded as {load.status.removeprefix('duplicate of ')}"
            else:
                landed = commit_landing(settings, temp, landing_target(settings, d))
                note = "; ".join(n for n in ("" if load.status == "loaded" else load.status, landed.note) if n)
            results.append(IngestResult(str(d.path), d.format, load.rows_read, load.rows_loaded, load.rows_rejected,
                                        load.blank_lines, note))
    return results


def _ingest_weather(settings: Settings, weather: list[Detected], raw_steps) -> list[IngestResult]:
    """The Spark job reads the raw weather zone, so the files land first; if the job fails they are taken
    out again (and what they replaced put back), so nothing stays landed that was not read."""
    landed: dict[Detected, Landed] = {}
    try:
        for d in weather:
            landed[d] = commit_landing(settings, stage(settings, d), landing_target(settings, d))
        result = raw_steps.run_weather_job(settings, allow_daily_only=True)
    except BaseException as failure:
        for done in landed.values():
            undo_landing(done)
        if isinstance(failure, IngestError):
            raise
        if isinstance(failure, Exception):
            raise IngestError(f"{[str(d.path) for d in weather]}: the weather job failed, so none of them was "
                              f"landed: {failure}") from failure
        raise
    per_file = {row["source_file"]: row for row in [*result["files"], *(result.get("cdo_files") or [])]}
    results = []
    for d in weather:
        row = per_file.get(d.landing_name)
        if row is None:
            raise IngestError(f"{d.path}: landed as {landed[d].target} but the weather job did not report it")
        results.append(IngestResult(str(d.path), d.format, row["rows_read"], row["rows_loaded"],
                                    row["rows_quarantined"], row.get("blank_lines", 0), landed[d].note))
    return results


def render(results: list[IngestResult]) -> str:
    width = max([len(Path(r.source).name) for r in results] + [4])
    lines = [f"{'file':<{width}}  {'format':<10}  {'read':>9}  {'loaded':>9}  {'quarantined':>11}  {'blank':>6}"]
    for r in results:
        note = f"  ({r.note})" if r.note else ""
        lines.append(f"{Path(r.source).name:<{width}}  {r.format:<10}  {r.rows_read:>9,}  {r.rows_loaded:>9,}  "
                     f"{r.rows_quarantined:>11,}  {r.blank_lines:>6,}{note}")
    return "\n".join(lines)
