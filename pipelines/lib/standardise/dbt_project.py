"""Where the dbt project lives, and making sure its manifest exists before Dagster reads it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from ..paths import PROJECT_DIR

DBT_PROJECT_DIR = PROJECT_DIR / "dbt_project"
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
# The dbt installed beside this Python, so nothing depends on the virtual environment being on PATH,
# started through leadfactory-dbt so that it dies with the run that started it (a killed run must not
# leave dbt holding the DuckDB file).
_DBT_CHILD = Path(sys.executable).with_name("leadfactory-dbt")
DBT_EXECUTABLE = str(_DBT_CHILD if _DBT_CHILD.exists() else Path(sys.executable).with_name("dbt"))


def run_dbt(args: list[str]) -> None:
    """Run a dbt command on the project (against the DuckDB file the environment names)."""
    subprocess.run(
        [DBT_EXECUTABLE, *args, "--quiet", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        check=True, cwd=DBT_PROJECT_DIR, env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )


def parse_dbt_project(force: bool = False) -> Path:
    """Run ``dbt parse`` (no database needed) unless a manifest is there already; return its path."""
    if force or not MANIFEST_PATH.exists():
        run_dbt(["parse"])
    return MANIFEST_PATH


def prune_dbt_runs(runs_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest per-run dbt target folders."""
    if not runs_dir.is_dir():
        return
    runs = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in runs[keep:]:
        shutil.rmtree(old, ignore_errors=True)
