"""Correction rules (pipelines/config/corrections.yaml): which event types change which lead fields, and
when; validated at load with errors that name the file and the entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..paths import CONFIG_DIR
from ..sources.field_mapping import ConfigError, read_config_yaml

DEFAULT_CORRECTIONS_CONFIG = CONFIG_DIR / "corrections.yaml"

# What a payload value is, and so how it is checked before anything is applied.
PAYLOAD_KINDS = ("mobile", "email", "text", "boolean", "contact_field")
CONTACT_FIELDS = ("mobile", "email", "wechat", "qq")
# Lead fields a correction may set: the contacts, the job, the owner, and the CRM's do-not-contact flag.
CORRECTABLE_FIELDS = ("mobile", "email", "wechat", "qq", "landline", "name", "company", "job_title",
                      "province", "city", "district", "address", "owner", "do_not_contact")


@dataclass(frozen=True)
class EventRule:
    type: str
    payload: dict[str, str]                  # payload field -> kind
    required: tuple[str, ...]
    verified_only: bool = False              # applied only when payload.verified is true
    sources: tuple[str, ...] | None = None   # None: any source
    sets: dict[str, Any] = field(default_factory=dict)  # lead field -> payload field name, or ("value", literal)
    invalidates: dict[str, str] | None = None            # {"field": payload field, "value": payload field}


@dataclass(frozen=True)
class CorrectionRules:
    path: Path
    event_types: dict[str, EventRule]


# A specialist's one-to-one edit (`leadfactory edit`) travels as an event of this type, so it takes the same
# path as the business systems' events (validated, recorded, applied, in history), at the higher level.
MANUAL_EDIT = "manual_edit"
FIELD_KINDS = {"mobile": "mobile", "email": "email", "do_not_contact": "boolean"}  # the rest: text
MANUAL_EDIT_RULE = EventRule(
    MANUAL_EDIT, payload={f: FIELD_KINDS.get(f, "text") for f in CORRECTABLE_FIELDS}, required=(),
    sources=("leadfactory",), sets={f: f for f in CORRECTABLE_FIELDS})


def correction_level(event_type: str) -> str:
    """The precedence level of a correction (precedence.LEVELS)."""
    return "manual_edit" if event_type == MANUAL_EDIT else "event"


def load_correction_rules(path: Path | None = None) -> CorrectionRules:
    return _load(Path(path or DEFAULT_CORRECTIONS_CONFIG))


def _names(value: Any, where: str, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{path}: {where}: expected a list of names, got {value!r}")
    return tuple(value)


def _rule(name: str, doc: Any, path: Path) -> EventRule:
    where = f"event_types.{name}"
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: {where}: expected a mapping")
    unknown = set(doc) - {"payload", "required", "verified_only", "sources", "sets", "invalidates"}
    if unknown:
        raise ConfigError(f"{path}: {where}: unknown keys {sorted(unknown)}")
    payload = doc.get("payload") or {}
    if not isinstance(payload, dict):
        raise ConfigError(f"{path}: {where}.payload: expected a mapping of field: kind")
    for key, kind in payload.items():
        if kind not in PAYLOAD_KINDS:
            raise ConfigError(f"{path}: {where}.payload.{key}: unknown kind {kind!r}; known: {', '.join(PAYLOAD_KINDS)}")
    required = _names(doc.get("required"), f"{where}.required", path)
    missing = [r for r in required if r not in payload]
    if missing:
        raise ConfigError(f"{path}: {where}.required: {missing} not declared in payload")
    verified_only = doc.get("verified_only", False)
    if not isinstance(verified_only, bool):
        raise ConfigError(f"{path}: {where}.verified_only: expected true or false, got {verified_only!r}")
    if verified_only and payload.get("verified") != "boolean":
        raise ConfigError(f"{path}: {where}.verified_only: the payload must declare `verified: boolean`")
    sources = doc.get("sources")
    sources = None if sources is None else _names(sources, f"{where}.sources", path)
    sets_doc = doc.get("sets") or {}
    if not isinstance(sets_doc, dict):
        raise ConfigError(f"{path}: {where}.sets: expected a mapping of lead field: payload field")
    sets: dict[str, Any] = {}
    for target, source in sets_doc.items():
        if target not in CORRECTABLE_FIELDS:
            raise ConfigError(f"{path}: {where}.sets.{target}: not a field a correction may set; "
                              f"known: {', '.join(CORRECTABLE_FIELDS)}")
        if isinstance(source, dict) and set(source) == {"value"}:
            sets[target] = ("value", source["value"])
        elif isinstance(source, str) and source in payload:
            sets[target] = source
        else:
            raise ConfigError(f"{path}: {where}.sets.{target}: expected a payload field of this type "
                              f"({', '.join(payload) or 'none declared'}) or {{value: ...}}, got {source!r}")
    invalidates = doc.get("invalidates")
    if invalidates is not None:
        if (not isinstance(invalidates, dict) or set(invalidates) != {"field", "value"}
                or payload.get(invalidates["field"]) != "contact_field" or invalidates["value"] not in payload):
            raise ConfigError(f"{path}: {where}.invalidates: expected {{field: <a contact_field payload field>, "
                              f"value: <a payload field>}}, got {invalidates!r}")
    if not sets and invalidates is None:
        raise ConfigError(f"{path}: {where}: changes nothing (give `sets` or `invalidates`)")
    return EventRule(name, dict(payload), required, verified_only, sources, sets, invalidates)


@lru_cache(maxsize=8)
def _load(path: Path) -> CorrectionRules:
    doc = read_config_yaml(path, "correction rules")
    if not isinstance(doc, dict) or not isinstance(doc.get("event_types"), dict) or not doc["event_types"]:
        raise ConfigError(f"{path}: expected a mapping with event_types")
    if doc.get("version") != 1:
        raise ConfigError(f"{path}: version: expected 1, got {doc.get('version')!r}")
    if MANUAL_EDIT in doc["event_types"]:
        raise ConfigError(f"{path}: event_types.{MANUAL_EDIT}: reserved for `leadfactory edit`")
    types = {name: _rule(name, rule, path) for name, rule in doc["event_types"].items()}
    return CorrectionRules(path, {**types, MANUAL_EDIT: MANUAL_EDIT_RULE})
