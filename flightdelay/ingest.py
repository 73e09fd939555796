"""`flightdelay ingest PATH...`: take raw files as users download them, detect each one's format, land
it in the raw zone, and run the step that loads it. Reports per file: format, rows read, loaded,
quarantined; refuses a file it cannot place with the columns it misses and the ones it found.

Formats: BTS On-Time Reporting CSV (modern or legacy names, any column selection) and its monthly
`.zip` download; NOAA LCD hourly CSV; NOAA CDO daily CSV export; GHCN-Daily `.dly`.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from flightdelay.load import FIELDS, canonical_header
from flightdelay.settings import Settings


class IngestError(ValueError):
    """A file that cannot be ingested; the message names it and says why."""


BTS_REQUIRED = tuple(f.source for f in FIELDS if f.required)
LCD_REQUIRED = ("STATION", "DATE", "REPORT_TYPE")
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
    note: str = ""

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined


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


def detect(path: Path) -> Detected:
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: file is empty")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if m.lower().endswith(".csv") and not m.endswith("/")]
            if len(members) != 1:
                raise IngestError(f"{path}: a BTS monthly .zip holds one CSV; found {members or archive.namelist()}")
            with archive.open(members[0]) as handle:
                first_line = handle.readline().decode("utf-8-sig", errors="replace")
        if classify_header(path, _csv_header(first_line)) != "bts_csv":
            raise IngestError(f"{path}: the CSV inside ({members[0]}) is not a BTS On-Time Reporting file")
        return Detected(path, "bts_zip", Path(members[0]).name)
    with path.open("rb") as handle:
        first_line = handle.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n")
    if DLY_LINE.match(first_line):
        return Detected(path, "ghcn_dly", path.name if path.suffix == ".dly" else path.name + ".dly")
    return Detected(path, classify_header(path, _csv_header(first_line)), path.name)


LANDING_DIRS = {"bts_csv": "bts", "bts_zip": "bts", "lcd_hourly": "lcd", "cdo_daily": "cdo", "ghcn_dly": "ghcn"}


def land(settings: Settings, detected: Detected) -> Path:
    """Copy (or unzip) the file into the raw zone the steps read; an identical file already there stays."""
    target_dir = settings.raw_dir / LANDING_DIRS[detected.format]
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / detected.landing_name
    if detected.format == "bts_zip":
        with zipfile.ZipFile(detected.path) as archive:
            member = next(m for m in archive.namelist() if Path(m).name == detected.landing_name)
            data = archive.read(member)
        if not (target.exists() and target.read_bytes() == data):
            target.write_bytes(data)
        return target
    if target.exists() and target.resolve() == detected.path.resolve():
        return target
    if not (target.exists() and target.read_bytes() == detected.path.read_bytes()):
        shutil.copyfile(detected.path, target)
    return target


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


def ingest(settings: Settings, paths: list[Path]) -> list[IngestResult]:
    from flightdelay import pipeline

    files, skipped = collect(paths)
    if not files:
        raise IngestError(f"nothing to ingest: no .csv, .zip or .dly files under {[str(p) for p in paths]}")
    detected = [detect(path) for path in files]  # refuse before landing anything

    landed = {d: land(settings, d) for d in detected}
    results: list[IngestResult] = []
    flight_files = [landed[d] for d in detected if d.format in ("bts_csv", "bts_zip")]
    if flight_files:
        from flightdelay.load import load_flights

        loads = load_flights(settings.warehouse_path, flight_files, airport_id_map=settings.airport_id_map)
        by_name = {load.source_file: load for load in loads}
        for d in detected:
            if d.format in ("bts_csv", "bts_zip"):
                load = by_name[landed[d].name]
                results.append(IngestResult(str(d.path), d.format, load.rows_read, load.rows_loaded,
                                            load.rows_rejected, "" if load.status == "loaded" else load.status))
    weather = [d for d in detected if d.format in ("lcd_hourly", "cdo_daily", "ghcn_dly")]
    if weather:
        # the lake is rebuilt from the whole raw weather zone, the files just landed included
        result = pipeline.run_weather_job(settings, allow_daily_only=True)
        per_file = {row["source_file"]: row for row in [*result["files"], *(result.get("cdo_files") or [])]}
        for d in weather:
            row = per_file.get(landed[d].name)
            if row is None:
                raise IngestError(f"{d.path}: landed as {landed[d]} but the weather job did not report it")
            results.append(IngestResult(str(d.path), d.format, row["rows_read"], row["rows_loaded"],
                                        row["rows_quarantined"]))
    broken = [r for r in results if not r.reconciles]
    if broken:
        raise IngestError(f"rows read != loaded + quarantined: {broken}")
    results += [IngestResult(str(path), "skipped", 0, 0, 0, "not a data file suffix") for path in skipped]
    return results


def render(results: list[IngestResult]) -> str:
    width = max([len(Path(r.source).name) for r in results] + [4])
    lines = [f"{'file':<{width}}  {'format':<10}  {'read':>9}  {'loaded':>9}  {'quarantined':>11}"]
    for r in results:
        note = f"  ({r.note})" if r.note else ""
        lines.append(f"{Path(r.source).name:<{width}}  {r.format:<10}  {r.rows_read:>9,}  {r.rows_loaded:>9,}  "
                     f"{r.rows_quarantined:>11,}{note}")
    return "\n".join(lines)
