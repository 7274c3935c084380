"""Applying corrections: events and manual edits, recorded in the library, laid over the published leads.

One batch (the correction job: its sensor, `leadfactory events apply`, `leadfactory edit`):

1. read the complete event lines past the cursor. The cursor is where the library's event log ends (the
   largest end offset per file), so it survives restarts and crashes without being stored anywhere else;
2. judge each event: find its lead (by lead_id, following merges; or by a contact the lead holds) and say
   what becomes of it: applied, noop, superseded, skipped (not verified), duplicate (its id was seen), or
   dead_letter, each with its reason;
3. record the corrections in the library, then the event log rows: the commit marker, which also moves
   the cursor;
4. lay every committed correction the DuckDB file has not laid over yet onto the published leads, in one
   transaction with the history rows and the notifications; then write the next version.

A crash before 3's marker reads the lines again (corrections written without a marker are ignored, and
event ids keep it from counting twice); a crash after it leaves 4 to the next batch. The nightly rebuild
lays the same corrections over the golden leads it builds (``overlay_corrections``), so it never reverts
one; corrections follow their lead through merges (the registry's merged_into) and splits (the larger part
keeps the id).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from ..identity.library import CORRECTION_SCHEMA, EVENT_LOG_SCHEMA, Library
from .events import EVENTS_DIR, DeadLetter, Event, read_new_events, standardise_contact, write_dead_letters
from .precedence import holding_corrections_sql
from .rules import CONTACT_FIELDS, CORRECTABLE_FIELDS, CorrectionRules, correction_level

log = logging.getLogger(__name__)

SCHEMA = "corrections"
LEAD_CORRECTIONS = f"{SCHEMA}.lead_corrections"      # the library's corrections this DuckDB file laid over
HOLDING = f"{SCHEMA}.holding"                        # per lead and field, the set that holds (valid values)
INVALID_CONTACTS = f"{SCHEMA}.invalid_contacts"      # contact values marked invalid on a lead
PENDING_HISTORY = f"{SCHEMA}.pending_history"        # history rows committed here, not yet in the Delta table
LEAD_REGISTRY = "matching.lead_registry"
NEW_LEAD_EVENTS = "matching.new_lead_events"
LEADS_CLEAN = "published.leads_clean"
LEADS_UNREACHABLE = "published.leads_unreachable"
# A contact field and the list of all its values on a lead.
CONTACT_LISTS = {"mobile": "mobiles", "email": "emails", "wechat": "wechats", "qq": "qqs", "landline": "landlines"}
SCALAR_FIELDS = [f for f in CORRECTABLE_FIELDS if f not in CONTACT_LISTS]
OUTCOMES = ("applied", "noop", "superseded", "skipped", "duplicate", "dead_letter")
UNREACHABLE_BY_CORRECTION = "联系方式已被标记无效 (every contact was marked invalid by an event or an edit)"


@dataclass
class CorrectionReport:
    lines: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    per_file: dict[str, dict[str, int]] = field(default_factory=dict)
    leads_changed: int = 0
    version: int | None = None

    @property
    def reconciles(self) -> bool:
        return sum(self.outcomes.values()) == self.lines

    def render(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in self.outcomes.items() if n)
        lines = [f"events: {self.lines} read = {counts or 'nothing new'}; {self.leads_changed} leads changed"
                 + (f"; published version {self.version}" if self.version else "")]
        for file, outcomes in sorted(self.per_file.items()):
            lines.append(f"  {file}: {sum(outcomes.values())} lines = "
                         + ", ".join(f"{n} {name}" for name, n in outcomes.items() if n))
        return "\n".join(lines)


def ensure_correction_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"create schema if not exists {SCHEMA}")
    columns = ", ".join(f"{f.name} {'timestamp' if pa.types.is_timestamp(f.type) else 'varchar'}" for f in CORRECTION_SCHEMA)
    conn.execute(f"create table if not exists {LEAD_CORRECTIONS} ({columns})")
    conn.execute(f"alter table {LEAD_CORRECTIONS} add column if not exists reason varchar")  # added after the first release
    conn.execute(f"create table if not exists {HOLDING} (lead_id varchar, field varchar, value varchar, "
                 "correction_id varchar, occurred_at timestamp)")
    conn.execute(f"create table if not exists {INVALID_CONTACTS} (lead_id varchar, field varchar, value varchar, "
                 "correction_id varchar)")
    # the columns of HISTORY_SCHEMA, in its order (tests/test_corrections.py holds the two together)
    conn.execute(f"create table if not exists {PENDING_HISTORY} (lead_id varchar, field varchar, old_value varchar, "
                 "new_value varchar, cause varchar, cause_id varchar, rule varchar, actor varchar, "
                 "changed_at timestamptz, version bigint)")


def event_cursor(library: Library) -> dict[str, dict[str, int]]:
    """Where reading stops: per file, the end of the last line the library's event log holds."""
    with duckdb.connect() as conn:
        conn.register("event_log", library.dataset("event_log"))
        rows = conn.execute("select file, max(end_offset), max(line) from event_log group by file").fetchall()
    return {file: {"offset": offset, "line": line} for file, offset, line in rows}


def pending_event_bytes(events_dir: Path, library: Library) -> int:
    """Bytes of events files past the cursor (a cheap test for the sensor: is there anything to read?)."""
    from .events import event_files

    cursor = event_cursor(library)
    return sum(max(0, p.stat().st_size - cursor.get(p.name, {"offset": 0})["offset"]) for p in event_files(events_dir))


# -- laying corrections over leads ------------------------------------------------------------------------

def _merges_sql(conn: duckdb.DuckDBPyConnection) -> str:
    """(lead_id, merged_into): the registry's merges, and those of the build in progress, not yet registered."""
    from ..quality.profiling import relation_exists

    merges = [f"select lead_id, merged_into from {LEAD_REGISTRY} where merged_into is not null"] \
        if relation_exists(conn, LEAD_REGISTRY) else []
    if relation_exists(conn, NEW_LEAD_EVENTS):
        merges.append(f"select lead_id, other_lead_id from {NEW_LEAD_EVENTS} where event_type = 'merged'")
    merges.append("select null::varchar, null::varchar where false")
    return " union ".join(f"({m})" for m in merges)


def _resolve_holding(conn: duckdb.DuckDBPyConnection, corrections: str) -> None:
    """Rebuild HOLDING and INVALID_CONTACTS from ``corrections`` (LEAD_CORRECTIONS' columns), each anchored to
    the lead its lead id became (a merged lead's corrections go to the lead it merged into).

    A set whose value was later marked invalid holds no more (the field falls back to the records); an
    invalidation holds unless a later set brought the same value back."""
    conn.execute(f"""
        create or replace temp table resolved_corrections as
        with recursive chain(correction_id, lead_id, depth) as (
            select correction_id, lead_id, 0 from {corrections}
            union all
            select c.correction_id, r.merged_into, c.depth + 1
            from chain c join ({_merges_sql(conn)}) r on r.lead_id = c.lead_id
            where c.depth < 20
        )
        select c.* replace (ch.lead_id as lead_id)
        from (select distinct on (correction_id) * from {corrections}) c
        join (select correction_id, arg_max(lead_id, depth) as lead_id from chain group by correction_id) ch
          using (correction_id)
    """)
    conn.execute(f"""
        create or replace table {HOLDING} as
        with sets as (select * from resolved_corrections where action = 'set'),
             invalid as (select lead_id, field, value, max(occurred_at) as invalid_at
                         from resolved_corrections where action = 'invalidate' group by all),
             holding as ({holding_corrections_sql('sets')})
        select h.lead_id, h.field, h.value, h.correction_id, s.occurred_at
        from holding h join sets s using (correction_id)
        where not exists (select 1 from invalid i where i.lead_id = h.lead_id and i.field = h.field
                          and i.value = h.value and i.invalid_at >= s.occurred_at)
    """)
    conn.execute(f"""
        create or replace table {INVALID_CONTACTS} as
        select lead_id, field, value, arg_max(correction_id, occurred_at) as correction_id
        from resolved_corrections i
        where action = 'invalidate'
          and not exists (select 1 from {HOLDING} h where h.lead_id = i.lead_id and h.field = i.field and h.value = i.value)
        group by all
    """)


def overlay_corrections(conn: duckdb.DuckDBPyConnection, target: str) -> int:
    """Lay the holding corrections over the leads of ``target`` (golden leads' columns), in place; return how
    many leads carry a correction. A new contact becomes the lead's first (the one it replaces leaves the
    lead and stays in history); an invalid one leaves every list, the next valid one taking its place."""
    ensure_correction_tables(conn)
    conn.execute(f"alter table {target} add column if not exists do_not_contact boolean default false")
    _resolve_holding(conn, LEAD_CORRECTIONS)
    in_target = f"lead_id in (select lead_id from {target})"
    for name, values in CONTACT_LISTS.items():
        conn.execute(f"""
            update {target} t set {values} = [h.value] || list_filter(t.{values}, x -> x <> h.value
                                                                       and x is distinct from t.{name}),
                                  {name} = h.value
            from {HOLDING} h where h.lead_id = t.lead_id and h.field = '{name}'""")
        conn.execute(f"""
            update {target} t set {values} = list_filter(t.{values}, x -> not list_contains(i.bad, x)),
                                  {name} = list_filter(t.{values}, x -> not list_contains(i.bad, x))[1]
            from (select lead_id, list(value) as bad from {INVALID_CONTACTS} where field = '{name}' group by lead_id) i
            where i.lead_id = t.lead_id and list_has_any(t.{values}, i.bad)""")
    for name in SCALAR_FIELDS:
        cast = "::boolean" if name == "do_not_contact" else ""
        conn.execute(f"""update {target} t set {name} = h.value{cast} from {HOLDING} h
                         where h.lead_id = t.lead_id and h.field = '{name}'""")
    return conn.execute(f"select count(distinct lead_id) from (select lead_id from {HOLDING} union all "
                        f"select lead_id from {INVALID_CONTACTS}) where {in_target}").fetchone()[0]


# -- one batch --------------------------------------------------------------------------------------------

def _published_leads(conn: duckdb.DuckDBPyConnection) -> str:
    return (f"(select lead_id, mobile, mobiles, email, emails, wechat, wechats, qq, qqs, landline, landlines, "
            f"{', '.join(SCALAR_FIELDS)} from {LEADS_CLEAN} union all by name "
            f"select lead_id, mobile, mobiles, email, emails, wechat, wechats, qq, qqs, landline, landlines, "
            f"{', '.join(SCALAR_FIELDS)} from {LEADS_UNREACHABLE})")


def ensure_published_columns(conn: duckdb.DuckDBPyConnection) -> None:
    for table in (LEADS_CLEAN, LEADS_UNREACHABLE):
        conn.execute(f"alter table {table} add column if not exists do_not_contact boolean default false")


def _find_leads(conn: duckdb.DuckDBPyConnection, events: list[Event]) -> dict[str, tuple[str | None, str | None]]:
    """event_id -> (lead_id, None) or (None, why no single lead was found)."""
    if not events:
        return {}
    keys = pa.table({
        "event_id": [e.event_id for e in events],
        "lead_key": [e.lead_key for e in events],
        "lead_value": [e.lead_value if e.lead_key == "lead_id" else standardise_contact(e.lead_key, e.lead_value)
                       for e in events]})
    conn.register("event_keys", keys)
    published = _published_leads(conn)
    rows = conn.execute(f"""
        with recursive chain(event_id, lead_id, depth) as (
            select event_id, lead_value, 0 from event_keys where lead_key = 'lead_id'
            union all
            select c.event_id, r.merged_into, c.depth + 1 from chain c join ({_merges_sql(conn)}) r on r.lead_id = c.lead_id
            where c.depth < 20
        ),
        published as {published},
        by_id as (
            select event_id, arg_max(c.lead_id, depth) as lead_id from chain c
            where c.lead_id in (select lead_id from published) group by event_id
        ),
        contacts as (
            select lead_id, 'mobile' as lead_key, unnest(mobiles) as lead_value from published
            union all select lead_id, 'email', unnest(emails) from published
            union all select lead_id, 'wechat', unnest(wechats) from published
        ),
        by_contact as (
            select k.event_id, list(distinct c.lead_id order by c.lead_id) as leads
            from event_keys k join contacts c using (lead_key, lead_value)
            where k.lead_key <> 'lead_id' group by k.event_id
        )
        select k.event_id, k.lead_key, case when b.lead_id is not null then [b.lead_id] else c.leads end as leads
        from event_keys k left join by_id b using (event_id) left join by_contact c using (event_id)
    """).fetchall()
    conn.unregister("event_keys")
    found = {}
    for event_id, key, leads in rows:
        leads = [lead for lead in (leads or []) if lead is not None]
        if len(leads) == 1:
            found[event_id] = (leads[0], None)
        elif not leads:
            found[event_id] = (None, f"找不到线索 (unknown lead): no published lead has this {key}")
        else:
            found[event_id] = (None, f"线索不唯一 (ambiguous lead): {len(leads)} leads hold this {key}; "
                                     "name the lead by lead_id")
    return found


def _corrections_of(event: Event, rules: CorrectionRules, lead_id: str, now: datetime) -> list[dict]:
    rule = rules.event_types[event.type]
    common = {"event_id": event.event_id, "level": correction_level(event.type), "event_type": event.type,
              "lead_id": lead_id, "occurred_at": event.occurred_at.astimezone(timezone.utc).replace(tzinfo=None),
              "source": event.source, "actor": event.actor, "recorded_at": now, "reason": event.reason}
    rows = []
    for target, source in rule.sets.items():
        value = source[1] if isinstance(source, tuple) else event.payload.get(source)
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        rows.append({**common, "correction_id": f"{event.event_id}#{target}", "field": target, "action": "set",
                     "value": text})
    if rule.invalidates:
        contact = event.payload[rule.invalidates["field"]]
        value = standardise_contact(contact, event.payload[rule.invalidates["value"]])
        rows.append({**common, "correction_id": f"{event.event_id}#invalid:{contact}", "field": contact,
                     "action": "invalidate", "value": value})
    return rows


def record_events(conn: duckdb.DuckDBPyConnection, library: Library, events_dir: Path, rules: CorrectionRules,
                  max_lines: int | None = None) -> CorrectionReport:
    """Steps 1 to 3: read, judge and record the new event lines; the corrections are committed to the
    library but not laid over the leads yet (``publish_corrections``)."""
    ensure_correction_tables(conn)
    ensure_published_columns(conn)
    batch = read_new_events(events_dir, event_cursor(library), rules, max_lines=max_lines)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    report = CorrectionReport(lines=batch.lines)
    log_rows: list[dict] = []
    dead: list[DeadLetter] = list(batch.dead_letters)

    def outcome(event: Event | DeadLetter, what: str, reason: str | None, lead_id: str | None = None) -> None:
        report.outcomes[what] += 1
        report.per_file.setdefault(event.file, dict.fromkeys(OUTCOMES, 0))[what] += 1
        log_rows.append({"event_id": getattr(event, "event_id", None), "file": event.file, "line": event.line,
                         "end_offset": event.offset, "event_type": getattr(event, "type", None), "lead_id": lead_id,
                         "outcome": what, "reason": reason, "recorded_at": now})

    for letter in batch.dead_letters:
        outcome(letter, "dead_letter", letter.reason)
    conn.register("event_log_seen", library.dataset("event_log"))
    seen = {row[0] for row in conn.execute(
        "select distinct event_id from event_log_seen where outcome <> 'dead_letter' and event_id is not null").fetchall()}
    conn.unregister("event_log_seen")
    leads = _find_leads(conn, batch.events)
    new_rows: list[dict] = []
    judged: list[tuple[Event, str, list[dict]]] = []
    for event in batch.events:
        if event.event_id in seen:
            outcome(event, "duplicate", "重复事件 (duplicate): this event id was processed before; applied once")
            continue
        seen.add(event.event_id)
        lead_id, why = leads[event.event_id]
        if lead_id is None:
            dead.append(DeadLetter(event.file, event.line, why, json.dumps(_as_doc(event), ensure_ascii=False), event.offset))
            outcome(event, "dead_letter", why)
            continue
        rule = rules.event_types[event.type]
        if rule.verified_only and event.payload.get("verified") is not True:
            outcome(event, "skipped", "未验证 (not verified): this type is applied only when verified is true", lead_id)
            continue
        rows = _corrections_of(event, rules, lead_id, now)
        new_rows.extend(rows)
        judged.append((event, lead_id, rows))
    _judge_against_holding(conn, judged, new_rows, outcome)
    library.append("corrections", pa.Table.from_pylist(new_rows, CORRECTION_SCHEMA))
    write_dead_letters(events_dir, dead)
    library.append("event_log", pa.Table.from_pylist(log_rows, EVENT_LOG_SCHEMA))  # the commit marker
    return report


def _judge_against_holding(conn, judged, new_rows, outcome) -> None:
    """applied, noop (the lead already has it) or superseded (a later or higher correction holds)."""
    if not judged:
        return
    conn.register("new_corrections", pa.Table.from_pylist(new_rows, CORRECTION_SCHEMA))
    conn.execute(f"""create or replace temp table candidate_corrections as
                     select * from {LEAD_CORRECTIONS} union all by name select * from new_corrections""")
    conn.unregister("new_corrections")
    _resolve_holding(conn, "candidate_corrections")
    holding = {row[0] for row in conn.execute(f"select correction_id from {HOLDING}").fetchall()}
    invalid = {row[0] for row in conn.execute(f"select correction_id from {INVALID_CONTACTS}").fetchall()}
    winners = {(l, f): c for l, f, c in conn.execute(f"select lead_id, field, correction_id from {HOLDING}").fetchall()}
    lead_ids = sorted({lead for _, lead, _ in judged})
    current = {row["lead_id"]: row for row in conn.execute(
        f"select * from {_published_leads(conn)} where lead_id in (select unnest(?))", [lead_ids]).to_arrow_table().to_pylist()}
    # the holding tables describe the candidates now; publishing rebuilds them from what was laid over
    for event, lead_id, rows in judged:
        effective = [r for r in rows if r["correction_id"] in holding or r["correction_id"] in invalid]
        if not effective:
            by = {winners.get((lead_id, r["field"])) for r in rows} - {None}
            outcome(event, "superseded", "已被取代 (superseded): a later event or a manual edit holds for "
                    + ", ".join(sorted(r["field"] for r in rows)) + (f" ({', '.join(sorted(by))})" if by else ""), lead_id)
            continue
        lead = current.get(lead_id, {})
        changes = False
        for r in effective:
            field = r["field"]
            if r["action"] == "invalidate":
                changes |= r["value"] in (lead.get(CONTACT_LISTS[field]) or [])
            else:
                have = lead.get(field)
                have = ("true" if have else "false") if isinstance(have, bool) else have
                changes |= have != r["value"]
        if changes:
            outcome(event, "applied", None, lead_id)
        else:
            outcome(event, "noop", "无变化 (no-op): the lead already holds this", lead_id)


def _as_doc(event: Event) -> dict:
    return {"event_id": event.event_id, "type": event.type, "occurred_at": event.occurred_at.isoformat(),
            "source": event.source, "lead": {event.lead_key: event.lead_value}, "payload": event.payload,
            **({"actor": event.actor} if event.actor else {}), **({"reason": event.reason} if event.reason else {})}


def publish_corrections(conn: duckdb.DuckDBPyConnection, library: Library) -> tuple[list[str], str]:
    """Step 4: lay the committed corrections not laid over yet onto the published leads, moving a lead to
    or from leads_unreachable as its contacts go, with their history rows and notifications, in one
    transaction. Returns (the leads that changed, the batch id)."""
    from ..history.history import field_changes_sql
    from ..notify.webhooks import OUTBOX, ensure_notification_tables
    from ..publish.publish import CORRECTION_COMMIT, mark_unversioned

    ensure_correction_tables(conn)
    ensure_notification_tables(conn)
    ensure_published_columns(conn)
    conn.register("library_corrections", library.dataset("corrections"))
    conn.register("library_event_log", library.dataset("event_log"))
    batch_id = uuid.uuid4().hex[:16]
    conn.execute("begin transaction")
    try:
        # committed: the event log (written after the corrections) names the event
        conn.register("library_reversions", library.dataset("reversions"))
        conn.execute(f"""create or replace temp table new_corrections as
            select distinct on (correction_id) * from library_corrections
            where event_id in (select event_id from library_event_log)
              and event_id not in (select reverted_id from library_reversions where kind = 'correction')
              and correction_id not in (select correction_id from {LEAD_CORRECTIONS})""")
        conn.unregister("library_reversions")
        if not conn.execute("select count(*) from new_corrections").fetchone()[0]:
            conn.execute("rollback")
            return [], batch_id
        conn.execute(f"insert into {LEAD_CORRECTIONS} by name select * from new_corrections")
        published = f"select * from {LEADS_CLEAN} union all by name select * exclude (reason, rows_to_fix) from {LEADS_UNREACHABLE}"
        # the leads now (a merged lead's corrections reach the lead it merged into)
        _resolve_holding(conn, "new_corrections")
        conn.execute(f"""create or replace temp table before_leads as select * from ({published})
                         where lead_id in (select lead_id from resolved_corrections)""")
        # from here on resolved_corrections holds every correction laid over (overlay_corrections)
        conn.execute("create or replace temp table corrected_leads as select * from before_leads")
        overlay_corrections(conn, "corrected_leads")
        reachable = " or ".join(f"{f} is not null" for f in CONTACT_FIELDS)
        conn.execute(f"""
            create or replace temp table lead_changes as
            select * from ({field_changes_sql('before_leads', 'corrected_leads', 'lead_id', list(CORRECTABLE_FIELDS))})
            union all
            select lead_id, 'lead', 'reachable', 'unreachable' from corrected_leads
            where not ({reachable}) and lead_id in (select lead_id from {LEADS_CLEAN})
            union all
            select lead_id, 'lead', 'unreachable', 'reachable' from corrected_leads
            where ({reachable}) and lead_id in (select lead_id from {LEADS_UNREACHABLE})""")
        conn.execute(f"""create or replace temp table moved_unreachable as
                         select lead_id, reason, rows_to_fix from {LEADS_UNREACHABLE}
                         where lead_id in (select lead_id from corrected_leads)""")
        changed = "(select distinct lead_id from lead_changes)"
        conn.execute(f"delete from {LEADS_CLEAN} where lead_id in {changed}")
        conn.execute(f"delete from {LEADS_UNREACHABLE} where lead_id in {changed}")
        conn.execute(f"insert into {LEADS_CLEAN} by name select * from corrected_leads where ({reachable}) "
                     f"and lead_id in {changed}")
        conn.execute(f"""insert into {LEADS_UNREACHABLE} by name
            select c.*, coalesce(u.reason, '{UNREACHABLE_BY_CORRECTION}') as reason, coalesce(u.rows_to_fix, []) as rows_to_fix
            from corrected_leads c left join moved_unreachable u using (lead_id)
            where not ({reachable}) and c.lead_id in {changed}""")
        # each change with the correction that made it: the newest new one of its field, else of its lead
        conn.execute(f"""
            insert into {PENDING_HISTORY}
            with made as (
                select lead_id, field, struct_pack(event_id, level, event_type, who := coalesce(actor, source),
                                            rule := event_type || coalesce(': ' || reason, '')) as maker,
                       occurred_at
                from resolved_corrections where correction_id in (select correction_id from new_corrections)),
            by_field as (select lead_id, field, arg_max(maker, occurred_at) as maker from made group by all),
            by_lead as (select lead_id, arg_max(maker, occurred_at) as maker from made group by all),
            attributed as (
                select c.*, coalesce(f.maker, l.maker) as maker from lead_changes c
                left join by_field f using (lead_id, field) left join by_lead l using (lead_id))
            select lead_id, field, old_value, new_value,
                   case when maker.level = 'manual_edit' then 'manual_edit' else 'event' end,
                   maker.event_id, maker.rule, maker.who, now(), null
            from attributed""")
        # one notification per changed lead, in this transaction (set-based: thousands of leads per batch)
        conn.execute(f"""
            insert into {OUTBOX}
            select '{batch_id}-' || lead_id, lead_id, 'corrected',
                   to_json({{'lead_id': lead_id, 'change': 'corrected', 'batch_id': '{batch_id}',
                             'changes': list({{'field': field, 'old': old_value, 'new': new_value}} order by field),
                             'event_ids': list(distinct cause_id order by cause_id)}}),
                   now()::timestamp
            from {PENDING_HISTORY} where changed_at = now() group by lead_id
            on conflict do nothing""")
        rows = conn.execute("select distinct lead_id from lead_changes order by lead_id").fetchall()
        mark_unversioned(conn, CORRECTION_COMMIT)
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    finally:
        conn.unregister("library_corrections")
        conn.unregister("library_event_log")
    changed_leads = [row[0] for row in rows]
    log.info("corrections laid over %d leads (batch %s)", len(changed_leads), batch_id)
    return changed_leads, batch_id


def flush_history(conn: duckdb.DuckDBPyConnection, library_root: Path, version: int | None) -> int:
    """Move the history rows committed in DuckDB to the append-only Delta table (the system of record)."""
    from ..history.history import HISTORY_SCHEMA, LeadHistory

    ensure_correction_tables(conn)
    rows = conn.execute(f"select * replace (coalesce(version, ?) as version) from {PENDING_HISTORY}",
                        [version]).to_arrow_table()
    if rows.num_rows:
        LeadHistory(library_root).append(rows.cast(HISTORY_SCHEMA))
        conn.execute(f"delete from {PENDING_HISTORY}")  # staging only: the history itself is never changed
    return rows.num_rows


def events_dir_of(home_root: Path) -> Path:
    return home_root / EVENTS_DIR
