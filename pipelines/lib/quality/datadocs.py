"""Great Expectations Data Docs that render with no network.

GX links its CSS and JavaScript from CDNs. The same packages come from the npm registry at install
time (pipelines/config/datadocs/package.json, `make venv`); after each build the files are copied
beside the pages and every CDN link is rewritten to a relative local path.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from ..paths import CONFIG_DIR

NODE_MODULES = CONFIG_DIR / "datadocs" / "node_modules"
VENDOR_DIR = "static/vendor"
_END = r"(?=[\"'])"
# CDN address (regex, up to the closing quote) -> file under node_modules
CDN_TO_PACKAGE: list[tuple[str, str]] = [
    (r"https://maxcdn\.bootstrapcdn\.com/bootstrap/4\.3\.1/css/bootstrap\.min\.css", "bootstrap/dist/css/bootstrap.min.css"),
    (r"https://stackpath\.bootstrapcdn\.com/bootstrap/4\.3\.1/js/bootstrap\.min\.js", "bootstrap/dist/js/bootstrap.min.js"),
    (r"https://code\.jquery\.com/jquery-3\.7\.1\.min\.js", "jquery/dist/jquery.min.js"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/popper\.js/[\d.]+/umd/popper\.min\.js", "popper.js/dist/umd/popper.min.js"),
    (r"https://unpkg\.com/bootstrap-table@1\.19\.\d/dist/bootstrap-table\.min\.css", "bootstrap-table/dist/bootstrap-table.min.css"),
    (r"https://unpkg\.com/bootstrap-table@1\.19\.\d/dist/bootstrap-table\.min\.js", "bootstrap-table/dist/bootstrap-table.min.js"),
    (r"https://unpkg\.com/bootstrap-table@1\.19\.\d/dist/extensions/filter-control/bootstrap-table-filter-control(?:\.min)?\.css",
     "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css"),
    (r"https://unpkg\.com/bootstrap-table@1\.19\.\d/dist/extensions/filter-control/bootstrap-table-filter-control\.min\.js",
     "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/bootstrap-datepicker/1\.9\.0/css/bootstrap-datepicker\.min\.css",
     "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/bootstrap-datepicker/1\.9\.0/js/bootstrap-datepicker\.min\.js",
     "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/font-awesome/6\.6\.0/css/all\.min\.css", "@fortawesome/fontawesome-free/css/all.min.css"),
    (r"https://cdn\.jsdelivr\.net/npm/@forevolve/bootstrap-dark@1\.1\.0/dist/css/bootstrap-prefers-dark\.css",
     "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css"),
    (r"https://cdn\.jsdelivr\.net/npm/vega@5", "vega/build/vega.min.js"),
    (r"https://cdn\.jsdelivr\.net/npm/vega-lite@5", "vega-lite/build/vega-lite.min.js"),
    (r"https://cdn\.jsdelivr\.net/npm/vega-embed@6", "vega-embed/build/vega-embed.min.js"),
]
# Directories a stylesheet refers to relatively (Font Awesome's ../webfonts).
EXTRA_DIRS = ["@fortawesome/fontawesome-free/webfonts"]
LOGO = r"https://great-expectations-web-assets\.s3[^\"']*?logo-long\.png[^\"']*"
_EXTERNAL_ASSET = re.compile(r"""(?:src|href)=["'](https?://[^"']+\.(?:css|js|png|svg|woff2?)(?:\?[^"']*)?|https?://cdn[^"']*)["']""")


class DataDocsError(RuntimeError):
    """The offline assets are missing (run `make venv`)."""


def vendorize(site_dir: Path) -> int:
    """Copy the assets into ``site_dir`` and point every page at them; return the pages rewritten."""
    if not NODE_MODULES.is_dir():
        raise DataDocsError(f"{NODE_MODULES} is missing: run `make venv` (npm ci) to install the Data Docs assets")
    vendor = site_dir / VENDOR_DIR
    for _, package_file in CDN_TO_PACKAGE:
        target = vendor / package_file
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(NODE_MODULES / package_file, target)
    for folder in EXTRA_DIRS:
        if not (vendor / folder).exists():
            shutil.copytree(NODE_MODULES / folder, vendor / folder)
    logo = vendor / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="180" height="30"><text x="0" y="22" '
                    'font-family="sans-serif" font-size="18">Lead Data Factory</text></svg>', encoding="utf-8")
    pages = 0
    for page in site_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        rewritten = text
        for pattern, package_file in CDN_TO_PACKAGE:
            local = os.path.relpath(vendor / package_file, page.parent)
            rewritten = re.sub(pattern + _END, local, rewritten)
        rewritten = re.sub(LOGO, os.path.relpath(logo, page.parent), rewritten)
        if rewritten != text:
            page.write_text(rewritten, encoding="utf-8")
            pages += 1
    return pages


def external_assets(site_dir: Path) -> set[str]:
    """Assets (CSS, JS, images, fonts) that a page would still fetch from the network."""
    found: set[str] = set()
    for page in site_dir.rglob("*.html"):
        found |= set(_EXTERNAL_ASSET.findall(page.read_text(encoding="utf-8")))
    return found
