"""The declared lead sources (pipelines/config/sources.yaml), validated at load with errors naming the entry."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .field_mapping import ConfigError, read_config_yaml
from ..paths import CONFIG_DIR

DEFAULT_SOURCES_CONFIG = CONFIG_DIR / "sources.yaml"
# Another sources file (a deployment's own, or a test's); the committed one is the default.
SOURCES_ENV = "LEADFACTORY_SOURCES"
MODES = ("snapshot", "append")
KINDS = ("folder", "database")
# A database source's connection string is read from this environment variable at run time, never from config.
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
_COLUMN = re.compile(r"^[^\x00-\x1f\"`]{1,128}$")  # quoted as an identifier in the SQL the product adds
DEFAULT_BATCH_ROWS = 10_000
ARCHIVE_DIR = "archive"
FAILED_DIR = "failed"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Source:
    name: str
    kind: str
    path: str
    mode: str
    priority: int
    key: str | None = None
    max_retire_share: float = 0.5
    # kind: database only
    url_env: str | None = None      # the environment variable holding the connection string
    query: str | None = None        # a SELECT; its columns are the lead columns
    updated_at: str | None = None   # the column read incrementally by (rows changed since the last read)
    batch_rows: int = DEFAULT_BATCH_ROWS

    @property
    def is_database(self) -> bool:
        return self.kind == "database"

    def folder(self, home_root: Path) -> Path:
        return home_root / self.path

    @property
    def is_snapshot(self) -> bool:
        return self.mode == "snapshot"


def sources_config_path() -> Path:
    return Path(os.environ.get(SOURCES_ENV) or DEFAULT_SOURCES_CONFIG)


def load_sources(path: Path | None = None) -> tuple[Source, ...]:
    return _load_sources(Path(path or sources_config_path()).resolve())


@lru_cache(maxsize=8)
def _load_sources(path: Path) -> tuple[Source, ...]:
    doc = read_config_yaml(path, "the sources config")
    entries = doc.get("sources") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a 'sources' list with at least one source")
    sources: list[Source] = []
    for index, entry in enumerate(entries):
        where = f"{path}: sources[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping with name, kind, path, mode, priority")
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: name {name!r} must be lower-case letters, digits or '_' (e.g. crm_extract)")
        where = f"{path}: sources.{name}"
        kind = entry.get("kind", "folder")
        if kind not in KINDS:
            raise ConfigError(f"{where}: kind {kind!r} is not one of {KINDS}")
        allowed = {"name", "kind", "path", "mode", "priority", "key", "max_retire_share"}
        if kind == "database":
            allowed |= set(_DATABASE_SETTINGS)
        unknown = set(entry) - allowed
        if unknown:
            only_db = sorted(unknown & set(_DATABASE_SETTINGS))
            if only_db:
                raise ConfigError(f"{where}: {only_db} 只用于 kind: database 的数据源 "
                                  f"({only_db} only apply to a source of kind: database)")
            raise ConfigError(f"{where}: unknown settings {sorted(unknown)}")
        mode = entry.get("mode")
        if mode not in MODES:
            raise ConfigError(f"{where}: mode {mode!r} must be one of {MODES}")
        folder = entry.get("path", name)
        if not isinstance(folder, str) or not folder or Path(folder).is_absolute() or ".." in Path(folder).parts:
            raise ConfigError(f"{where}: path {folder!r} must be a folder inside the data home")
        priority = entry.get("priority")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ConfigError(f"{where}: priority must be a whole number (lower wins), got {priority!r}")
        key = entry.get("key")
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise ConfigError(f"{where}: key must be a column name, got {key!r}")
        share = entry.get("max_retire_share", 0.5)
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise ConfigError(f"{where}: max_retire_share must be a number in (0, 1], got {share!r}")
        database = _database_settings(entry, where, mode, key) if kind == "database" else {}
        sources.append(Source(name=name, kind=kind, path=folder, mode=mode, priority=priority,
                              key=key.strip() if key else None, max_retire_share=float(share), **database))
    names = [s.name for s in sources]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"{path}: source names must be unique; repeated: {duplicated}")
    folders = [Path(s.path) for s in sources]
    for a in folders:
        for b in folders:
            if a != b and (a in b.parents):
                raise ConfigError(f"{path}: source folders must not nest ({a} contains {b})")
    return tuple(sorted(sources, key=lambda s: (s.priority, s.name)))


_DATABASE_SETTINGS = ("url_env", "query", "updated_at", "batch_rows")


def _database_settings(entry: dict, where: str, mode: str, key: str | None) -> dict:
    """A database source's settings, each checked with an error naming the source and the field."""
    url_env = entry.get("url_env")
    if not isinstance(url_env, str) or not _ENV_NAME.match(url_env):
        looks_like_url = isinstance(url_env, str) and "://" in url_env
        raise ConfigError(
            f"{where}: url_env 须是环境变量名（如 CRM_DB_URL），连接串本身不得写进配置 "
            f"(url_env must name an environment variable such as CRM_DB_URL"
            f"{'; the connection string itself must never be committed' if looks_like_url else f', got {url_env!r}'})")
    query = entry.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ConfigError(f"{where}: query 须是一条 SELECT 查询 (query must be a SELECT statement, got {query!r})")
    # the product wraps the query as a subquery (for the updated_at filter and the key listing)
    query = query.strip().rstrip(";").strip()
    if ";" in query or not re.match(r"(?is)^\(*\s*(select|with)\b", query):
        raise ConfigError(f"{where}: query 须是一条 SELECT 查询，不能含多条语句 "
                          f"(query must be a single SELECT statement)")
    updated_at = entry.get("updated_at")
    if updated_at is not None and (not isinstance(updated_at, str) or not _COLUMN.match(updated_at.strip())):
        raise ConfigError(f"{where}: updated_at 须是查询结果中的列名 "
                          f"(updated_at must be a column name of the query's result, got {updated_at!r})")
    if key is not None and not _COLUMN.match(key.strip()):
        raise ConfigError(f"{where}: key 须是查询结果中的列名 (key must be a column name of the query's result, got {key!r})")
    if updated_at and mode == "snapshot" and not key:
        # an incremental read sees only changed rows; which rows disappeared is found from the keys
        raise ConfigError(f"{where}: 增量读取的 snapshot 数据源须声明 key 列 (an incremental snapshot source "
                          f"(updated_at) needs a key column to tell which rows disappeared)")
    batch_rows = entry.get("batch_rows", DEFAULT_BATCH_ROWS)
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or not 100 <= batch_rows <= 1_000_000:
        raise ConfigError(f"{where}: batch_rows 须是 100 到 1000000 之间的整数 "
                          f"(batch_rows must be a whole number from 100 to 1,000,000, got {batch_rows!r})")
    return {"url_env": url_env, "query": query, "updated_at": updated_at.strip() if updated_at else None,
            "batch_rows": batch_rows}


def source_named(name: str, sources: tuple[Source, ...] | None = None) -> Source:
    for source in sources or load_sources():
        if source.name == name:
            return source
    raise ConfigError(f"{sources_config_path()}: no source named {name!r}")
