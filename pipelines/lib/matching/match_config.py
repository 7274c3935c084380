"""Matching config (thresholds, chaining guard, survivorship), validated with errors that name the entry."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..sources.field_mapping import ConfigError, read_config_yaml
from ..paths import CONFIG_DIR

DEFAULT_MATCHING_CONFIG = CONFIG_DIR / "matching.yaml"
SURVIVORSHIP_RULES = ("most_recent", "source_priority", "most_complete")


@dataclass(frozen=True)
class MatchConfig:
    model_path: Path
    auto_merge: float
    review: float
    shared_value_min_people: int
    max_cluster_size: int
    survivorship_order: tuple[str, ...]


def _number(doc: dict, path: str, source: Path, kind: type, low: float, high: float):
    node = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"{source}: {path}: missing")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)) or (kind is int and not isinstance(node, int)):
        raise ConfigError(f"{source}: {path}: expected a {kind.__name__}, got {node!r}")
    if not low <= node <= high:
        raise ConfigError(f"{source}: {path}: {node} is outside {low}..{high}")
    return kind(node)


# Another matching config (a deployment's own, or a benchmark's variant); the committed one is the default.
MATCHING_CONFIG_ENV = "LEADFACTORY_MATCHING_CONFIG"


def load_match_config(path: Path | None = None) -> MatchConfig:
    return _load_match_config(Path(path or os.environ.get(MATCHING_CONFIG_ENV) or DEFAULT_MATCHING_CONFIG))


@lru_cache(maxsize=8)
def _load_match_config(path: Path) -> MatchConfig:
    doc = read_config_yaml(path, "matching config")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping")
    auto_merge = _number(doc, "thresholds.auto_merge", path, float, 0.5, 1.0)
    review = _number(doc, "thresholds.review", path, float, 0.0, 1.0)
    if review >= auto_merge:
        raise ConfigError(f"{path}: thresholds.review ({review}) must be below thresholds.auto_merge ({auto_merge})")
    survivorship = doc.get("survivorship") or {}
    if "source_priority" in survivorship:
        raise ConfigError(f"{path}: survivorship.source_priority: source priority is declared per source in "
                          "pipelines/config/sources.yaml (priority:), not here")
    order = tuple(survivorship.get("order") or SURVIVORSHIP_RULES)
    unknown = [r for r in order if r not in SURVIVORSHIP_RULES]
    if unknown:
        raise ConfigError(f"{path}: survivorship.order: unknown rules {unknown}; known: {SURVIVORSHIP_RULES}")
    # the model beside the config file, else the committed one (a variant config may reuse it)
    model_name = str(doc.get("model", "match_model.json"))
    model_path = path.parent / model_name if (path.parent / model_name).exists() else CONFIG_DIR / model_name
    return MatchConfig(
        model_path=model_path,
        auto_merge=auto_merge,
        review=review,
        shared_value_min_people=_number(doc, "chaining_guard.shared_value_min_people", path, int, 2, 1000),
        max_cluster_size=_number(doc, "chaining_guard.max_cluster_size", path, int, 2, 10_000),
        survivorship_order=order,
    )
