"""Where the dbt project lives, and making sure its manifest exists before Dagster reads it."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from ..paths import PROJECT_DIR

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class ModelRun:
    unique_id: str
    status: str
    seconds: float
    message: str | None


def run_dbt_in_process(args: list[str], target_path: Path) -> list[ModelRun]:
    """Run a dbt command inside this process (dbt's programmatic API) and return each node's result.

    An incremental run standardises a few thousand records; dbt as a subprocess spends most of its time
    starting (importing dbt, loading the project, checking the parse) before any SQL runs, so the import
    path runs it here, where dbt is already imported. Raises with dbt's own message when a node fails."""
    from dbt.cli.main import dbtRunner

    target_path.mkdir(parents=True, exist_ok=True)
    try:
        result = dbtRunner(manifest=_parsed_manifest()).invoke([
            *args, "--quiet", "--no-send-anonymous-usage-stats", "--project-dir", str(DBT_PROJECT_DIR),
            "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(target_path),
        ])
    finally:
        try:
            _close_dbt_duckdb()
        except Exception:  # dbt's own error, if any, is the one to report
            log.warning("could not close dbt's DuckDB connection", exc_info=True)
    if result.exception is not None:
        raise RuntimeError(f"dbt {' '.join(args)} failed: {result.exception}") from result.exception
    runs = [ModelRun(r.node.unique_id, str(r.status), float(r.execution_time or 0.0), r.message)
            for r in (result.result or [])]
    failed = [r for r in runs if r.status not in ("success", "pass")]
    if not result.success or failed:
        raise RuntimeError("dbt " + " ".join(args) + " failed: "
                           + "; ".join(f"{r.unique_id}: {r.message}" for r in failed))
    return runs


PARTIAL_PARSE_PATH = DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
_manifests: dict[float, object] = {}


def _parsed_manifest():
    """The project as ``parse_dbt_project`` parsed it (the parse Dagster's dbt assets are built from).
    dbt would otherwise parse the whole project again on every invocation: the data home's DuckDB path
    is part of the profile, and a changed profile defeats dbt's own partial parsing."""
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumuro_decoder

    parse_dbt_project()
    stamp = PARTIAL_PARSE_PATH.stat().st_mtime
    if stamp not in _manifests:
        manifest = Manifest.from_msgpack(PARTIAL_PARSE_PATH.read_bytes(), decoder=extended_mashumuro_decoder)
        manifest.build_flat_graph()
        _manifests.clear()
        _manifests[stamp] = manifest
    return _manifests[stamp]


def _close_dbt_duckdb() -> None:
    """dbt-duckdb keeps its database open for the life of the process; the pipeline's own connections
    (another configuration) could not open the file beside it, so it is closed after each invocation."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    from dbt.adapters.factory import reset_adapters

    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()
    # the adapter holds multiprocessing locks; dropped now, they are released before the command leaves
    reset_adapters()


def files_fingerprint(paths) -> str:
    """sha256 over the files under ``paths`` (folders or files), their names included."""
    digest = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root] if root.exists() else []
        for path in files:
            digest.update(str(path.relative_to(PROJECT_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


DBT_SOURCES = tuple(DBT_PROJECT_DIR / name for name in ("models", "macros", "seeds", "dbt_project.yml"))
PARSED_FROM_PATH = DBT_PROJECT_DIR / "target" / "leadfactory_parsed_from"  # the fingerprint of the last parse


def parse_dbt_project(force: bool = False) -> Path:
    """Run ``dbt parse`` (no database needed) unless the manifest there was parsed from the project as it
    is now; return its path."""
    fingerprint = files_fingerprint(DBT_SOURCES)
    parsed_from = PARSED_FROM_PATH.read_text() if PARSED_FROM_PATH.exists() else None
    if force or parsed_from != fingerprint or not MANIFEST_PATH.exists() or not PARTIAL_PARSE_PATH.exists():
        run_dbt(["parse"])
        PARSED_FROM_PATH.write_text(fingerprint)
    return MANIFEST_PATH


def prune_dbt_runs(runs_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest per-run dbt target folders."""
    if not runs_dir.is_dir():
        return
    runs = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in runs[keep:]:
        shutil.rmtree(old, ignore_errors=True)
