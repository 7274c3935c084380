"""Publish clean lead tables atomically: readers see the old table or the new one, never half of one."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb

log = logging.getLogger(__name__)

PUBLISHED_SCHEMA = "published"
PUBLICATIONS_TABLE = f"{PUBLISHED_SCHEMA}.publications"
LEADS_CLEAN = f"{PUBLISHED_SCHEMA}.leads_clean"
LEAD_RECORDS = "marts.lead_records"

# What the CRM sees, in this order. Lists hold every valid value; the scalar is the first.
LEADS_CLEAN_COLUMNS = (
    "record_id", "name", "name_pinyin", "mobile", "mobiles", "landline", "landlines", "email", "emails",
    "wechat", "qq", "douyin", "kuaishou", "company", "company_core", "job_title", "job_title_canonical",
    "province", "city", "district", "address", "source", "owner", "updated_at",
    "source_system", "source_file", "source_row", "ingested_at", "extra_attributes",
)


class PublishError(RuntimeError):
    """Publishing was refused; the previous publication is still in place."""


@dataclass(frozen=True)
class Publication:
    publication_id: int
    table: str
    row_count: int


def publish_table(
    conn: duckdb.DuckDBPyConnection, target: str, select_sql: str, expected_rows: int | None = None
) -> Publication:
    """Replace ``target`` with the result of ``select_sql`` in one transaction and log the publication.

    If the query fails, or the row count differs from ``expected_rows``, the transaction is rolled
    back and the previous table stays exactly as it was.
    """
    conn.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
    conn.execute(
        f"create table if not exists {PUBLICATIONS_TABLE} ("
        "publication_id bigint, table_name varchar, row_count bigint, published_at timestamp)"
    )
    conn.execute("begin transaction")
    try:
        conn.execute(f"create or replace table {target} as {select_sql}")
        row_count = conn.execute(f"select count(*) from {target}").fetchone()[0]
        if expected_rows is not None and row_count != expected_rows:
            raise PublishError(f"{target}: {row_count} rows built where {expected_rows} were expected")
        publication_id = conn.execute(
            f"select coalesce(max(publication_id), 0) + 1 from {PUBLICATIONS_TABLE}"
        ).fetchone()[0]
        conn.execute(
            f"insert into {PUBLICATIONS_TABLE} values (?, ?, ?, current_timestamp)",
            [publication_id, target, row_count],
        )
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        log.error("publication of %s failed; the previous publication stays", target)
        raise
    log.info("published %s: %d rows (publication %d)", target, row_count, publication_id)
    return Publication(publication_id, target, row_count)


def publish_leads_clean(conn: duckdb.DuckDBPyConnection) -> Publication:
    """One row per accepted standardised record (golden leads replace this with matching)."""
    expected = conn.execute(f"select count(*) from {LEAD_RECORDS}").fetchone()[0]
    columns = ", ".join(LEADS_CLEAN_COLUMNS)
    return publish_table(conn, LEADS_CLEAN, f"select {columns} from {LEAD_RECORDS} order by record_id", expected)
