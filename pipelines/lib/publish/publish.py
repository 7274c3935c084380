"""Publish the lead tables atomically: readers see the previous set or the new one, never a mix."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb

log = logging.getLogger(__name__)

PUBLISHED_SCHEMA = "published"
PUBLICATIONS_TABLE = f"{PUBLISHED_SCHEMA}.publications"
LEADS_CLEAN = f"{PUBLISHED_SCHEMA}.leads_clean"
LEAD_MEMBERS = f"{PUBLISHED_SCHEMA}.lead_members"
LEAD_REVIEW_QUEUE = f"{PUBLISHED_SCHEMA}.lead_review_queue"
LEADS_UNREACHABLE = f"{PUBLISHED_SCHEMA}.leads_unreachable"
# A lead is reachable through any valid one of these; the rest of its fields cannot make up for none.
REACHABLE = "(mobile is not null or email is not null or wechat is not null or qq is not null)"
LEAD_RECORDS = "marts.lead_records"


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
) -> Publication:
    """Replace each ``tables`` target with its query, append ``appends``, all in one transaction.

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
        for target, select_sql in tables.items():
            conn.execute(f"create or replace table {target} as {select_sql}")
        for target, select_sql in (appends or {}).items():
            conn.execute(f"insert into {target} {select_sql}")
        for statement in extra_statements or []:
            conn.execute(statement)
        for description, check_sql in checks or []:
            if not conn.execute(check_sql).fetchone()[0]:
                raise PublishError(f"refused to publish: {description}")
        publication_id = conn.execute(
            f"select coalesce(max(publication_id), 0) + 1 from {PUBLICATIONS_TABLE}"
        ).fetchone()[0]
        row_counts = {}
        for target in tables:
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


def publish_leads(conn: duckdb.DuckDBPyConnection) -> Publication:
    """Reachable golden leads, the unreachable ones, members and the review queue together; events appended."""
    from ..matching.leads import GOLDEN_LEADS, LEAD_EVENTS, LEAD_REGISTRY, NEW_EVENTS, REVIEW_QUEUE, UNREACHABLE  # leads imports this module
    from ..matching.leads import LEAD_MEMBERS as BUILT_MEMBERS

    return publish_tables(
        conn,
        tables={
            LEADS_CLEAN: f"select * from {GOLDEN_LEADS} where {REACHABLE} order by lead_id",
            LEADS_UNREACHABLE: f"select * from {UNREACHABLE} order by lead_id",
            LEAD_MEMBERS: f"select * from {BUILT_MEMBERS} order by lead_id, record_id",
            LEAD_REVIEW_QUEUE: f"select * from {REVIEW_QUEUE} order by match_probability desc, review_id",
        },
        appends={LEAD_EVENTS: f"select * from {NEW_EVENTS}"},
        extra_statements=[
            f"""insert into {LEAD_REGISTRY} select lead_id, current_timestamp, null from {GOLDEN_LEADS}
                where lead_id not in (select lead_id from {LEAD_REGISTRY})""",
            f"""update {LEAD_REGISTRY} set merged_into = e.other_lead_id from {NEW_EVENTS} e
                where e.event_type = 'merged' and {LEAD_REGISTRY}.lead_id = e.lead_id""",
        ],
        checks=[
            ("every accepted record belongs to exactly one lead",
             f"select (select count(*) from {LEAD_MEMBERS}) = (select count(*) from {LEAD_RECORDS}) "
             f"and (select count(distinct record_id) from {LEAD_MEMBERS}) = (select count(*) from {LEAD_RECORDS})"),
            ("every lead has members and is published as reachable or quarantined as unreachable",
             f"select (select count(distinct lead_id) from {LEAD_MEMBERS}) = "
             f"(select count(*) from {LEADS_CLEAN}) + (select count(*) from {LEADS_UNREACHABLE})"),
            ("lead ids are unique", f"select count(distinct lead_id) = count(*) from {LEADS_CLEAN}"),
            ("every published lead can be contacted", f"select count(*) filter (where not {REACHABLE}) = 0 from {LEADS_CLEAN}"),
        ],
    )
