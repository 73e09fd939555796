"""`flightdelay ingest PATH...`: take raw files as users download them, detect each one's format, land
it in the raw zone, and run the step that loads it. Reports per file: format, rows read, loaded,
quarantined; refuses a file it cannot place with the columns it misses and the ones it found.

Formats: BTS On-Time Reporting CSV (modern or legacy names, any column selection) and its monthly
`.zip` download; NOAA LCD hourly CSV; NOAA CDO daily CSV export; GHCN-Daily `.dly`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import BinaryIO

from flightdelay.raw.load import FIELDS, canonical_header, sha256_of
from flightdelay.settings import Settings


class IngestError(ValueError):
    """A file that cannot be ingested; the message names it and says why. `results` holds what the same
    call did ingest."""

    def __init__(self, message: str, results: list[IngestResult] | None = None):
        super().__init__(message)
        self.results = results or []


BTS_REQUIRED = tuple(f.source for f in FIELDS if f.required)
# and REPORT_TYPE or an Hourly* column: LCD files cut down to STATION, DATE and a few Hourly* columns are common
LCD_REQUIRED = ("STATION", "DATE")
CDO_REQUIRED = ("STATION", "DATE")
CDO_ELEMENTS = ("TMAX", "TMIN", "TAVG", "PRCP", "SNOW", "AWND")
# ID(11) YEAR(4) MONTH(2) ELEMENT(4) then day groups: the start of every GHCN-Daily line
DLY_LINE = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]{4}(0[1-9]|1[0-2])[A-Z0-9]{4}[ -][ 0-9-]{4}")


@dataclass(frozen=True)
class Detected:
    path: Path
    format: str  # bts_csv | bts_zip | lcd_hourly | cdo_daily | ghcn_dly
    landing_name: str


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


def _csv_header(text: str) -> list[str]:
    header = next(csv.reader(io.StringIO(text)), None) or []
    return [h.strip() for h in header]


def classify_header(path: Path, header: list[str]) -> str:
    """bts_csv | lcd_hourly | cdo_daily, or IngestError saying what each layout misses."""
    canonical = [canonical_header(h) for h in header]
    upper = [h.upper() for h in header]
    bts_missing = [c for c in BTS_REQUIRED if c not in canonical]
    # a BTS file with numeric airport ids still is a BTS file: the loader explains what to do
    bts_missing = [c for c in bts_missing if not (c in ("ORIGIN", "DEST") and f"{c}_AIRPORT_ID" in canonical)]
    if not bts_missing:
        return "bts_csv"
    lcd_missing = [c for c in LCD_REQUIRED if c not in upper]
    if not any(h == "REPORT_TYPE" or h.startswith("HOURLY") for h in upper):
        lcd_missing.append("'REPORT_TYPE' or one of the Hourly* columns")
    if not lcd_missing:
        return "lcd_hourly"
    cdo_missing = [c for c in CDO_REQUIRED if c not in upper]
    if not cdo_missing and any(e in upper for e in CDO_ELEMENTS):
        return "cdo_daily"
    if not cdo_missing:
        cdo_missing = [f"one of {list(CDO_ELEMENTS)}"]
    raise IngestError(
        f"{path}: unknown layout. As BTS On-Time Reporting it misses {bts_missing}; as NOAA LCD hourly it "
        f"misses {lcd_missing}; as a NOAA CDO daily export it misses {cdo_missing}. Found columns: {header}"
    )


# A header is short; reading more than this to find the first line would read a hostile file whole.
HEADER_PROBE_BYTES = 64 * 1024
# Outputs below this size are never refused for their compression ratio: small CSVs compress very well.
RATIO_FLOOR_BYTES = 64 << 20


def _first_line(handle: BinaryIO) -> str:
    return handle.readline(HEADER_PROBE_BYTES).decode("utf-8-sig", errors="replace").rstrip("\r\n")


def _check_name(path: Path, name: str) -> str:
    """A landing name is the file's own name: it must be a plain name a shell, Spark and S3 keep as is."""
    # Hadoop (the Spark job's file listing) skips names starting with "." or "_" as hidden.
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise IngestError(f"{path}: the name is longer than {MAX_NAME_BYTES} bytes (file systems stop at 255 and "
                          "landing adds to it); rename the file shorter and ingest it again")
    if not name or name[0] in "._" or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise IngestError(f"{path}: the name {name!r} cannot be landed (empty, starting with '.' or '_', which "
                          "Spark skips as hidden, or with control characters); rename the file and ingest it again")
    return name


def _zip_member(path: Path) -> zipfile.ZipInfo:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise IngestError(f"{path}: not a readable zip archive ({error}); download it again") from None
    members = [m for m in infos if m.filename.lower().endswith(".csv") and not m.is_dir()]
    if len(members) != 1:
        raise IngestError(f"{path}: a BTS monthly .zip holds one CSV; found {[m.filename for m in infos]}")
    return members[0]


def detect(path: Path) -> Detected:
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: file is empty")
    if zipfile.is_zipfile(path):
        member = _zip_member(path)
        try:
            with zipfile.ZipFile(path) as archive, archive.open(member) as handle:
                first_line = _first_line(handle)
        except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError, EOFError) as error:
            raise IngestError(f"{path}: cannot read {member.filename} inside the zip ({error}); "
                              "download it again, unencrypted") from None
        if classify_header(path, _csv_header(first_line)) != "bts_csv":
            raise IngestError(f"{path}: the CSV inside ({member.filename}) is not a BTS On-Time Reporting file")
        # zips made on Windows separate folders with backslashes; the member's folders are never used
        return Detected(path, "bts_zip", _check_name(path, PureWindowsPath(member.filename).name))
    with path.open("rb") as handle:
        first_line = _first_line(handle)
    if DLY_LINE.match(first_line):
        name = path.name if path.suffix == ".dly" else path.name + ".dly"
        return Detected(path, "ghcn_dly", _check_name(path, name))
    return Detected(path, classify_header(path, _csv_header(first_line)), _check_name(path, path.name))


MAX_NAME_BYTES = 200
LANDING_DIRS = {"bts_csv": "bts", "bts_zip": "bts", "lcd_hourly": "lcd", "cdo_daily": "cdo", "ghcn_dly": "ghcn"}
PARTIAL = ".partial-"


def landing_target(settings: Settings, detected: Detected) -> Path:
    return settings.raw_dir / LANDING_DIRS[detected.format] / detected.landing_name


def unzip_member(settings: Settings, path: Path, target: Path) -> None:
    """Stream the zip's CSV to `target`, refusing a zip bomb: more than `max_unzipped_bytes`, or more than
    `max_zip_ratio` times the compressed size (counted as it expands: declared sizes can lie)."""
    member = _zip_member(path)
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


DATA_SUFFIXES = (".csv", ".zip", ".dly")


def collect(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Files named on the command line are all ingested; inside folders, only files with a data suffix
    (.csv, .zip, .dly) are, and the rest are reported as skipped (READMEs, checksums, ...)."""
    files: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        path = Path(path)
        if not path.is_dir():
            files.append(path)
            continue
        for candidate in sorted(p for p in path.rglob("*") if p.is_file()):
            (files if candidate.suffix.lower() in DATA_SUFFIXES else skipped).append(candidate)
    return files, skipped


def name_key(name: str) -> str:
    """A name as macOS sees it (its file systems ignore Unicode normalisation and, by default, letter case;
    Windows ignores case): Unicode's canonical caseless match, NFD(casefold(NFD(name)))."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def _twin_names(first: str, second: str) -> str:
    """Why two names that differ are still one: ascii() escapes them, since printed they look the same."""
    if unicodedata.normalize("NFC", first) == unicodedata.normalize("NFC", second):
        how, where = "Unicode normalisation (the same characters, composed or decomposed)", "macOS"
    elif first.casefold() == second.casefold():
        how, where = "letter case", "macOS and Windows"
    else:
        how, where = "Unicode normalisation and letter case", "macOS"
    return (f"{ascii(first)} and {ascii(second)}, which differ only in {how}: one name on {where}, where one "
            "file would overwrite the other, and two files on Linux and S3")


def refuse_name_clashes(settings: Settings, detected: list[Detected]) -> list[Detected]:
    """Two different files that would land under one name (same base name from different folders) are
    refused before anything lands; the same file named twice is ingested once. So are names that differ only
    in Unicode normalisation or letter case (café.csv composed and decomposed, BTS.csv and bts.csv), among the
    files of one ingest and against the files already landed: the raw zone may live on a file system that
    treats them as one name (macOS) or on one that keeps both (Linux, S3), and either way one delivery would
    silently replace or double another."""
    by_target: dict[Path, Detected] = {}
    by_key: dict[tuple[Path, str], Detected] = {}
    unique = []
    for d in detected:
        target = landing_target(settings, d)
        other = by_target.setdefault(target, d)
        if other is d:
            twin = by_key.setdefault((target.parent, name_key(target.name)), d)
            if twin is not d:
                raise IngestError(f"{d.path} and {twin.path} would land in {target.parent} as "
                                  f"{_twin_names(target.name, landing_target(settings, twin).name)}. Rename one (for "
                                  "example add the month or the source) and ingest again; nothing was landed")
            unique.append(d)
        elif sha256_of(other.path) != sha256_of(d.path):
            raise IngestError(f"{d.path} and {other.path} would both land as {target}: two different files of one "
                              "name would replace each other. Rename one (for example add the month or the source) "
                              "and ingest again; nothing was landed")
    landed: dict[Path, dict[str, str]] = {}  # per landing folder: name key -> the landed name
    for d in unique:
        target = landing_target(settings, d)
        if target.parent not in landed:
            landed[target.parent] = {name_key(p.name): p.name for p in sorted(target.parent.iterdir())
                                     if not p.name.startswith(".")} if target.parent.is_dir() else {}
        earlier = landed[target.parent].get(name_key(target.name))
        if earlier is not None and earlier != target.name:
            raise IngestError(f"{d.path} would land in {target.parent} beside the file landed there before: "
                              f"{_twin_names(target.name, earlier)}. If it is a new delivery of that file, "
                              f"rename it to exactly {ascii(earlier)} so that it replaces the earlier one (which is "
                              "kept under raw/_replaced/); if it is another file, give it a distinct name. Then "
                              "ingest again; nothing was landed")
    return unique


def ingest(settings: Settings, paths: list[Path]) -> list[IngestResult]:
    from flightdelay.flow import pipeline

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
        results += _ingest_weather(settings, weather, pipeline)
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
    from flightdelay.raw.load import DuckDBFlightLoader, LoadError

    results = []
    with DuckDBFlightLoader(settings.warehouse_path, settings.airport_id_map) as loader:
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


def _ingest_weather(settings: Settings, weather: list[Detected], pipeline) -> list[IngestResult]:
    """The Spark job reads the raw weather zone, so the files land first; if the job fails they are taken
    out again (and what they replaced put back), so nothing stays landed that was not read."""
    landed: dict[Detected, Landed] = {}
    try:
        for d in weather:
            landed[d] = commit_landing(settings, stage(settings, d), landing_target(settings, d))
        result = pipeline.run_weather_job(settings, allow_daily_only=True)
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
