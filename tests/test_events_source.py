"""The events source: complete lines only, a byte-offset cursor per file, and every bad line a dead letter
with its reason; the correction rules are validated at load."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipelines.lib.corrections.events import read_new_events, write_dead_letters, dead_letter_path
from pipelines.lib.corrections.rules import load_correction_rules
from pipelines.lib.sources.field_mapping import ConfigError

RULES = load_correction_rules()


def _event(event_id: str, **overrides) -> dict:
    event = {"event_id": event_id, "type": "mobile_changed", "occurred_at": "2026-11-23T10:15:00+08:00",
             "source": "app", "lead": {"mobile": "13812345678"},
             "payload": {"new_mobile": "13912345678", "verified": True}}
    event.update(overrides)
    return event


def _line(event: dict) -> bytes:
    return (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8")


def test_a_half_written_last_line_waits_and_the_cursor_survives_a_restart(tmp_path):
    events = tmp_path / "events"
    events.mkdir()
    first, second = _line(_event("e1")), _line(_event("e2", occurred_at="2026-11-23T03:00:00Z"))
    (events / "app.jsonl").write_bytes(first + second[:25])  # the writer is mid-way through e2
    batch = read_new_events(events, {}, RULES)
    assert [e.event_id for e in batch.events] == ["e1"] and not batch.dead_letters
    assert batch.cursor["app.jsonl"] == {"offset": len(first), "line": 1}
    # a restart with the stored cursor (plain JSON) reads nothing twice, and the rest once it is complete
    cursor = json.loads(json.dumps(batch.cursor))
    assert read_new_events(events, cursor, RULES).lines == 0
    with (events / "app.jsonl").open("ab") as handle:
        handle.write(second[25:])
    again = read_new_events(events, cursor, RULES)
    assert [(e.event_id, e.line) for e in again.events] == [("e2", 2)]
    assert again.events[0].occurred_at.isoformat() == "2026-11-23T03:00:00+00:00"
    assert again.events[0].lead_key == "mobile" and again.events[0].lead_value == "13812345678"
    assert again.cursor["app.jsonl"]["offset"] == len(first + second)


def test_every_bad_line_is_a_dead_letter_with_its_reason_and_the_counts_reconcile(tmp_path):
    events = tmp_path / "events"
    events.mkdir()
    lines = [
        _line(_event("ok-1")),
        b'{"event_id": "x", "type": \n',                                             # malformed JSON
        _line(_event("t-1", type="moved_house")),                                   # unknown type
        _line(_event("v-1", occurred_at="2026-11-23 10:15:00")),                    # no UTC offset
        _line(_event("v-2", lead={"mobile": "1", "email": "a@b.cn"})),              # two identifiers
        _line(_event("v-3", payload={"verified": True})),                           # new_mobile missing
        _line(_event("v-4", type="contact_invalid", payload={"field": "fax", "value": "x"})),
        b"\n",                                                                      # blank: no event
        _line(_event("ok-2", type="opted_out", payload={}, lead={"lead_id": "L123"})),
    ]
    (events / "crm.jsonl").write_bytes(b"".join(lines))
    batch = read_new_events(events, {}, RULES)
    assert [e.event_id for e in batch.events] == ["ok-1", "ok-2"]
    reasons = {letter.line: letter.reason for letter in batch.dead_letters}
    assert set(reasons) == {2, 3, 4, 5, 6, 7}
    assert "malformed JSON" in reasons[2]
    assert "unknown type" in reasons[3] and "moved_house" in reasons[3]
    assert "failed validation" in reasons[4] and "occurred_at" in reasons[4]
    assert "failed validation" in reasons[5] and "lead" in reasons[5]
    assert "payload.new_mobile: missing" in reasons[6]
    assert "fax" in reasons[7]
    assert batch.lines == 8  # nine lines, one blank: each of the others is an event or a dead letter
    # dead letters are kept with file, line and reason; writing the same batch again adds nothing
    write_dead_letters(events, batch.dead_letters)
    write_dead_letters(events, batch.dead_letters)
    written = [json.loads(x) for x in dead_letter_path(events, "crm.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(d["file"], d["line"]) for d in written] == [("crm.jsonl", n) for n in (2, 3, 4, 5, 6, 7)]
    assert written[0]["raw"].startswith('{"event_id": "x"')
    # the dead-letter folder is not read as a source
    assert read_new_events(events, batch.cursor, RULES).lines == 0


def test_a_file_replaced_by_a_shorter_one_is_read_from_its_start(tmp_path):
    events = tmp_path / "events"
    events.mkdir()
    (events / "app.jsonl").write_bytes(_line(_event("a")) + _line(_event("b")))
    cursor = read_new_events(events, {}, RULES).cursor
    (events / "app.jsonl").write_bytes(_line(_event("c")))
    assert [e.event_id for e in read_new_events(events, cursor, RULES).events] == ["c"]


def test_correction_rules_are_validated_with_errors_that_name_the_entry(tmp_path):
    assert {"mobile_changed", "email_changed", "contact_invalid", "job_changed", "opted_out",
            "owner_changed"} <= set(RULES.event_types)
    assert RULES.event_types["mobile_changed"].verified_only
    assert RULES.event_types["opted_out"].sets == {"do_not_contact": ("value", True)}
    cases = {
        "event_types: {x: {payload: {a: colour}, sets: {owner: a}}}": "event_types.x.payload.a: unknown kind 'colour'",
        "event_types: {x: {payload: {a: text}, sets: {salary: a}}}": "event_types.x.sets.salary: not a field",
        "event_types: {x: {payload: {a: text}, sets: {owner: b}}}": "event_types.x.sets.owner: expected a payload field",
        "event_types: {x: {payload: {a: text}, required: [b], sets: {owner: a}}}": "event_types.x.required",
        "event_types: {x: {payload: {a: text}, verified_only: true, sets: {owner: a}}}": "verified: boolean",
        "event_types: {x: {payload: {a: text}}}": "event_types.x: changes nothing",
    }
    for number, (body, message) in enumerate(cases.items()):
        bad = tmp_path / f"corrections_{number}.yaml"  # one file each: loaded rules are cached by path
        bad.write_text("version: 1\n" + body + "\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_correction_rules(bad)


def test_the_holding_correction_does_not_depend_on_arrival_order():
    """A manual edit beats an event whatever their times; within a level the later occurred_at wins."""
    import random

    import duckdb

    from pipelines.lib.corrections.precedence import check_levels, holding_corrections_sql, superseded_corrections_sql

    corrections = [
        ("c1", "L1", "mobile", "+8613900000001", "event", "2026-11-20 10:00:00"),
        ("c2", "L1", "mobile", "+8613900000002", "event", "2026-11-21 10:00:00"),        # later event
        ("c3", "L1", "company", "甲公司", "manual_edit", "2026-11-01 09:00:00"),          # an old edit ...
        ("c4", "L1", "company", "乙公司", "event", "2026-11-22 09:00:00"),                # ... beats a newer event
        ("c5", "L2", "owner", "王五", "event", "2026-11-22 09:00:00"),
        ("c6", "L2", "owner", "赵六", "event", "2026-11-22 09:00:00"),                    # same time: larger id
    ]
    expected = {("L1", "mobile"): ("+8613900000002", "c2"), ("L1", "company"): ("甲公司", "c3"),
                ("L2", "owner"): ("赵六", "c6")}
    for seed in range(5):
        arrived = corrections[:]
        random.Random(seed).shuffle(arrived)
        with duckdb.connect() as conn:
            conn.execute("create table c (correction_id varchar, lead_id varchar, field varchar, value varchar, "
                         "level varchar, occurred_at timestamp)")
            conn.executemany("insert into c values (?, ?, ?, ?, ?, ?)", arrived)
            check_levels(conn, "c")
            held = {(lead, field): (value, cid) for lead, field, value, cid
                    in conn.execute(holding_corrections_sql("c")).fetchall()}
            superseded = dict(conn.execute(superseded_corrections_sql("c")).fetchall())
        assert held == expected
        assert superseded == {"c1": "c2", "c4": "c3", "c5": "c6"}
    with duckdb.connect() as conn:
        conn.execute("create table c as select 'x' as level")
        with pytest.raises(ValueError, match="unknown correction levels"):
            check_levels(conn, "c")
