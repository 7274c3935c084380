"""Shared fixtures: a temporary data home and real runs of the nightly job on it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.lib.dbt_project import parse_dbt_project
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
    from dagster import DagsterInstance

    from pipelines.definitions import defs

    job = defs().resolve_job_def("nightly_job")
    instance = instance or DagsterInstance.ephemeral()
    return job.execute_in_process(instance=instance, raise_on_error=raise_on_error)


def write_csv(path: Path, rows: list[dict], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = pl.DataFrame(rows, infer_schema_length=None).write_csv()
    path.write_bytes(text.encode(encoding))
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


def run_library(home: LeadHome):
    """The nightly job's steps called as plain library code (faster than Dagster for multi-run tests)."""
    from pipelines.lib.dedupe import match_records, standardise_home
    from pipelines.lib.publish import publish_leads

    home.export_env()
    standardise_home(home)
    with home.connect() as conn:
        stats = match_records(conn)
        publish_leads(conn)
    return stats


def leads_of(home: LeadHome) -> dict[str, str]:
    """{source_file#source_row: lead_id} of the current publication."""
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        return dict(conn.execute(
            "select source_file || '#' || source_row, lead_id from published.lead_members").fetchall())
