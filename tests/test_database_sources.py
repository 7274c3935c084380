"""Database sources (kind: database) against the real PostgreSQL and MariaDB servers on this machine, through
the nightly job: rows arrive like a file's, later runs read only rows changed since the mark, a snapshot's
vanished rows are retired, an append source only adds, and a missing variable or an unreachable server is
reported with the source and the variable, never the password."""

from __future__ import annotations

import logging
import textwrap
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from pipelines.lib.identity.library import library_of
from pipelines.lib.sources.field_mapping import ConfigError
from pipelines.lib.sources.sources import SOURCES_ENV, load_sources
from tests.conftest import run_nightly_job, use_home

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mariadb://root:@127.0.0.1:3306/test"
PEOPLE = [  # (id, name, mobile, company, email)
    (1, "张伟", "13812345601", "字节跳动", "zhangwei@example.com"),
    (2, "李娜", "13900000002", "华为", "lina@example.com"),
    (3, "王芳", "13700000003", "腾讯", "wangfang@example.com"),
    (4, "刘洋", "13600000004", "阿里巴巴", "liuyang@example.com"),
    (5, "陈静", "13500000005", "美团", "chenjing@example.com"),
    (6, "杨磊", "13400000006", "京东", "yanglei@example.com"),
]


# ---------------------------------------------------------------------------------------------- servers


@pytest.fixture
def pg_table():
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect(PG_URL, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {exc}")
    table = f"lf_leads_{uuid.uuid4().hex[:10]}"
    conn.execute(f"""create table {table} (线索ID integer primary key, 姓名 text, 手机 text, 公司 text, 邮箱 text,
                                           备注 text, updated_at timestamptz)""")
    try:
        yield conn, table
    finally:
        conn.execute(f"drop table if exists {table}")
        conn.close()


@pytest.fixture
def mariadb_table():
    pymysql = pytest.importorskip("pymysql")
    try:
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database="test",
                               charset="utf8mb4", connect_timeout=3, autocommit=True)
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MariaDB at 127.0.0.1:3306 is not reachable: {exc}")
    table = f"lf_leads_{uuid.uuid4().hex[:10]}"
    with conn.cursor() as cursor:
        cursor.execute(f"""create table {table} (id int primary key, name varchar(50), mobile varchar(20),
                           company varchar(50), email varchar(80), note varchar(50), updated_at datetime(6))
                           character set utf8mb4""")
    try:
        yield conn, table
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"drop table if exists {table}")
        conn.close()


def pg_exec(conn, sql: str, rows: list[tuple] | None = None) -> None:
    with conn.cursor() as cursor:
        if rows:
            cursor.executemany(sql, rows)
        else:
            cursor.execute(sql)


def my_exec(conn, sql: str, rows: list[tuple] | None = None) -> None:
    with conn.cursor() as cursor:
        if rows:
            cursor.executemany(sql, rows)
        else:
            cursor.execute(sql)


# ---------------------------------------------------------------------------------------------- product


def declare(tmp_path: Path, monkeypatch, source: str) -> None:
    """A sources file with the inbox and the given database source (YAML text of one entry)."""
    config = tmp_path / "sources.yaml"
    config.write_text("version: 1\nsources:\n  - {name: inbox, kind: folder, path: inbox, mode: append, priority: 2}\n"
                      + textwrap.indent(textwrap.dedent(source), "  "), encoding="utf-8")
    monkeypatch.setenv(SOURCES_ENV, str(config))


def import_metadata(result: dg.ExecuteInProcessResult, source: str) -> dict:
    """What the run's import says about the database source's read."""
    (event,) = [e for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey(["raw", "library_records"])]
    files = event.materialization.metadata["files"].value
    (read,) = [f for f in files if f["file"] == f"db:{source}"]
    return read


def library_rows(home, sql: str) -> list[tuple]:
    with duckdb.connect() as conn:
        library = library_of(home.root)
        library.register(conn)
        return conn.execute(sql).fetchall()


def published(home, sql: str) -> list[tuple]:
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


# ---------------------------------------------------------------------------------------------- tests


def test_postgres_snapshot_source_reads_only_changed_rows_and_retires_vanished_ones(pg_table, tmp_path, monkeypatch):
    conn, table = pg_table
    home = use_home(tmp_path / "home", monkeypatch)
    monkeypatch.setenv("CRM_DB_URL", PG_URL)
    # '%' in the query is the user's: it must reach the server as written
    declare(tmp_path, monkeypatch, f"""
        - name: crm
          kind: database
          url_env: CRM_DB_URL
          query: select * from {table} where coalesce(备注, '') not like '%测试%'
          updated_at: updated_at
          key: 线索ID
          mode: snapshot
          priority: 1
    """)
    # two rows share the newest timestamp: the mark sits on both
    pg_exec(conn, f"insert into {table} values (%s, %s, %s, %s, %s, null, %s)",
            [(*p, f"2026-11-0{min(p[0], 5)} 10:00:00+08") for p in PEOPLE])
    pg_exec(conn, f"insert into {table} values (99, '测试', '13300000099', '测试公司', null, '测试数据', "
                  f"'2026-11-01 10:00:00+08')")

    first = run_nightly_job()
    read = import_metadata(first, "crm")
    assert read["status"] == "imported" and read["rows_read"] == 6 and read["records_new"] == 6, read
    assert published(home, "select count(*) from published.lead_members where source_system = 'crm'") == [(6,)]
    (mark,) = library_rows(home, "select watermark from lib_imports where source_system = 'crm'")
    assert mark[0].startswith("2026-11-05 02:00:00")  # the largest updated_at read (the server's UTC)

    # two rows changed, two new, one deleted; the other rows keep their timestamps
    pg_exec(conn, f"update {table} set 公司 = '拼多多', updated_at = '2026-11-10 09:00:00+08' where 线索ID in (2, 3)")
    pg_exec(conn, f"insert into {table} values (%s, %s, %s, %s, %s, null, '2026-11-10 09:30:00+08')",
            [(7, "赵敏", "13200000007", "小米", "zhaomin@example.com"), (8, "周杰", "13100000008", "网易", None)])
    pg_exec(conn, f"delete from {table} where 线索ID = 4")

    second = run_nightly_job()
    read = import_metadata(second, "crm")
    assert read["rows_read"] == 4, read  # only the changed and new rows were read
    assert (read["records_new"], read["records_updated"], read["records_retired"]) == (2, 2, 1)
    assert published(home, "select count(*) from published.lead_members where source_system = 'crm'") == [(7,)]
    companies = dict(library_rows(home, "select name, company from lib_current_records where source_system = 'crm'"))
    assert companies["李娜"] == "拼多多" and companies["王芳"] == "拼多多" and "刘洋" not in companies

    # nothing changed: the rows at the mark are recognised as read, nothing is read again
    third = run_nightly_job()
    read = import_metadata(third, "crm")
    assert read["status"] == "unchanged" and read["rows_read"] == 0, read

    # a row committed late with exactly the mark's timestamp is still read (>= at the mark), and only it
    pg_exec(conn, f"insert into {table} values (9, '吴昊', '13000000009', '百度', null, null, '2026-11-10 09:30:00+08')")
    fourth = run_nightly_job()
    read = import_metadata(fourth, "crm")
    assert read["rows_read"] == 1 and read["records_new"] == 1, read
    assert "吴昊" in dict(library_rows(home, "select name, 1 from lib_current_records where source_system = 'crm'"))


def test_mariadb_append_source_only_adds_and_gets_a_receipt(mariadb_table, tmp_path, monkeypatch):
    conn, table = mariadb_table
    home = use_home(tmp_path / "home", monkeypatch)
    monkeypatch.setenv("LEADS_DB", MARIADB_URL)
    declare(tmp_path, monkeypatch, f"""
        - name: webform
          kind: database
          url_env: LEADS_DB
          query: select name, mobile, company, email, updated_at from {table} where note is null or note not like '%junk%'
          updated_at: updated_at
          mode: append
          priority: 3
          batch_rows: 100
    """)
    my_exec(conn, f"insert into {table} values (%s, %s, %s, %s, %s, null, %s)",
            [(*p, f"2026-11-0{p[0]} 10:00:00.250000") for p in PEOPLE[:4]])

    first = run_nightly_job()
    read = import_metadata(first, "webform")
    assert read["status"] == "imported" and read["rows_read"] == 4 and read["records_new"] == 4
    kept = home.root / read["kept_as"]
    assert kept.is_file() and pl.read_parquet(kept).height == 4  # the rows as read, as an inbox file is kept
    receipts = list(home.outbox_dir.glob("*webform*_回执.xlsx"))
    assert len(receipts) == 1
    summary = dict(pl.read_excel(receipts[0], sheet_name="汇总 Summary", has_header=False).rows())
    assert summary["读取行数 (rows read)"] == "4" and summary["核对 (reconciles: read = new + merged + review + rejected)"] == "是 (yes)"

    # one row corrected (a newer updated_at), one new, one deleted at the source
    my_exec(conn, f"update {table} set mobile = '13900000022', updated_at = '2026-11-12 08:00:00' where id = 2")
    my_exec(conn, f"insert into {table} values (5, '陈静', '13500000005', '美团', null, null, '2026-11-12 09:00:00')")
    my_exec(conn, f"delete from {table} where id = 1")
    second = run_nightly_job()
    read = import_metadata(second, "webform")
    assert read["rows_read"] == 2, read
    assert (read["records_new"], read["records_retired"]) == (2, 0)  # append: nothing is retired
    names = [r[0] for r in library_rows(home, "select name from lib_current_records where source_system = 'webform'")]
    assert sorted(names) == sorted(["张伟", "李娜", "李娜", "王芳", "刘洋", "陈静"])
    (mark,) = library_rows(home, "select watermark from lib_imports where source_system = 'webform' "
                                 "order by import_id desc limit 1")
    assert mark[0] == "2026-11-12 09:00:00"


def test_a_missing_variable_or_unreachable_server_names_the_source_and_variable_never_the_password(
        tmp_path, monkeypatch, caplog):
    home = use_home(tmp_path / "home", monkeypatch)
    monkeypatch.delenv("CRM_DB_URL", raising=False)
    declare(tmp_path, monkeypatch, """
        - {name: crm, kind: database, url_env: CRM_DB_URL, query: select * from leads, mode: append, priority: 1}
    """)
    result = run_nightly_job()
    read = import_metadata(result, "crm")
    assert read["status"] == "failed"
    assert "CRM_DB_URL" in read["reason"] and "crm" in read["reason"] and "未设置" in read["reason"]

    secret = "s3cr3t-Pa55"
    monkeypatch.setenv("CRM_DB_URL", f"postgresql://leadreader:{secret}@127.0.0.1:1/crm")  # nothing listens on 1
    with caplog.at_level(logging.DEBUG):
        result = run_nightly_job()
    read = import_metadata(result, "crm")
    assert read["status"] == "failed" and "CRM_DB_URL" in read["reason"] and "crm" in read["reason"], read
    logged = "\n".join(r.getMessage() for r in caplog.records)
    events = "\n".join(str(e.message) for e in result.all_events if e.message)
    assert secret not in read["reason"] and secret not in logged and secret not in events
    # nothing was committed for the source, and its mark did not move
    assert library_rows(home, "select count(*) from lib_records where source_system = 'crm'") == [(0,)]


def test_database_source_config_errors_name_the_source_and_the_field(tmp_path):
    def check(entry: str, field: str) -> None:
        path = tmp_path / f"{uuid.uuid4().hex}.yaml"
        path.write_text("version: 1\nsources:\n" + textwrap.indent(textwrap.dedent(entry), "  "), encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_sources(path)
        message = str(caught.value)
        assert "sources.crm" in message and field in message, message

    base = "- {name: crm, kind: database, mode: append, priority: 1, "
    check(base + "url_env: 'postgresql://u:pw@h/db', query: select 1}", "url_env")
    check(base + "query: select * from leads}", "url_env")
    check(base + "url_env: CRM_DB_URL, query: 'delete from leads'}", "query")
    check(base + "url_env: CRM_DB_URL, query: 'select 1; drop table leads'}", "query")
    check(base + "url_env: CRM_DB_URL, query: select 1, batch_rows: 5}", "batch_rows")
    check("- {name: crm, kind: database, mode: snapshot, priority: 1, url_env: CRM_DB_URL, query: select 1, "
          "updated_at: updated_at}", "key")
    check("- {name: crm, kind: folder, mode: append, priority: 1, url_env: CRM_DB_URL}", "url_env")
    # the URL never appears in the error that refuses it
    path = tmp_path / "url.yaml"
    path.write_text("version: 1\nsources:\n  " + base + "url_env: 'postgresql://u:pw@h/db', query: select 1}\n")
    with pytest.raises(ConfigError) as caught:
        load_sources(path)
    assert "pw@" not in str(caught.value)
