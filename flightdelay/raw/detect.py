"""What a downloaded file is and under which name it lands: format detection from the first line (or the CSV
inside a BTS `.zip`), the folders it is collected from, and the checks on landing names (plain names only, no
two files under one name, nor under names that differ only in Unicode normalisation or letter case).

Formats: BTS On-Time Reporting CSV (modern or legacy names, any column selection) and its monthly
`.zip` download; NOAA LCD hourly CSV; NOAA CDO daily CSV export; GHCN-Daily `.dly`.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, BinaryIO

from flightdelay.raw.bts_fields import canonical_header, missing_required
from flightdelay.raw.bts_reader import sha256_of
from flightdelay.settings import Settings

if TYPE_CHECKING:
    from flightdelay.raw.ingest import IngestResult


class IngestError(ValueError):
    """A file that cannot be ingested; the message names it and says why. `results` holds what the same
    call did ingest."""

    def __init__(self, message: str, results: list[IngestResult] | None = None):
        super().__init__(message)
        self.results = results or []


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


def _csv_header(text: str) -> list[str]:
    header = next(csv.reader(io.StringIO(text)), None) or []
    return [h.strip() for h in header]


def classify_header(path: Path, header: list[str]) -> str:
    """bts_csv | lcd_hourly | cdo_daily, or IngestError saying what each layout misses."""
    canonical = [canonical_header(h) for h in header]
    upper = [h.upper() for h in header]
    # a BTS file with numeric airport ids still is a BTS file: the loader explains what to do
    bts_missing = missing_required(canonical, airport_ids_stand_in=True)
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
def _first_line(handle: BinaryIO) -> str:
    return handle.readline(HEADER_PROBE_BYTES).decode("utf-8-sig", errors="replace").rstrip("\r\n")


def _check_name(path: Path, name: str) -> str:
    """A landing name is the file's own name: it must be a plain name a shell, Spark and S3 keep as is."""
    # Hadoop (the Spark job's file listing) skips names starting with "." or "_" as hidden.
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise IngestError(f"{path}: the name is longer than {MAX_NAME_BYTES} bytes (file systems stop at 255 and "
                          "landing adds to it); rename the file shorter and ingest it again")
    if not name or name[0] in "._" or name[-1] in ". " or any(_unshowable(c) for c in name):
        raise IngestError(f"{path}: the name {name!r} cannot be landed (empty, starting with '.' or '_', which "
                          "Spark skips as hidden, ending in '.' or ' ', which Windows drops, or with control, "
                          "invisible or direction-changing characters, which make two names look alike); rename the "
                          "file and ingest it again")
    return name


def zip_member(path: Path) -> zipfile.ZipInfo:
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
        member = zip_member(path)
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

def landing_target(settings: Settings, detected: Detected) -> Path:
    return settings.raw_dir / LANDING_DIRS[detected.format] / detected.landing_name



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


def _unshowable(character: str) -> bool:
    """Control characters (C0, C1), format characters (zero-width joiners, the BOM, bidirectional overrides)
    and line/paragraph separators: a name holding one prints like another name, or not at all."""
    return unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp")


def name_key(name: str) -> str:
    """A name as a person or a file system may confuse it: macOS ignores Unicode normalisation and, by default,
    letter case; Windows ignores case; compatibility forms (fullwidth letters, ligatures) read the same. Unicode's
    compatibility caseless match, NFKD(casefold(NFKD(name)))."""
    return unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", name).casefold())


def _twin_names(first: str, second: str) -> str:
    """Why two names that differ are still one: ascii() escapes them, since printed they look the same."""
    if unicodedata.normalize("NFC", first) == unicodedata.normalize("NFC", second):
        how, where = "Unicode normalisation (the same characters, composed or decomposed)", "macOS"
    elif first.casefold() == second.casefold():
        how, where = "letter case", "macOS and Windows"
    else:
        how, where = "Unicode normalisation, compatibility forms (fullwidth letters, ligatures) or letter case", \
            "macOS (and to anyone reading them)"
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
