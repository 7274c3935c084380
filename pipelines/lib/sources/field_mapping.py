"""Map incoming headers (Chinese or English) to the canonical lead fields, from a versioned config file."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from ..paths import CONFIG_DIR

CANONICAL_FIELDS: tuple[str, ...] = (
    "name", "mobile", "landline", "email", "wechat", "qq", "douyin", "kuaishou",
    "company", "job_title", "province", "city", "district", "address", "source", "owner",
    "updated_at", "created_at",
)
LINEAGE_FIELDS: tuple[str, ...] = ("source_system", "source_file", "source_row", "ingested_at")
EXTRA_FIELD = "extra_attributes"
DEFAULT_CONFIG = CONFIG_DIR / "field_synonyms.yaml"


class ConfigError(ValueError):
    """A config file is malformed; the message names the file and the entry."""


def read_config_yaml(path: Path, what: str):
    """A config file's YAML document, or a ConfigError naming the file and what it is."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from exc


_NOTE = re.compile(r"[(\[（【].*?[)\]）】]\s*$")
_SEPARATORS = re.compile(r"[\s_\-:：*]+")


def normalise_header(header: str) -> str:
    """Fold a header for matching: NFKC (full-width -> half-width), lower case, no notes or separators."""
    text = unicodedata.normalize("NFKC", str(header)).strip().lower()
    text = _NOTE.sub("", text)  # "手机(必填)" -> "手机"
    return _SEPARATORS.sub("", text)


@dataclass(frozen=True)
class FieldMapping:
    synonyms: dict[str, str]  # normalised header -> canonical field
    multi_valued: frozenset[str]
    source: Path = field(default=DEFAULT_CONFIG)

    def canonical_for(self, header: str) -> str | None:
        return self.synonyms.get(normalise_header(header))

    def plan(self, headers: list[str]) -> tuple[dict[str, list[str]], list[str]]:
        """Split headers into {canonical field: [headers]} and the unmapped ones (kept as extras).

        A single-valued field takes its first matching column; further ones stay as extras, so no
        value is dropped.
        """
        mapped: dict[str, list[str]] = {}
        extras: list[str] = []
        for header in headers:
            target = self.canonical_for(header)
            if target is None:
                extras.append(header)
            elif target in mapped and target not in self.multi_valued:
                extras.append(header)
            else:
                mapped.setdefault(target, []).append(header)
        return mapped, extras


@lru_cache(maxsize=8)
def load_field_mapping(path: Path = DEFAULT_CONFIG) -> FieldMapping:
    """Load and validate the synonyms file; errors name the file and the offending entry."""
    doc = read_config_yaml(path, "field synonyms")
    if not isinstance(doc, dict) or not isinstance(doc.get("fields"), dict):
        raise ConfigError(f"{path}: expected a mapping with a 'fields' section")
    synonyms: dict[str, str] = {}
    for canonical, names in doc["fields"].items():
        if canonical not in CANONICAL_FIELDS:
            raise ConfigError(f"{path}: fields.{canonical}: not a canonical lead field {CANONICAL_FIELDS}")
        if not isinstance(names, list) or not names:
            raise ConfigError(f"{path}: fields.{canonical}: expected a non-empty list of header names")
        for name in [canonical, *names]:
            key = normalise_header(str(name))
            other = synonyms.get(key)
            if other is not None and other != canonical:
                raise ConfigError(f"{path}: fields.{canonical}: header {name!r} is already mapped to {other!r}")
            synonyms[key] = canonical
    multi = doc.get("multi_valued", [])
    unknown = [f for f in multi if f not in CANONICAL_FIELDS]
    if unknown:
        raise ConfigError(f"{path}: multi_valued: not canonical lead fields: {unknown}")
    return FieldMapping(synonyms=synonyms, multi_valued=frozenset(multi), source=Path(path))
