"""Shared fixtures: a temporary data home and real runs of the nightly job on it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.lib.standardise.dbt_project import parse_dbt_project
from pipelines.lib.home import DUCKDB_PATH_ENV, HOME_ENV, LeadHome


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> Path:
    return parse_dbt_project()


def use_home(root: Path, monkeypatch: pytest.MonkeyPatch) -> LeadHome:
    """Point the product at ``root``; monkeypatch restores the environment afterwards."""
    monkeypatch.setenv(HOME_ENV, str(root))
    monkeypatch.setenv(DUCKDB_PATH_ENV, str(root / "leadfactory.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    return LeadHome.from_env().ensure()


def run_nightly_job(instance=None, raise_on_error: bool = True):
    """Run the real nightly job in-process on the current home (ephemeral Dagster instance unless given)."""
    from pipelines.runs import run_job

    return run_job("nightly_job", instance=instance, raise_on_error=raise_on_error)


def write_csv(path: Path, rows: list[dict], encoding: str = "utf-8") -> Path:
    """Write rows as a CSV file that has finished arriving (dated a minute ago: a file written in the last
    seconds is taken as still being copied and left for the next run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = pl.DataFrame(rows, infer_schema_length=None).write_csv()
    path.write_bytes(text.encode(encoding))
    return settled(path)


def settled(path: Path, seconds: float = 60, write: bytes | None = None) -> Path:
    """Date a file ``seconds`` back (writing ``write`` first, if given), as a file dropped a while ago."""
    import time

    if write is not None:
        path.write_bytes(write)
    when = time.time() - seconds
    os.utime(path, (when, when))
    return path


@pytest.fixture
def query(tmp_path: Path) -> Callable[[LeadHome, str], list[tuple]]:
    def run(home: LeadHome, sql: str) -> list[tuple]:
        with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
            return conn.execute(sql).fetchall()

    return run


@pytest.fixture(scope="module")
def module_monkeypatch():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def pytest_configure(config):
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


def run_library(home: LeadHome, files: list[Path] | None = None):
    """The real nightly job on ``home`` (or the inbox import job on ``files``); fails the test if the run fails."""
    from pipelines.runs import import_run_config, run_job

    home.export_env()
    if files:
        return run_job("inbox_import_job", run_config=import_run_config(files))
    return run_job("nightly_job")


def leads_of(home: LeadHome) -> dict[str, str]:
    """{source_file#source_row: lead_id} of the current publication."""
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        return dict(conn.execute(
            "select source_file || '#' || source_row, lead_id from published.lead_members").fetchall())
