"""PySpark jobs. `weather_job.py` is the entry point (spark-submit; an EMR step in production); what it
imports ships next to it with `--py-files`, and flightdelay/aws/deploy.py uploads and names it from here."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

PY_FILES = ("cdo_daily.py", "ghcn_daily.py", "lake_inputs.py", "lake_schema.py", "lake_snapshots.py", "lake_tables.py",
            "lcd_hourly.py", "lcd_quarantine.py", "lcd_records.py")
# Packages the job imports, shipped as `<name>.zip`: a zip on the path keeps `import raw_contracts.records` working.
PY_PACKAGES = ("raw_contracts",)


def package_zip(project_root: Path, package: str) -> bytes:
    """The package's .py files in a zip, with fixed timestamps: the same bytes (and checksum) every deploy."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((project_root / package).glob("*.py")):
            info = zipfile.ZipInfo(f"{package}/{path.name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
