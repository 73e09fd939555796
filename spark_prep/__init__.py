"""PySpark jobs. `weather_job.py` is the entry point (spark-submit; an EMR step in production). It imports the
rest of this package as `spark_prep.<module>`, everywhere: under spark-submit the package (and the packages it
imports) come as zips with `--py-files`, which flightdelay/aws uploads and names from PY_PACKAGES."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

# Packages the job imports, shipped as `<name>.zip`: a zip on the path keeps `import spark_prep.lcd_records`
# working under spark-submit as it does in the checkout.
PY_PACKAGES = ("spark_prep", "raw_contracts")


def package_zip(project_root: Path, package: str) -> bytes:
    """The package's .py files, its subpackages' too, in a zip with fixed timestamps: the same bytes (and
    checksum) every deploy."""
    buffer = io.BytesIO()
    folder = project_root / package
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            info = zipfile.ZipInfo(f"{package}/{path.relative_to(folder).as_posix()}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
