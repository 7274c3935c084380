"""Publishing is all or nothing on a real DuckDB file: every table of a publication, or none."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.lib.publish.publish import PUBLICATIONS_TABLE, PublishError, publish_tables


@pytest.fixture
def conn(tmp_path):
    with duckdb.connect(str(tmp_path / "leadfactory.duckdb")) as connection:
        connection.execute("create table src as select i as id from range(5) t(i)")
        connection.execute("create schema published")
        connection.execute("create table published.history (id bigint)")
        yield connection


def _publish(conn, **kwargs):
    return publish_tables(
        conn,
        {"published.leads": "select * from src", "published.members": "select id, id % 2 as part from src"},
        appends={"published.history": "select max(id) from src"},
        **kwargs,
    )


def test_publish_replaces_every_table_and_logs_the_publication(conn):
    first = _publish(conn)
    conn.execute("insert into src values (99)")
    second = _publish(conn)
    assert (first.publication_id, second.publication_id) == (1, 2)
    assert second.row_counts == {"published.leads": 6, "published.members": 6}
    assert conn.execute("select list(id order by id) from published.history").fetchone()[0] == [4, 99]
    assert conn.execute(f"select count(*) from {PUBLICATIONS_TABLE}").fetchone()[0] == 4


def test_a_failing_query_leaves_every_previous_table(conn):
    _publish(conn)
    with pytest.raises(duckdb.Error):
        publish_tables(conn, {"published.leads": "select id + 100 as id from src",
                              "published.members": "select id, error('mid-build failure') from src"})
    assert conn.execute("select max(id) from published.leads").fetchone()[0] == 4  # the first table rolled back too
    assert [c[0] for c in conn.execute("describe published.members").fetchall()] == ["id", "part"]
    assert conn.execute(f"select count(distinct publication_id) from {PUBLICATIONS_TABLE}").fetchone()[0] == 1


def test_a_failed_check_refuses_the_whole_publication(conn):
    _publish(conn)
    conn.execute("delete from src where id > 1")
    with pytest.raises(PublishError, match="refused to publish: at least three leads"):
        _publish(conn, checks=[("at least three leads", "select count(*) >= 3 from published.leads")])
    assert conn.execute("select count(*) from published.leads").fetchone()[0] == 5
    assert conn.execute("select count(*) from published.history").fetchone()[0] == 1  # the append rolled back
