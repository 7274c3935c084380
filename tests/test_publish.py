"""Publishing is all or nothing on a real DuckDB file."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.lib.publish import PUBLICATIONS_TABLE, PublishError, publish_table


@pytest.fixture
def conn(tmp_path):
    with duckdb.connect(str(tmp_path / "leadfactory.duckdb")) as connection:
        connection.execute("create table src as select i as id from range(5) t(i)")
        yield connection


def test_publish_replaces_the_table_and_logs_the_publication(conn):
    first = publish_table(conn, "published.leads", "select * from src")
    conn.execute("insert into src values (99)")
    second = publish_table(conn, "published.leads", "select * from src")
    assert (first.publication_id, first.row_count, second.publication_id, second.row_count) == (1, 5, 2, 6)
    assert conn.execute(f"select count(*) from {PUBLICATIONS_TABLE}").fetchone()[0] == 2


def test_a_failing_query_leaves_the_previous_table(conn):
    publish_table(conn, "published.leads", "select * from src")
    with pytest.raises(duckdb.Error):
        publish_table(conn, "published.leads", "select id, 1 / 0 :: integer as boom, error('mid-build failure') from src")
    assert conn.execute("select count(*) from published.leads").fetchone()[0] == 5
    assert [c[0] for c in conn.execute("describe published.leads").fetchall()] == ["id"]
    assert conn.execute(f"select count(*) from {PUBLICATIONS_TABLE}").fetchone()[0] == 1


def test_a_row_count_that_does_not_reconcile_is_refused(conn):
    publish_table(conn, "published.leads", "select * from src")
    with pytest.raises(PublishError, match="4 rows built where 5 were expected"):
        publish_table(conn, "published.leads", "select * from src where id > 0", expected_rows=5)
    assert conn.execute("select count(*) from published.leads").fetchone()[0] == 5
