"""The data home: the one folder that holds everything the product reads and writes at run time."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

HOME_ENV = "LEADFACTORY_HOME"
# dbt runs in a subprocess and finds its DuckDB file through this variable (see dbt_project/profiles.yml).
DUCKDB_PATH_ENV = "LEADFACTORY_DUCKDB_PATH"
DEFAULT_HOME = "data"
WRITER_LOCK = ".writer.lock"


class WriterBusy(RuntimeError):
    """Another process holds the home's writer lock and did not let go in time."""


# Locks this process holds, by lock path: the same process may nest writers (a job's resource inside a
# CLI command), and a second flock on a new descriptor would wait on itself.
_held: dict[str, int] = {}
_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "config" / "dagster.yaml"
# Set: Dagster's runs, event logs and schedules go to this PostgreSQL database (production); unset: the
# embedded SQLite default. dagster.yaml only names the variable: the URL (and password) stays in the env.
DAGSTER_POSTGRES_URL_ENV = "LEADFACTORY_DAGSTER_POSTGRES_URL"
_DAGSTER_POSTGRES_YAML = _DAGSTER_YAML.with_name("dagster_postgres.yaml")


def dagster_instance_template() -> Path:
    """The instance config this environment selects: PostgreSQL when its URL is set, else embedded."""
    return _DAGSTER_POSTGRES_YAML if os.environ.get(DAGSTER_POSTGRES_URL_ENV) else _DAGSTER_YAML


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
    def outbox_dir(self) -> Path:
        """Receipts and review workbooks for specialists (personal data: kept under the home only)."""
        return self.root / "outbox"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def versions_dir(self) -> Path:
        """Every publication as a numbered version (Delta): what the CRM and read-only commands read."""
        return self.root / "versions"

    @property
    def dbt_runs_dir(self) -> Path:
        """dbt's per-run target folders (manifest, run results, compiled SQL), newest kept."""
        return self.root / "dbt_runs"

    def ensure(self) -> "LeadHome":
        """Create the folders and the Dagster instance config (one DuckDB writer at a time)."""
        for folder in (self.warehouse_dir, self.inbox_dir, self.outbox_dir, self.dagster_home):
            folder.mkdir(parents=True, exist_ok=True)
        # The product owns dagster.yaml: rewritten whenever it differs from the selected template, so
        # setting or unsetting the PostgreSQL URL takes effect and older homes get newer settings.
        instance_yaml = self.dagster_home / "dagster.yaml"
        wanted = dagster_instance_template().read_bytes()
        try:
            current = instance_yaml.read_bytes()
        except FileNotFoundError:
            current = None
        if current != wanted:
            postgres = bool(os.environ.get(DAGSTER_POSTGRES_URL_ENV))
            if current is not None and (b"\nstorage:" in current) != postgres:
                # Run history stays where it was written: a process started without (or with) the setting
                # by mistake should be noticed, not silently record its runs elsewhere.
                logging.getLogger(__name__).warning(
                    "%s: Dagster's storage switches to %s (%s is %s)", instance_yaml,
                    "PostgreSQL" if postgres else "the embedded SQLite files", DAGSTER_POSTGRES_URL_ENV,
                    "set" if postgres else "unset")
            # Written aside then renamed: a process loading the instance at that moment never reads half a file.
            partial = instance_yaml.with_name(f".dagster.yaml.{os.getpid()}.{threading.get_ident()}")
            partial.write_bytes(wanted)
            os.replace(partial, instance_yaml)
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

    @property
    def writer_lock_path(self) -> Path:
        return self.root / WRITER_LOCK

    def writer_lock_holder(self) -> dict | None:
        """Who holds (or last held) the writer lock, as written by its holder."""
        try:
            return json.loads(self.writer_lock_path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            return None

    @contextmanager
    def writer_lock(self, holder: str, wait_seconds: float | None = None,
                    on_wait: Callable[[dict | None], None] | None = None) -> Iterator[None]:
        """Hold the home's one-writer lock for a whole run or command.

        DuckDB allows one writing process per file, and one run must not interleave its steps with
        another's: every writer (a run of any job, a CLI command that writes) holds this lock from start
        to end. It is an OS file lock, so a process that dies (even by kill -9) releases it at once and
        the next run goes ahead. ``wait_seconds`` None waits as long as it takes; 0 fails at once.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        key = f"{self.writer_lock_path}|{threading.get_ident()}"  # nested only within one thread
        if key in _held:  # already ours: nested writer in the same process
            _held[key] += 1
            try:
                yield
            finally:
                _held[key] -= 1
            return
        fd = os.open(str(self.writer_lock_path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait:
                    on_wait(self.writer_lock_holder())
                deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if deadline is not None and time.monotonic() >= deadline:
                            raise WriterBusy(
                                f"{self.root}: another run or command is writing the lead library "
                                f"({self.writer_lock_holder() or 'unknown holder'}); try again when it ends"
                            ) from None
                        time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"holder": holder, "pid": os.getpid(), "host": socket.gethostname(),
                                     "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
            _held[key] = 1
            try:
                yield
            finally:
                del _held[key]
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextmanager
    def instance_lock(self) -> Iterator[None]:
        """Held while a command opens the home's Dagster instance: two commands started at once on a new
        home would otherwise both create its storage (and trip over each other's schema migration)."""
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        fd = os.open(str(self.dagster_home / ".instance.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        self.root.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(self.duckdb_path), read_only=read_only)
