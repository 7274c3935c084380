"""The CRM's tables in a real PostgreSQL: every publication writes them atomically, and the database itself
enforces who reads what (manager, sales by owner, service with contacts masked) and that history is
append-only. Skipped only when no server answers on 127.0.0.1:5432 (.ci/run starts one)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.history.versions import Versions
from tests.conftest import run_library, use_home, write_csv

psycopg = pytest.importorskip("psycopg")

SERVER = "postgresql://postgres@127.0.0.1:5432/test"
LEADFACTORY = str(Path(sys.executable).with_name("leadfactory"))
E164 = re.compile(r"\+\d{8,15}")


def _server_up() -> bool:
    try:
        with psycopg.connect(SERVER, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


pytestmark = pytest.mark.skipif(not _server_up(), reason="no PostgreSQL server on 127.0.0.1:5432")


def person(name, mobile, email, owner, company="华为", city="深圳"):
    return {"姓名": name, "手机": mobile, "邮箱": email, "负责人": owner, "公司": company, "城市": city}


PEOPLE = [
    person("张伟", "13812345601", "zw@qq.com", "销售甲"),
    person("张伟", "138 1234 5601", None, "销售甲"),
    person("李娜", "13900000002", "ln@163.com", "销售乙"),
    person("王芳", "13700000003", "wf@126.com", "销售甲"),
    person("赵敏", "13600000004", None, "销售乙"),
]


def admin(sql: str, params=None) -> None:
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(sql, params)


def login(role: str, database: str):
    return psycopg.connect(f"postgresql://{role}@127.0.0.1:5432/{database}", autocommit=True)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LEADFACTORY, *args], capture_output=True, text=True, env=os.environ.copy())


@pytest.fixture(scope="module")
def crm(tmp_path_factory, module_monkeypatch):
    suffix = uuid.uuid4().hex[:8]
    pipeline, database = f"lf_pipeline_{suffix}", f"lf_crm_{suffix}"
    manager, sales, service = f"lf_manager_{suffix}", f"lf_sales_{suffix}", f"lf_service_{suffix}"
    admin(f"create role {pipeline} login createrole")
    admin(f"create database {database} owner {pipeline}")
    url = f"postgresql://{pipeline}@127.0.0.1:5432/{database}"
    module_monkeypatch.setenv("LEADFACTORY_POSTGRES_URL", url)
    home = use_home(tmp_path_factory.mktemp("crm"), module_monkeypatch)
    try:
        setup = cli("roles", "setup")
        assert setup.returncode == 0, setup.stderr
        write_csv(home.warehouse_dir / "people.csv", PEOPLE)
        run_library(home)
        added = cli("roles", "add-sales", sales, "--owner", "销售甲")
        assert added.returncode == 0, added.stderr
        admin(f"create role {manager} login in role lead_manager")
        admin(f"create role {service} login in role lead_service")
        yield {"home": home, "url": url, "database": database, "pipeline": pipeline, "manager": manager,
               "sales": sales, "service": service}
    finally:
        admin(f"drop database if exists {database} with (force)")
        for role in (manager, sales, service, pipeline):
            admin(f"drop role if exists {role}")


def duck(home, sql: str, params=None):
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def test_every_publication_writes_the_crm_tables_with_keys_and_indexes(crm):
    home = crm["home"]
    with login(crm["pipeline"], crm["database"]) as pg:
        for table in ("leads_clean", "leads_unreachable", "lead_members", "lead_review_queue"):
            ids_pg = sorted(r[0] for r in pg.execute(f"select * from crm.{table}").fetchall())
            ids_duck = sorted(r[0] for r in duck(home, f"select * from published.{table}"))
            assert ids_pg == ids_duck, table
        indexed = {r[0] for r in pg.execute(
            "select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey) "
            "where i.indrelid = 'crm.leads_clean'::regclass").fetchall()}
        assert {"lead_id", "mobile", "email"} <= indexed
        primary = pg.execute("select count(*) from pg_index where indrelid = 'crm.leads_clean'::regclass "
                             "and indisprimary").fetchone()[0]
        assert primary == 1
        newest = Versions(home.versions_dir).list()[-1].version
        assert pg.execute("select max(version) from crm.versions").fetchone()[0] == newest
        history = pg.execute("select count(*) from crm.lead_history").fetchone()[0]
    from deltalake import DeltaTable

    assert history == DeltaTable(str(home.root / "library" / "lead_history")).to_pyarrow_table().num_rows > 0


def test_the_manager_reads_everything_sales_only_their_owners_leads_and_the_service_role_sees_contacts_masked(crm):
    home = crm["home"]
    everyone = duck(home, "select count(*) from published.leads_clean")[0][0]
    mine = duck(home, "select count(*) from published.leads_clean where owner = '销售甲'")[0][0]
    assert 0 < mine < everyone
    with login(crm["manager"], crm["database"]) as pg:
        assert pg.execute("select count(*) from crm.leads_clean").fetchone()[0] == everyone
    with login(crm["sales"], crm["database"]) as pg:
        rows = pg.execute("select lead_id, owner from crm.leads_clean").fetchall()
        assert len(rows) == mine and {owner for _, owner in rows} == {"销售甲"}
        members = {r[0] for r in pg.execute("select lead_id from crm.lead_members").fetchall()}
        assert members == {lead for lead, _ in rows}  # the members of their leads only
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute("select * from crm_masked.leads_clean")
    with login(crm["service"], crm["database"]) as pg:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute("select * from crm.leads_clean")
    with login(crm["service"], crm["database"]) as pg:
        masked = pg.execute("select mobile, email, mobiles from crm_masked.leads_clean").fetchall()
        assert len(masked) == everyone
        shown = [value for mobile, email, mobiles in masked for value in (mobile, email, *(mobiles or [])) if value]
        assert shown and not any(E164.fullmatch(v) for v in shown)
        assert "138****5601" in shown and "z***@qq.com" in shown
        assert not any("13812345601" in v or v == "zw@qq.com" for v in shown)


def test_nobody_but_the_pipeline_writes_and_nobody_changes_history(crm):
    with login(crm["manager"], crm["database"]) as pg:
        for statement in ("delete from crm.leads_clean", "update crm.leads_clean set owner = 'x'",
                          "insert into crm.lead_history (lead_id) values ('x')", "delete from crm.lead_history"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pg.execute(statement)
    with login(crm["pipeline"], crm["database"]) as pg:  # the tables' owner itself
        before = pg.execute("select count(*) from crm.lead_history").fetchone()[0]
        for statement in ("update crm.lead_history set new_value = 'x'", "delete from crm.lead_history",
                          "truncate crm.lead_history"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                pg.execute(statement)
        assert pg.execute("select count(*) from crm.lead_history").fetchone()[0] == before


def test_a_reader_sees_one_whole_version_or_the_next_never_a_mix(crm):
    """A manager reads in a loop while an import and a correction are published: every read's tables
    match the row counts of the version it names."""
    home = crm["home"]
    seen, errors, stop = [], [], threading.Event()

    def read() -> None:
        with login(crm["manager"], crm["database"]) as pg:
            while not stop.is_set():
                try:
                    seen.append(pg.execute(
                        "select (select max(version) from crm.versions), "
                        "(select row_counts from crm.versions order by version desc limit 1), "
                        "(select count(*) from crm.leads_clean), (select count(*) from crm.leads_unreachable), "
                        "(select count(*) from crm.lead_members)").fetchone())
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        more = [person(f"新客{i}", f"1350000{i:04d}", None, "销售乙", company=f"公司{i}") for i in range(40)]
        write_csv(home.inbox_dir / "more.csv", more)
        run_library(home, [home.inbox_dir / "more.csv"])
        lead_id = duck(home, "select lead_id from published.leads_clean where mobile = '+8613700000003'")[0][0]
        from tests.test_corrections import apply_events, event, write_events

        write_events(home, "crm.jsonl", [event("crm-1", "contact_invalid", "2026-12-07T10:00:00+08:00",
                                               {"lead_id": lead_id}, field="mobile", value="13700000003"),
                                         event("crm-2", "contact_invalid", "2026-12-07T10:00:01+08:00",
                                               {"lead_id": lead_id}, field="email", value="wf@126.com")])
        apply_events()
    finally:
        stop.set()
        reader.join(30)
    assert not errors, errors[:3]
    versions = {version for version, *_ in seen}
    assert len(versions) >= 2, versions
    for version, counts, clean, unreachable, members in seen:
        assert (clean, unreachable, members) == (counts["leads_clean"], counts["leads_unreachable"],
                                                 counts["lead_members"]), version
    with login(crm["pipeline"], crm["database"]) as pg:  # the correction went out as changes only
        reason = pg.execute("select reason from crm.leads_unreachable where lead_id = %s", [lead_id]).fetchone()
        assert reason is not None
        assert pg.execute("select count(*) from crm.leads_clean where lead_id = %s", [lead_id]).fetchone()[0] == 0
        causes = {r[0] for r in pg.execute("select cause from crm.lead_history where lead_id = %s", [lead_id])}
        assert "event" in causes


def test_tables_made_by_roles_setup_take_the_first_version_whole_and_stay_protected(crm):
    """`roles setup` on a home that published makes the tables empty; the first publication loads them
    (row-level security lifted for the load) and leaves every table protected, forced, before it commits."""
    from pipelines.lib.identity.library import library_of
    from pipelines.lib.publish.postgres import CRM_TABLES, HISTORY, setup_roles, sync_crm

    home, database = crm["home"], f"{crm['database']}_setup"
    admin(f"create database {database} owner {crm['pipeline']}")
    url = f"postgresql://{crm['pipeline']}@127.0.0.1:5432/{database}"
    try:
        with duckdb.connect(str(home.duckdb_path)) as conn:
            setup_roles(url, conn)
            with login(crm["pipeline"], database) as pg:
                assert pg.execute("select count(*) from crm.leads_clean").fetchone()[0] == 0
            newest = Versions(home.versions_dir).list()[-1]
            report = sync_crm(conn, home.versions_dir, library_of(home.root).root, newest, url=url)
            clean = conn.execute("select count(*) from published.leads_clean").fetchone()[0]
        assert report.full and report.rows["leads_clean"] == clean
        with login(crm["pipeline"], database) as pg:
            flags = pg.execute("select relname, relrowsecurity, relforcerowsecurity from pg_class "
                               "where relnamespace = 'crm'::regnamespace and relkind = 'r'").fetchall()
            protected = {name for name, on, forced in flags if on and forced}
            assert {*CRM_TABLES, HISTORY} <= protected, flags
            assert pg.execute("select count(*) from crm.leads_clean").fetchone()[0] == clean
    finally:
        admin(f"drop database if exists {database} with (force)")
