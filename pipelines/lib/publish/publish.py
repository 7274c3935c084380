"""Publish the lead tables atomically: readers see the previous set or the new one, never a mix."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb

from ..corrections.rules import CORRECTABLE_FIELDS
from ..quality.profiling import relation_exists

log = logging.getLogger(__name__)

PUBLISHED_SCHEMA = "published"
PUBLICATIONS_TABLE = f"{PUBLISHED_SCHEMA}.publications"
LEADS_CLEAN = f"{PUBLISHED_SCHEMA}.leads_clean"
LEAD_MEMBERS = f"{PUBLISHED_SCHEMA}.lead_members"
LEAD_REVIEW_QUEUE = f"{PUBLISHED_SCHEMA}.lead_review_queue"
LEADS_UNREACHABLE = f"{PUBLISHED_SCHEMA}.leads_unreachable"
# A lead is reachable through any valid one of these; the rest of its fields cannot make up for none.
REACHABLE = "(mobile is not null or email is not null or wechat is not null or qq is not null)"
REACHABLE_FIELDS = ("mobile", "email", "wechat", "qq")
LEAD_RECORDS = "marts.lead_records"
# Every contact value of every record as standardisation judged it: reachability is checked against this,
# not against the lead columns it is meant to check.
RECORD_CONTACTS = "intermediate.int_lead_contacts"


# The tables every version holds (pipelines/lib/history/versions.py): what the CRM reads.
VERSIONED_TABLES = (LEADS_CLEAN, LEADS_UNREACHABLE, LEAD_MEMBERS, LEAD_REVIEW_QUEUE)
# The tables a correction batch changes, written sorted by lead (see publish_version); the others are written
# as they stream.
BY_LEAD = (LEADS_CLEAN, LEADS_UNREACHABLE)
# One row per commit of the published tables that no version holds yet, written in the commit's own
# transaction and cleared once a version holds it: a version may be laid over the previous one lead by lead
# only when every such commit was a correction batch, whose changed leads all have history rows waiting.
UNVERSIONED = f"{PUBLISHED_SCHEMA}.unversioned_commits"
CORRECTION_COMMIT = "corrections"


def _ensure_unversioned(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
    conn.execute(f"create table if not exists {UNVERSIONED} (cause varchar, committed_at timestamptz)")


def mark_unversioned(conn: duckdb.DuckDBPyConnection, cause: str) -> None:
    """Inside the caller's transaction: the published tables changed, and no version holds it yet."""
    _ensure_unversioned(conn)
    conn.execute(f"insert into {UNVERSIONED} values (?, now())", [cause])


def only_corrections_unversioned(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether every commit no version holds yet was a correction batch (a home from before the marker: no)."""
    if not relation_exists(conn, UNVERSIONED):
        return False
    return not conn.execute(f"select count(*) from {UNVERSIONED} where cause <> ?", [CORRECTION_COMMIT]).fetchone()[0]


def publish_version(conn: duckdb.DuckDBPyConnection, versions_dir, cause: str, cause_id: str | None,
                    changed: tuple[str, ...] = VERSIONED_TABLES, changed_leads: list[str] | None = None):
    """The published tables as the next numbered version, readable without the DuckDB file. Written after
    the DuckDB commit: a crash in between leaves it to the next publication, which writes the tables whole.
    ``changed``: the tables this publication changed; the others carry over from the previous version.
    ``changed_leads``: every lead that changed since the previous version, where the caller knows them (a
    correction batch): their rows are replaced in the previous version's files instead of every row
    being written again, when they fall in few files, no other publication is waiting for its version
    (a run or restore that died before writing it) and the table's columns are the version's."""
    from deltalake import Schema

    from ..history.versions import Versions

    versions = Versions(versions_dir)
    if not versions.list():
        changed = VERSIONED_TABLES
    if changed_leads is not None and not only_corrections_unversioned(conn):
        changed_leads = None
    # streamed: DuckDB reads the next batches while Delta writes the last ones; a cursor per table, as a
    # connection's next query would end the stream of its last one. Sorted by lead, so that each Delta file
    # covers a narrow range of lead ids (Versions.can_replace_in_place).
    rows = {table.split(".")[1]: conn.execute(f"select count(*) from {table}").fetchone()[0] for table in changed}
    cursors = [conn.cursor() for _ in changed]
    streams, replaced = {}, {}
    try:
        for table, cursor in zip(changed, cursors):
            name = table.split(".")[1]
            if table not in BY_LEAD:
                cursor.execute(f"select * from {table}")
            elif changed_leads is not None and versions.can_replace_in_place(
                    name, "lead_id", changed_leads, Schema.from_arrow(cursor.execute(f"select * from {table} limit 0").arrow().schema)):
                replaced[name] = ("lead_id", changed_leads)
                cursor.execute(f"select * from {table} where lead_id in (select unnest($leads)) order by lead_id",
                               {"leads": changed_leads})
            else:
                cursor.execute(f"select * from {table} order by lead_id")
            streams[name] = cursor.to_arrow_reader(100_000)
        version = versions.publish(streams, cause=cause, cause_id=cause_id, rows=rows, replaced=replaced)
    finally:
        for cursor in cursors:
            cursor.close()
    # a crash before this line leaves the marks: the next version is written whole, as it must be
    _ensure_unversioned(conn)
    conn.execute(f"delete from {UNVERSIONED}")
    return version


class PublishError(RuntimeError):
    """Publishing was refused; the previous publication is still in place."""


@dataclass(frozen=True)
class Publication:
    publication_id: int
    row_counts: dict[str, int]


def publish_tables(
    conn: duckdb.DuckDBPyConnection,
    tables: dict[str, str],
    appends: dict[str, str] | None = None,
    checks: list[tuple[str, str]] | None = None,
    extra_statements: list[str] | None = None,
    updated: tuple[str, ...] = (),
    prepare: list[str] | None = None,
) -> Publication:
    """Replace each ``tables`` target with its query, append ``appends``, run ``extra_statements`` (which
    may change the ``updated`` tables in place), all in one transaction.

    ``checks`` are (description, SQL returning one boolean) run inside the transaction after the
    tables are built; a false one, or any error, rolls everything back and leaves the previous
    publication exactly as it was.
    """
    conn.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
    conn.execute(
        f"create table if not exists {PUBLICATIONS_TABLE} ("
        "publication_id bigint, table_name varchar, row_count bigint, published_at timestamp)"
    )
    conn.execute("begin transaction")
    try:
        for statement in prepare or []:  # inside the transaction, before any table changes
            conn.execute(statement)
        for target, select_sql in tables.items():
            conn.execute(f"create or replace table {target} as {select_sql}")
        for target, select_sql in (appends or {}).items():
            conn.execute(f"insert into {target} {select_sql}")
        for statement in extra_statements or []:
            conn.execute(statement)
        mark_unversioned(conn, "publication")
        for description, check_sql in checks or []:
            if not conn.execute(check_sql).fetchone()[0]:
                raise PublishError(f"refused to publish: {description}")
        publication_id = conn.execute(
            f"select coalesce(max(publication_id), 0) + 1 from {PUBLICATIONS_TABLE}"
        ).fetchone()[0]
        row_counts = {}
        for target in (*tables, *updated):
            row_counts[target] = conn.execute(f"select count(*) from {target}").fetchone()[0]
            conn.execute(
                f"insert into {PUBLICATIONS_TABLE} values (?, ?, ?, current_timestamp)",
                [publication_id, target, row_counts[target]],
            )
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        log.error("publication of %s failed; the previous publication stays", ", ".join(tables))
        raise
    log.info("published %s (publication %d)", row_counts, publication_id)
    return Publication(publication_id, row_counts)


def published_state_sql() -> str:
    """Every published lead with its history fields as text and whether it is reachable."""
    fields = ", ".join(f"{f}::varchar as {f}" for f in CORRECTABLE_FIELDS)
    return (f"select lead_id, {fields}, true as reachable from {LEADS_CLEAN} union all "
            f"select lead_id, {fields}, false from {LEADS_UNREACHABLE}")


def lead_history_statements(cause_id: str, actor: str, cause: str | None = None, rule: str = "survivorship") -> list[str]:
    """After the new tables are in place (in the publication's transaction): a history row per changed field
    of every lead published before and after (only leads whose row changed are compared field by field),
    a row per lead created, merged away, retired or moved in or out of quarantine, and one notification
    per lead that was published before and changed. The cause comes from the build's lead events."""
    from ..corrections.apply import PENDING_HISTORY
    from ..history.history import field_changes_sql
    from ..matching.leads import NEW_EVENTS
    from ..notify.webhooks import OUTBOX

    columns = ", ".join(CORRECTABLE_FIELDS)
    given = cause
    from ..matching.leads import DECISION_RECORDS, DECISIONS

    # a decision made since the last publication about one of the lead's records made this change
    # per lead (set-based: a first publication has a million), what made its changes: a decision since the
    # last publication about one of its records, else a merge or split of this build, else the import
    lead_causes = f"""create or replace temp table lead_causes as
        with decided as (
            select distinct m.lead_id from {DECISIONS} d
            join {DECISION_RECORDS} r using (decision_id) join {LEAD_MEMBERS} m using (record_id)
            where d.decided_at > (select coalesce(max(published_at), '-infinity'::timestamp) from {PUBLICATIONS_TABLE})),
        rebuilt as (
            select lead_id, max(event_type) as event_type from (
                select lead_id, event_type from {NEW_EVENTS} where event_type in ('merged', 'split')
                union all
                select other_lead_id, event_type from {NEW_EVENTS} where event_type in ('merged', 'split'))
            group by lead_id)
        select lead_id, 'review_decision' as cause from decided
        union all
        select lead_id, case event_type when 'merged' then 'merge' else 'split' end from rebuilt
        where lead_id not in (select lead_id from decided)"""
    cause = f"'{given}'" if given else "coalesce(lc.cause, 'import')"
    # a lead that left was merged away or retired, unless the whole publication has one cause (a restore)
    cause_of_change = cause if given else (
        "case when c.new_value = 'retired' and c.field = 'lead' then 'retire' "
        "when c.new_value like 'merged into %' and c.field = 'lead' then 'merge' "
        f"else {cause} end")
    return [
        f"create or replace temp table published_after as {published_state_sql()}",
        f"""create or replace temp table changed_before as select * from published_before b
            where not exists (select 1 from published_after a where a.lead_id = b.lead_id
                              and hash(a.{columns.replace(', ', ', a.')}, a.reachable) = hash(b.{columns.replace(', ', ', b.')}, b.reachable))""",
        "create or replace temp table changed_after as select * from published_after "
        "where lead_id in (select lead_id from changed_before)",
        f"""create or replace temp table lead_changes as
            select * from ({field_changes_sql('changed_before', 'changed_after', 'lead_id', list(CORRECTABLE_FIELDS))})
            union all
            select lead_id, 'lead', case when b.reachable then 'reachable' else 'unreachable' end,
                   case when a.reachable then 'reachable' else 'unreachable' end
            from changed_before b join changed_after a using (lead_id) where a.reachable <> b.reachable
            union all
            select b.lead_id, 'lead', case when b.reachable then 'reachable' else 'unreachable' end,
                   coalesce('merged into ' || e.survivor, 'retired')
            from changed_before b
            left join (select lead_id, max(other_lead_id) as survivor from {NEW_EVENTS} where event_type = 'merged'
                       group by lead_id) e using (lead_id)
            where b.lead_id not in (select lead_id from published_after)
            union all
            select lead_id, 'lead', null, 'created' from published_after
            where lead_id not in (select lead_id from published_before)""",
        lead_causes,
        f"""insert into {PENDING_HISTORY}
            select c.lead_id, c.field, c.old_value, c.new_value,
                   {cause_of_change},
                   '{cause_id}', '{rule}', '{actor}', now(), null
            from lead_changes c left join lead_causes lc using (lead_id)""",
        f"""insert into {OUTBOX}
            select '{cause_id}-' || lead_id, lead_id, 'rebuilt',
                   to_json({{'lead_id': lead_id, 'change': 'rebuilt', 'run_id': '{cause_id}',
                            'changes': list({{'field': field, 'old': old_value, 'new': new_value}} order by field)}}),
                   now()::timestamp
            from lead_changes where lead_id in (select lead_id from published_before)
            group by lead_id
            on conflict do nothing""",
    ]


def publish_leads(conn: duckdb.DuckDBPyConnection, incremental: bool = False, cause_id: str | None = None,
                  actor: str = "leadfactory run") -> Publication:
    """Reachable golden leads, the unreachable ones, members and the review queue together; events appended.

    ``incremental``: the built tables hold only the leads of an incremental build's scope; they replace
    those leads' rows in the published tables, and every other lead stays as published."""
    from ..matching.leads import BUILD_SCOPE, GOLDEN_LEADS, LEAD_EVENTS, LEAD_REGISTRY, NEW_EVENTS, REVIEW_QUEUE, UNREACHABLE  # leads imports this module
    from ..matching.leads import LEAD_MEMBERS as BUILT_MEMBERS
    from ..refresh import consume_pending_sql, ensure_refresh_tables, record_rules_sql, rules_fingerprint

    from ..corrections.apply import ensure_correction_tables

    from ..notify.webhooks import ensure_notification_tables

    ensure_refresh_tables(conn)
    ensure_correction_tables(conn)
    ensure_notification_tables(conn)
    cause_id = (cause_id or f"run-{datetime.now(timezone.utc):%Y%m%d%H%M%S%f}").replace("'", "")
    has_published = relation_exists(conn, LEADS_CLEAN) and relation_exists(conn, LEADS_UNREACHABLE)
    if has_published:
        from ..corrections.apply import ensure_published_columns

        ensure_published_columns(conn)
    prepare = [f"create or replace temp table published_before as {published_state_sql()}" if has_published else
               "create or replace temp table published_before as select * from (select null::varchar as lead_id, "
               + ", ".join(f"null::varchar as {f}" for f in CORRECTABLE_FIELDS) + ", null::boolean as reachable) where false"]
    tables = {
        LEADS_CLEAN: f"select * from {GOLDEN_LEADS} where {REACHABLE} order by lead_id",
        LEADS_UNREACHABLE: f"select * from {UNREACHABLE} order by lead_id",
        LEAD_MEMBERS: f"select * from {BUILT_MEMBERS} order by lead_id, record_id",
        LEAD_REVIEW_QUEUE: f"select * from {REVIEW_QUEUE} order by match_probability desc, review_id",
    }
    statements = []
    if incremental:
        in_scope = f"(select record_id from {BUILD_SCOPE})"
        replaced_leads = (f"(select lead_id from {LEAD_MEMBERS} where record_id in {in_scope} "
                          f"union select lead_id from {BUILT_MEMBERS})")
        statements = [
            f"create or replace temp table replaced_leads as {replaced_leads[1:-1]}",
            f"delete from {LEADS_CLEAN} where lead_id in (select lead_id from replaced_leads)",
            f"insert into {LEADS_CLEAN} by name {tables[LEADS_CLEAN]}",
            f"delete from {LEADS_UNREACHABLE} where lead_id in (select lead_id from replaced_leads)",
            f"insert into {LEADS_UNREACHABLE} by name {tables[LEADS_UNREACHABLE]}",
            f"delete from {LEAD_MEMBERS} where record_id in {in_scope}",
            f"insert into {LEAD_MEMBERS} by name {tables[LEAD_MEMBERS]}",
            # The queue: pairs inside the scope were built again; a pair reaching outside it keeps its
            # place with its records' lead ids as they are now, unless they are one lead now.
            f"delete from {LEAD_REVIEW_QUEUE} where record_id_l in {in_scope} and record_id_r in {in_scope}",
            f"""update {LEAD_REVIEW_QUEUE} q set lead_id_l = m.lead_id from {LEAD_MEMBERS} m
                where m.record_id = q.record_id_l and q.record_id_l in {in_scope}""",
            f"""update {LEAD_REVIEW_QUEUE} q set lead_id_r = m.lead_id from {LEAD_MEMBERS} m
                where m.record_id = q.record_id_r and q.record_id_r in {in_scope}""",
            f"""delete from {LEAD_REVIEW_QUEUE} where lead_id_l = lead_id_r
                or record_id_l not in (select record_id from {LEAD_MEMBERS})
                or record_id_r not in (select record_id from {LEAD_MEMBERS})""",
            f"insert into {LEAD_REVIEW_QUEUE} by name {tables[LEAD_REVIEW_QUEUE]}",
            # one pair per two leads, the likeliest (as a full build keeps it)
            f"""delete from {LEAD_REVIEW_QUEUE} where review_id in (
                    select review_id from {LEAD_REVIEW_QUEUE}
                    qualify row_number() over (partition by least(lead_id_l, lead_id_r), greatest(lead_id_l, lead_id_r)
                                               order by match_probability desc, review_id) > 1)""",
        ]
    return publish_tables(
        conn,
        tables={} if incremental else tables,
        updated=tuple(tables) if incremental else (),
        appends={LEAD_EVENTS: f"select * from {NEW_EVENTS}"},
        extra_statements=[
            *statements,
            f"""insert into {LEAD_REGISTRY} select lead_id, current_timestamp, null from {GOLDEN_LEADS}
                where lead_id not in (select lead_id from {LEAD_REGISTRY})""",
            f"""update {LEAD_REGISTRY} set merged_into = e.other_lead_id from {NEW_EVENTS} e
                where e.event_type = 'merged' and {LEAD_REGISTRY}.lead_id = e.lead_id""",
            # what is published now includes every change imported so far
            consume_pending_sql(),
            *lead_history_statements(cause_id, actor.replace("'", "")),
            # a full build is what later incremental runs build on, with these rules
            *([] if incremental else record_rules_sql(rules_fingerprint())),
        ],
        checks=publication_checks(f"select lead_id from {GOLDEN_LEADS} union select lead_id from {UNREACHABLE}"),
        prepare=prepare,
    )


def lead_contacts_sql(members: str = LEAD_MEMBERS) -> str:
    """(lead_id, field, value) of every contact a lead can be reached on, judged apart from the lead columns
    it vouches for: its records' valid mobiles, e-mails, WeChat and QQ ids less those corrections marked
    invalid, and the contacts corrections set (pipelines/lib/corrections)."""
    from ..corrections.apply import HOLDING, INVALID_CONTACTS

    fields = ", ".join(f"'{f}'" for f in REACHABLE_FIELDS)
    return f"""
        select m.lead_id, c.field, c.value from {members} m join {RECORD_CONTACTS} c using (record_id)
        where c.status = 'valid' and c.field in ({fields})
          and not exists (select 1 from {INVALID_CONTACTS} i
                          where i.lead_id = m.lead_id and i.field = c.field and i.value = c.value)
        union
        select lead_id, field, value from {HOLDING}
        where field in ({fields}) and lead_id in (select lead_id from {members})"""


def reachability_check(built_leads: str) -> tuple[str, str]:
    """Every published lead of ``built_leads`` can be contacted and every quarantined one cannot, by
    ``lead_contacts_sql``."""
    return (
        "every published lead can be contacted and every quarantined one cannot (by its records' contacts and "
        "the corrections)",
        f"""with built as ({built_leads}),
             reachable_leads as (select distinct lead_id from ({lead_contacts_sql()})
                                 where lead_id in (select lead_id from built))
             select not exists (select 1 from {LEADS_CLEAN} where lead_id in (select lead_id from built)
                                and lead_id not in (select lead_id from reachable_leads))
                and not exists (select 1 from {LEADS_UNREACHABLE}
                                where lead_id in (select lead_id from built) and lead_id in (select lead_id from reachable_leads))""")


def publication_checks(built_leads: str) -> list[tuple[str, str]]:
    """What must hold of the tables about to be published, each checked against another source than the
    one the tables were built from: the records standardised, the leads of the published members, and
    reachability recomputed from the contacts table (not from the lead columns it would vouch for).
    ``built_leads``: a query of the leads this build made (every lead after a full build); reachability is
    checked for those, the others were checked when they were published."""
    return [
        ("every accepted record belongs to exactly one lead",
         f"select (select count(*) from {LEAD_MEMBERS}) = (select count(*) from {LEAD_RECORDS}) "
         f"and (select count(distinct record_id) from {LEAD_MEMBERS}) = (select count(*) from {LEAD_RECORDS})"),
        # the leads of the members, each published once (reachable or quarantined) with as many records
        # as it has members; and no published lead without members
        ("every lead of the members is published once, as reachable or quarantined, with its members' count",
         f"""with published as (
                 select lead_id, record_count from {LEADS_CLEAN}
                 union all select lead_id, record_count from {LEADS_UNREACHABLE}),
             members as (select lead_id, count(*) as records from {LEAD_MEMBERS} group by lead_id)
             select (select count(*) from published) = (select count(distinct lead_id) from published)
                and not exists (select 1 from published p full join members m using (lead_id)
                                where p.lead_id is null or m.lead_id is null or p.record_count <> m.records)"""),
        ("lead ids are unique", f"select count(distinct lead_id) = count(*) from {LEADS_CLEAN}"),
        reachability_check(built_leads),
    ]
