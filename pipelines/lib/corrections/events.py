"""The events source: JSON Lines files in ``<home>/events/``, read from a byte-offset cursor per file.

Only complete lines are read (a line ends with a newline), so a file a system is still appending to is
read up to its last whole line and the rest waits for the next read; the cursor is plain JSON the caller
stores only after the lines it covers are applied, so a restart reads them again (applying is idempotent by
event id). Each line is parsed and checked against ``pipelines/config/event.schema.json`` and the
correction rules; a line that fails is a dead letter with its reason, never dropped. Whether the lead it
names exists is decided where it is applied. The source is this interface (``read_new_events``): a broker
can replace the files later.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from ..paths import CONFIG_DIR
from ..quality.masking import mask_email, mask_phone
from ..standardise.emails import canonical_email
from ..standardise.phones import standardise_mobile
from .rules import CONTACT_FIELDS, MANUAL_EDIT, CorrectionRules

EVENTS_DIR = "events"
DEAD_LETTER_DIR = "dead_letter"
EVENT_SCHEMA = CONFIG_DIR / "event.schema.json"
# A line longer than this is not an event (a file of something else, a runaway writer): dead-lettered.
MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Event:
    event_id: str
    type: str
    occurred_at: datetime        # in UTC
    source: str
    lead_key: str                # lead_id | mobile | email | wechat
    lead_value: str
    payload: dict[str, Any]
    actor: str | None
    file: str                    # the events file, relative to the events folder
    line: int                    # 1-based line number in that file
    offset: int = 0              # the byte offset just past this line: where the next read starts
    reason: str | None = None    # why (a manual edit's --reason), kept with the correction and in history


@dataclass(frozen=True)
class DeadLetter:
    file: str
    line: int
    reason: str                  # in the specialist's words, Chinese and English
    raw: str
    offset: int = 0              # the byte offset just past this line


@dataclass(frozen=True)
class EventBatch:
    events: list[Event]
    dead_letters: list[DeadLetter]
    cursor: dict[str, dict[str, int]]  # file -> {"offset": bytes read, "line": lines read}

    @property
    def lines(self) -> int:
        return len(self.events) + len(self.dead_letters)


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(EVENT_SCHEMA.read_text(encoding="utf-8")))


def event_files(events_dir: Path) -> list[Path]:
    """The events files, oldest name first; the dead-letter folder is not a source."""
    return sorted(p for p in events_dir.glob("*.jsonl") if p.is_file())


def read_new_events(events_dir: Path, cursor: dict[str, dict[str, int]], rules: CorrectionRules,
                    max_lines: int | None = None) -> EventBatch:
    """The complete lines of every events file past ``cursor``, judged; and the cursor after them."""
    events: list[Event] = []
    dead: list[DeadLetter] = []
    new_cursor = {name: dict(position) for name, position in cursor.items()}
    budget = max_lines
    for path in event_files(events_dir):
        name = path.name
        position = new_cursor.get(name, {"offset": 0, "line": 0})
        if path.stat().st_size < position["offset"]:
            # the file was replaced by a shorter one: read it from the start (event ids keep it idempotent)
            position = {"offset": 0, "line": 0}
        with path.open("rb") as handle:
            handle.seek(position["offset"])
            data = handle.read()
        end = data.rfind(b"\n")
        if end < 0:
            new_cursor[name] = position
            continue  # no complete line yet
        offset, line = position["offset"], position["line"]
        for raw in data[: end + 1].split(b"\n")[:-1]:
            if budget is not None and budget <= 0:
                break
            offset += len(raw) + 1
            line += 1
            if not raw.strip():
                continue  # a blank line is no event
            if budget is not None:
                budget -= 1
            judged = replace(judge_line(raw, name, line, rules), offset=offset)
            (events if isinstance(judged, Event) else dead).append(judged)
        new_cursor[name] = {"offset": offset, "line": line}
    return EventBatch(events, dead, new_cursor)


def judge_line(raw: bytes, file: str, line: int, rules: CorrectionRules) -> Event | DeadLetter:
    """One line as an event, or a dead letter saying what is wrong with it."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r")

    def dead(reason: str) -> DeadLetter:
        return DeadLetter(file, line, reason, text)

    if len(raw) > MAX_LINE_BYTES:
        return dead(f"行过长 (line too long): {len(raw):,} bytes, at most {MAX_LINE_BYTES:,}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return dead(f"不是有效的 JSON (malformed JSON): {exc.msg} at column {exc.colno}")
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        where = ".".join(str(p) for p in error.absolute_path) or "the event"
        return dead(f"事件格式不符 (failed validation): {where}: {error.message}")
    rule = rules.event_types.get(doc["type"])
    if rule is None:
        return dead(f"未知的事件类型 (unknown type): {doc['type']!r}; known: {', '.join(sorted(rules.event_types))}")
    occurred_at = _parse_time(doc["occurred_at"])
    if occurred_at is None:
        return dead(f"时间无效 (failed validation): occurred_at {doc['occurred_at']!r} is not a real date and time")
    if rule.sources is not None and doc["source"] not in rule.sources:
        return dead(f"来源不允许 (failed validation): source {doc['source']!r} may not send {rule.type}; "
                    f"allowed: {', '.join(rule.sources)}")
    if rule.type == MANUAL_EDIT and not (doc.get("actor") or "").strip():
        return dead("缺少修改人 (failed validation): a manual edit names who made it (actor)")
    payload, problem = standardised_payload(doc["payload"], rule)
    if problem:
        return dead(f"内容不完整或无效 (failed validation): payload.{problem}")
    (lead_key, lead_value), = doc["lead"].items()
    return Event(doc["event_id"], doc["type"], occurred_at, doc["source"], lead_key, lead_value.strip(),
                 payload, doc.get("actor"), file, line, reason=(doc.get("reason") or None) if isinstance(doc.get("reason"), str) else None)


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else None


def standardised_payload(payload: dict[str, Any], rule) -> tuple[dict[str, Any], str | None]:
    """The payload with its mobiles and e-mails standardised as any input is, or the first problem (a
    missing field, a value of the wrong kind, a mobile the numbering plan does not have, a bad e-mail)."""
    for key in rule.required:
        if payload.get(key) in (None, ""):
            return payload, f"{key}: missing"
    unknown = sorted(set(payload) - set(rule.payload))
    if rule.type == MANUAL_EDIT and unknown:
        return payload, f"{unknown[0]}: not a field that can be edited; known: {', '.join(rule.payload)}"
    if rule.type == MANUAL_EDIT and not payload:
        return payload, "nothing to change"
    clean = dict(payload)
    for key, kind in rule.payload.items():
        value = payload.get(key)
        if value is None:
            continue
        if kind == "boolean":
            if not isinstance(value, bool):
                return payload, f"{key}: expected true or false, got {value!r}"
        elif not isinstance(value, str) or not value.strip():
            return payload, f"{key}: expected text, got {value!r}"
        elif kind == "contact_field" and value not in CONTACT_FIELDS:
            return payload, f"{key}: {value!r} is not one of {', '.join(CONTACT_FIELDS)}"
        elif kind == "mobile":
            clean[key] = standardise_mobile(value)
            if clean[key] is None:
                return payload, f"{key}: 手机号无效 (not a mobile in the numbering plan): {mask_phone(value)}"
        elif kind == "email":
            clean[key] = canonical_email(unicodedata.normalize("NFKC", value).strip())
            if clean[key] is None:
                return payload, f"{key}: 邮箱格式不正确 (not a valid e-mail address): {mask_email(value)}"
        else:
            clean[key] = value.strip()
    return clean, None


def standardise_contact(field: str, value: str) -> str:
    """A contact value as the library holds it (to find a lead by it, or to mark it invalid); a value the
    rules would refuse is kept trimmed, so a lookup by it simply finds nothing."""
    if field == "mobile":
        return standardise_mobile(value) or value.strip()
    if field == "email":
        return canonical_email(unicodedata.normalize("NFKC", value).strip()) or value.strip().lower()
    return unicodedata.normalize("NFKC", value).strip().lower() if field == "wechat" else value.strip()


def dead_letter_path(events_dir: Path, file: str) -> Path:
    return events_dir / DEAD_LETTER_DIR / f"{Path(file).stem}.dead.jsonl"


def write_dead_letters(events_dir: Path, dead: list[DeadLetter]) -> None:
    """Append each dead letter, with its file, line and reason, to ``events/dead_letter/<file>.dead.jsonl``;
    a line already there (a batch read again after a crash) is not written twice."""
    by_file: dict[str, list[DeadLetter]] = {}
    for letter in dead:
        by_file.setdefault(letter.file, []).append(letter)
    for file, letters in by_file.items():
        target = dead_letter_path(events_dir, file)
        target.parent.mkdir(parents=True, exist_ok=True)
        seen = set()
        if target.exists():
            for existing in target.read_text(encoding="utf-8").splitlines():
                try:
                    seen.add(json.loads(existing)["line"])
                except (ValueError, KeyError):
                    continue
        with target.open("a", encoding="utf-8") as handle:
            for letter in letters:
                if letter.line not in seen:
                    handle.write(json.dumps({"file": letter.file, "line": letter.line, "reason": letter.reason,
                                             "raw": letter.raw}, ensure_ascii=False) + "\n")
