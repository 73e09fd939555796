"""Make Great Expectations Data Docs render offline.

Data Docs pages load Bootstrap, jQuery, Vega and friends from public CDNs and the GX logo from S3;
on a machine without internet they render unstyled, without charts, and with console errors. This
rewrites those references to copies of the same library versions, installed from the npm registry
into docs_assets/node_modules (`make setup` runs `npm ci` there) and copied beside the docs.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

# CDN address -> file inside docs_assets/node_modules (same package and version as the CDN's).
VENDORED = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js/dist/umd/popper.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        "@fortawesome/fontawesome-free/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        "bootstrap-table/dist/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        "bootstrap-table/dist/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
}
# Folders a vendored stylesheet refers to relatively (icon fonts).
EXTRA_FOLDERS = ("@fortawesome/fontawesome-free/webfonts",)
GX_LOGO = re.compile(r"https://great-expectations-web-assets\.s3[^\"')]*")
# A text logo as a base64 data URI: no quotes, so it is safe inside both src="" and CSS url('').
LOGO_PLACEHOLDER = "data:image/svg+xml;base64," + base64.b64encode(
    b"<svg xmlns='http://www.w3.org/2000/svg' width='200' height='40'>"
    b"<text x='0' y='28' font-family='sans-serif' font-size='20'>Data Docs</text></svg>"
).decode()
VENDOR_DIR = "static/vendor"


def node_modules(project_root: Path) -> Path:
    return project_root / "docs_assets" / "node_modules"


def localize(docs_dir: Path, modules: Path) -> int:
    """Rewrite every page under docs_dir to the vendored copies; returns the pages rewritten.

    Raises FileNotFoundError naming the missing file when the npm packages are not installed."""
    missing = [path for path in VENDORED.values() if not (modules / path).exists()]
    if missing:
        raise FileNotFoundError(
            f"Data Docs assets not installed: {modules / missing[0]} missing; run `npm ci --prefix docs_assets`"
        )
    vendor = docs_dir / VENDOR_DIR
    for path in [*VENDORED.values()]:
        target = vendor / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(modules / path, target)
    for folder in EXTRA_FOLDERS:
        shutil.copytree(modules / folder, vendor / folder, dirs_exist_ok=True)

    rewritten = 0
    for page in docs_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        original = text
        for url, path in VENDORED.items():
            if url in text:
                relative = os.path.relpath(vendor / path, page.parent)
                text = text.replace(f'"{url}"', f'"{relative}"')
        text = GX_LOGO.sub(LOGO_PLACEHOLDER, text)
        if text != original:
            page.write_text(text, encoding="utf-8")
            rewritten += 1
    return rewritten
