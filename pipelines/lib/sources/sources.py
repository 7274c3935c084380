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
KINDS = ("folder",)
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
        unknown = set(entry) - {"name", "kind", "path", "mode", "priority", "key", "max_retire_share"}
        if unknown:
            raise ConfigError(f"{where}: unknown settings {sorted(unknown)}")
        kind = entry.get("kind", "folder")
        if kind not in KINDS:
            raise ConfigError(f"{where}: kind {kind!r} is not one of {KINDS}")
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
        sources.append(Source(name=name, kind=kind, path=folder, mode=mode, priority=priority,
                              key=key.strip() if key else None, max_retire_share=float(share)))
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


def source_named(name: str, sources: tuple[Source, ...] | None = None) -> Source:
    for source in sources or load_sources():
        if source.name == name:
            return source
    raise ConfigError(f"{sources_config_path()}: no source named {name!r}")
