"""The data home: the one folder that holds everything the product reads and writes at run time."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

HOME_ENV = "LEADFACTORY_HOME"
# dbt runs in a subprocess and finds its DuckDB file through this variable (see dbt_project/profiles.yml).
DUCKDB_PATH_ENV = "LEADFACTORY_DUCKDB_PATH"
DEFAULT_HOME = "data"
_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "config" / "dagster.yaml"


@dataclass(frozen=True)
class LeadHome:
    root: Path

    @classmethod
    def from_env(cls, override: str | os.PathLike | None = None) -> "LeadHome":
        """The home named by ``override``, else ``$LEADFACTORY_HOME``, else ``./data``; always absolute."""
        raw = override or os.environ.get(HOME_ENV) or DEFAULT_HOME
        return cls(Path(raw).expanduser().resolve())

    @property
    def warehouse_dir(self) -> Path:
        return self.root / "warehouse"

    @property
    def inbox_dir(self) -> Path:
        return self.root / "inbox"

    @property
    def duckdb_path(self) -> Path:
        return self.root / "leadfactory.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def dbt_runs_dir(self) -> Path:
        """dbt's per-run target folders (manifest, run results, compiled SQL), newest kept."""
        return self.root / "dbt_runs"

    def ensure(self) -> "LeadHome":
        """Create the folders and the Dagster instance config (one DuckDB writer at a time)."""
        for folder in (self.warehouse_dir, self.inbox_dir, self.dagster_home):
            folder.mkdir(parents=True, exist_ok=True)
        instance_yaml = self.dagster_home / "dagster.yaml"
        if not instance_yaml.exists():
            shutil.copyfile(_DAGSTER_YAML, instance_yaml)
        return self

    def export_env(self) -> None:
        """Make this home the one that subprocesses (dbt, dagster) see."""
        os.environ[HOME_ENV] = str(self.root)
        os.environ[DUCKDB_PATH_ENV] = str(self.duckdb_path)
        if not os.environ.get("DAGSTER_HOME"):  # an explicit instance (e.g. PostgreSQL storage) wins
            os.environ["DAGSTER_HOME"] = str(self.dagster_home)

    @contextmanager
    def activated(self) -> Iterator["LeadHome"]:
        """Export this home for the duration (a temporary home for one file), then restore the environment."""
        saved = {key: os.environ.get(key) for key in (HOME_ENV, DUCKDB_PATH_ENV)}
        self.export_env()
        try:
            yield self
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        self.root.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(self.duckdb_path), read_only=read_only)
