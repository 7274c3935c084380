"""Incremental matching: what an import's changed records touch, so only that is rebuilt.

A full run clusters connected components of the merge graph independently, so rebuilding just the
components a changed record can reach gives the leads a full rerun would give there. The scope of an
incremental run is: the changed records (new, updated, retired); the library records a changed record
is now linked to by a merge-strength pair or a person's decision; and every member of the published
leads those records belong to (a lead is rebuilt whole, so it can keep, gain, lose or merge records).
"""

from __future__ import annotations

import duckdb

from ..publish.publish import LEAD_MEMBERS as PUBLISHED_MEMBERS, LEADS_CLEAN, LEAD_RECORDS
from ..refresh import PENDING_CHANGES
from .match_config import MatchConfig
from .matching import MATCH_INPUT, RECORD_CONTACTS, SCORED_PAIRS, SHARED_CONTACT_VALUES, TF_COMPARISONS, _tf_table

CHANGED_RECORDS = "changed_records"  # temp table: record ids of the pending changes
SCOPE = "scope_records"               # temp table: record ids an incremental run rebuilds leads for

# Tables an incremental run builds on: without any of them the run works in full.
INCREMENTAL_WORKING_STATE = (
    LEAD_RECORDS, MATCH_INPUT, RECORD_CONTACTS, SHARED_CONTACT_VALUES, SCORED_PAIRS,
    *(_tf_table(column) for column in TF_COMPARISONS), PUBLISHED_MEMBERS, LEADS_CLEAN,
)


def stage_changed_records(conn: duckdb.DuckDBPyConnection) -> int:
    """``changed_records``: every record with a pending change; return how many."""
    conn.execute(f"create or replace temp table {CHANGED_RECORDS} as select distinct record_id from {PENDING_CHANGES}")
    return conn.execute(f"select count(*) from {CHANGED_RECORDS}").fetchone()[0]


# A merge-strength chain longer than this is cut by the chaining guard anyway; the scope stops growing here.
MAX_SCOPE_ROUNDS = 10


def stage_scope(conn: duckdb.DuckDBPyConnection, config: MatchConfig) -> int:
    """``scope_records``: the records whose leads an incremental run rebuilds; return how many.

    It starts from the changed records, every record they are paired with (merge strength or review
    band: a new pair for review must reach the queue) and the records a person's decision binds them to,
    takes the published leads of all these whole, and then grows along merge-strength pairs until it
    holds the whole connected group a full run would cluster together."""
    from .leads import DECISION_RECORDS, ensure_matching_tables

    ensure_matching_tables(conn)
    conn.execute(f"""
        create or replace temp table {SCOPE} as
        with linked as (
            select p.record_id_r as record_id from {SCORED_PAIRS} p join {CHANGED_RECORDS} c on c.record_id = p.record_id_l
            union
            select p.record_id_l from {SCORED_PAIRS} p join {CHANGED_RECORDS} c on c.record_id = p.record_id_r
            union
            -- a person's decision on a changed record binds the records it was taken with
            select o.record_id from {DECISION_RECORDS} d join {CHANGED_RECORDS} c using (record_id)
            join {DECISION_RECORDS} o on o.decision_id = d.decision_id
        ),
        reached as (select record_id from {CHANGED_RECORDS} union select record_id from linked)
        select record_id from reached
        union
        select record_id from {PUBLISHED_MEMBERS}
        where lead_id in (select lead_id from {PUBLISHED_MEMBERS} where record_id in (select record_id from reached))
    """)
    size = conn.execute(f"select count(*) from {SCOPE}").fetchone()[0]
    for _ in range(MAX_SCOPE_ROUNDS):
        conn.execute(f"""
            insert into {SCOPE}
            with edge as (
                select record_id_l as a, record_id_r as b from {SCORED_PAIRS} where match_probability >= {config.auto_merge}
            ),
            reached as (
                select e.b as record_id from edge e join {SCOPE} s on s.record_id = e.a
                union select e.a from edge e join {SCOPE} s on s.record_id = e.b
            ),
            grown as (
                select record_id from reached
                union
                select record_id from {PUBLISHED_MEMBERS}
                where lead_id in (select lead_id from {PUBLISHED_MEMBERS} where record_id in (select record_id from reached))
            )
            select distinct record_id from grown where record_id not in (select record_id from {SCOPE})
        """)
        grown = conn.execute(f"select count(*) from {SCOPE}").fetchone()[0]
        if grown == size:
            break
        size = grown
    return size
