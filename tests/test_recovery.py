"""Backup after each publication, and recovery of a home whose DuckDB file was deleted: the next run
publishes the same leads with the same ids, the decisions and corrections included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb

from pipelines.lib.corrections.apply import events_dir_of
from pipelines.lib.matching.leads import record_decision
from tests.conftest import run_library, use_home, write_csv

LEADFACTORY = str(Path(sys.executable).with_name("leadfactory"))


def person(name, mobile=None, email=None, company=None, city=None):
    return {"姓名": name, "手机": mobile, "邮箱": email, "公司": company, "城市": city}


PEOPLE = [
    person("张伟", "13812345601", "zw@qq.com", "北京字节跳动科技有限公司", "北京"),
    person("张伟", "138 1234 5601", None, "字节跳动", "北京"),
    person("李娜", "13900000002", None, None, "深圳"),
    person("李娜", "13600000006", "lina2@163.com", None, "深圳"),   # nothing shared with the other 李娜
    person("王芳", "13700000003", "wf@126.com", "腾讯", "深圳"),
]


def assert_append_only(home):
    """Every commit to every table of the system of record (the library, the versions' log) only appended
    rows: no update, delete, merge or overwrite ever ran on them."""
    from deltalake import DeltaTable

    tables = [p for p in (home.root / "library").iterdir() if p.is_dir()] + [home.versions_dir / "log"]
    assert {"lead_history", "corrections", "event_log", "records", "reversions"} <= {p.name for p in tables} or \
        {"lead_history", "corrections", "event_log", "records", "decisions"} <= {p.name for p in tables}
    for table in tables:
        commits = {(c["operation"], c.get("operationParameters", {}).get("mode")) for c in DeltaTable(str(table)).history()}
        assert commits == {("WRITE", "Append")}, f"{table.name}: {commits}"


def published(home):
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        return sorted(conn.execute("select lead_id, name, mobile, mobiles, company, owner, record_count "
                                   "from published.leads_clean").fetchall())


def test_a_home_that_lost_its_duckdb_file_recovers_the_same_leads_with_the_same_ids(tmp_path, monkeypatch):
    home = use_home(tmp_path / "home", monkeypatch)
    backup = tmp_path / "other_disk" / "backup"
    monkeypatch.setenv("LEADFACTORY_BACKUP", str(backup))
    write_csv(home.warehouse_dir / "people.csv", PEOPLE)
    run_library(home)
    # a person decides the two 李娜 are one; an event gives 王芳 an owner
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        li = [r[0] for r in conn.execute("select lead_id from published.leads_clean where name = '李娜' order by 1").fetchall()]
    assert len(li) == 2
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LEADFACTORY_HOME": str(home.root),
           "DAGSTER_HOME": str(home.dagster_home), "LEADFACTORY_BACKUP": str(backup)}
    decided = subprocess.run([LEADFACTORY, "decide", li[0], li[1], "same", "--by", "小王"], capture_output=True,
                             text=True, env=env, timeout=120)
    assert decided.returncode == 0, decided.stderr[-2000:]
    run_library(home)
    events = events_dir_of(home.root)
    events.mkdir(parents=True, exist_ok=True)
    (events / "crm.jsonl").write_text(json.dumps({
        "event_id": "o-1", "type": "owner_changed", "occurred_at": "2026-11-23T10:00:00+08:00", "source": "crm",
        "lead": {"mobile": "13700000003"}, "payload": {"owner": "销售甲"}}) + "\n", encoding="utf-8")
    applied = subprocess.run([LEADFACTORY, "events", "apply"], capture_output=True, text=True, env=env, timeout=300)
    assert applied.returncode == 0 and "1 applied" in applied.stdout, applied.stdout + applied.stderr[-2000:]
    before = published(home)
    assert len([r for r in before if r[1] == "李娜"]) == 1 and any(r[5] == "销售甲" for r in before)

    verified = subprocess.run([LEADFACTORY, "backup", "--verify"], capture_output=True, text=True, env=env, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    home.duckdb_path.unlink()
    recovered = subprocess.run([LEADFACTORY, "recover", "--from", str(backup)], capture_output=True, text=True,
                               env=env, timeout=300)
    assert recovered.returncode == 0, recovered.stderr[-2000:]
    assert "1 decisions" in recovered.stdout and "1 corrections" in recovered.stdout
    run_library(home)
    assert published(home) == before
    assert_append_only(home)
    # recovery refuses a home that still has its DuckDB file
    again = subprocess.run([LEADFACTORY, "recover", "--from", str(backup)], capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 2 and "exists" in again.stderr

    # a damaged backup file is found
    damaged = next((backup / "library" / "records").glob("*.parquet"))
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
    verified = subprocess.run([LEADFACTORY, "backup", "--verify"], capture_output=True, text=True, env=env, timeout=120)
    assert verified.returncode == 1 and "differs from the home" in verified.stdout


def test_a_restore_republishes_an_old_version_and_later_runs_keep_it(tmp_path, monkeypatch):
    from pipelines.lib.history.history import LeadHistory
    from pipelines.lib.history.versions import Versions
    from pipelines.lib.identity.library import library_of

    home = use_home(tmp_path / "home", monkeypatch)
    monkeypatch.setenv("LEADFACTORY_BACKUP", str(tmp_path / "backup"))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LEADFACTORY_HOME": str(home.root),
           "DAGSTER_HOME": str(home.dagster_home), "LEADFACTORY_BACKUP": str(tmp_path / "backup")}
    write_csv(home.warehouse_dir / "people.csv", PEOPLE)
    run_library(home)
    version_1 = published(home)
    write_csv(home.inbox_dir / "more.csv", [person("孙悦", "13500000009", None, "京东", "北京"),
                                            person("张伟", "13812345601", "zhangwei@163.com", "字节跳动", "北京")])
    run_library(home)
    events = events_dir_of(home.root)
    events.mkdir(parents=True, exist_ok=True)

    def owner_event(event_id, owner, at):
        with (events / "crm.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps({"event_id": event_id, "type": "owner_changed", "occurred_at": at, "source": "crm",
                                  "lead": {"mobile": "13700000003"}, "payload": {"owner": owner}}) + "\n")
        done = subprocess.run([LEADFACTORY, "events", "apply"], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0 and "1 applied" in done.stdout, done.stdout + done.stderr[-2000:]

    owner_event("o-1", "销售甲", "2026-11-23T10:00:00+08:00")
    assert published(home) != version_1 and len(Versions(home.versions_dir).list()) == 3

    restored = subprocess.run([LEADFACTORY, "restore", "1", "--by", "小王"], capture_output=True, text=True, env=env,
                              timeout=300)
    assert restored.returncode == 0, restored.stderr[-2000:]
    assert "republished as version 4" in restored.stdout and "1 imports, 1 corrections" in restored.stdout
    assert published(home) == version_1
    wang = next(r[0] for r in version_1 if r[1] == "王芳")
    owner_rows = [r for r in LeadHistory(library_of(home.root).root).story(wang) if r["field"] == "owner"]
    assert [(r["old_value"], r["new_value"], r["cause"]) for r in owner_rows][0] == ("销售甲", None, "restore")
    # the restore holds through a full run; what arrives after it is applied
    run_library(home)
    assert published(home) == version_1
    owner_event("o-2", "销售乙", "2026-11-24T10:00:00+08:00")
    assert [r[5] for r in published(home) if r[1] == "王芳"] == ["销售乙"]
    assert_append_only(home)
    assert subprocess.run([LEADFACTORY, "restore", "99", "--by", "小王"], capture_output=True, text=True,
                          env=env, timeout=120).returncode == 2
