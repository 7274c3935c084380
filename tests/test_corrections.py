"""Corrections from events and manual edits: applied once, in precedence order whatever the arrival order,
kept by the nightly rebuild, in history, versions and the notifications outbox; crash-safe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.corrections.apply import events_dir_of, publish_corrections, record_events
from pipelines.lib.corrections.rules import load_correction_rules
from pipelines.lib.history.history import LeadHistory
from pipelines.lib.history.versions import Versions
from pipelines.lib.identity.library import library_of
from tests.conftest import run_library, use_home, write_csv

LEADFACTORY = str(Path(sys.executable).with_name("leadfactory"))


def person(name, mobile=None, email=None, company=None, city=None):
    return {"姓名": name, "手机": mobile, "邮箱": email, "公司": company, "城市": city}


PEOPLE = [
    person("张伟", "13812345601", "zw@qq.com", "北京字节跳动科技有限公司", "北京"),
    person("张伟", "138 1234 5601", None, "字节跳动", "北京"),
    person("李娜", "13900000002", None, "华为", "深圳"),
    person("王芳", "13700000003", "wf@126.com", "腾讯", "深圳"),
    person("赵敏", "13600000004", None, "阿里巴巴", "杭州"),
]


def event(event_id, type_, at, lead, **payload):
    return {"event_id": event_id, "type": type_, "occurred_at": at, "source": "app", "lead": lead, "payload": payload}


def write_events(home, name, events, raw_lines=()):
    folder = events_dir_of(home.root)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / name).open("a", encoding="utf-8") as out:
        for e in events:
            out.write(json.dumps(e, ensure_ascii=False) + "\n")
        for line in raw_lines:
            out.write(line + "\n")


def apply_events():
    from pipelines.runs import run_job

    result = run_job("correction_job")
    return next(e.materialization.metadata for e in result.get_asset_materialization_events())


def lead(home, mobile=None, lead_id=None, table="leads_clean"):
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        where = "list_contains(mobiles, ?)" if mobile else "lead_id = ?"
        row = conn.execute(f"select * from published.{table} where {where}", [mobile or lead_id]).fetchone()
        if row is None:
            return None
        names = [d[0] for d in conn.description]
        return dict(zip(names, row))


@pytest.fixture(scope="module")
def home(tmp_path_factory, module_monkeypatch):
    root = tmp_path_factory.mktemp("corrections")
    home = use_home(root, module_monkeypatch)
    write_csv(home.warehouse_dir / "people.csv", PEOPLE)
    run_library(home)
    return home


def test_events_apply_once_in_precedence_order_whatever_the_arrival_order(home):
    zhang = lead(home, "+8613812345601")
    li = lead(home, "+8613900000002")
    versions_before = len(Versions(home.versions_dir).list())
    write_events(home, "app.jsonl", [
        # the later change arrives first: it holds, the earlier one is superseded
        event("m-2", "mobile_changed", "2026-11-23T12:00:00+08:00", {"lead_id": zhang["lead_id"]},
              new_mobile="+86 139-1111-2222", verified=True),
        event("m-1", "mobile_changed", "2026-11-23T10:00:00+08:00", {"mobile": "13812345601"},
              new_mobile="13955556666", verified=True),
        event("m-2", "mobile_changed", "2026-11-23T12:00:00+08:00", {"lead_id": zhang["lead_id"]},
              new_mobile="13911112222", verified=True),                                     # the same event again
        event("u-1", "mobile_changed", "2026-11-23T13:00:00+08:00", {"mobile": "13900000002"},
              new_mobile="13977778888", verified=False),                                    # not verified
        event("j-1", "job_changed", "2026-11-23T09:00:00Z", {"mobile": "13900000002"}, company="小米科技", job_title="经理"),
        event("o-1", "opted_out", "2026-11-23T09:00:00Z", {"email": "WF@126.com"}),
        event("x-1", "owner_changed", "2026-11-23T09:00:00Z", {"mobile": "13000000000"}, owner="销售甲"),  # unknown lead
    ], raw_lines=['{"event_id": "broken", '])
    metadata = apply_events()
    assert metadata["events_read"].value == 8 and metadata["reconciles"].value
    outcomes = {k.split("/")[1]: v.value for k, v in metadata.items() if k.startswith("outcome/")}
    assert outcomes == {"applied": 3, "noop": 0, "superseded": 1, "skipped": 1, "duplicate": 1, "dead_letter": 2}
    zhang_now = lead(home, lead_id=zhang["lead_id"])
    assert zhang_now["mobile"] == "+8613911112222" and "+8613812345601" not in zhang_now["mobiles"]
    li_now = lead(home, lead_id=li["lead_id"])
    assert (li_now["company"], li_now["job_title"], li_now["mobile"]) == ("小米科技", "经理", "+8613900000002")
    assert lead(home, "+8613700000003")["do_not_contact"] is True
    dead = (events_dir_of(home.root) / "dead_letter" / "app.dead.jsonl").read_text(encoding="utf-8")
    assert "unknown lead" in dead and "malformed JSON" in dead
    # one new version; the old mobile stays in history; one notification per changed lead
    assert len(Versions(home.versions_dir).list()) == versions_before + 1
    story = LeadHistory(library_of(home.root).root).story(zhang["lead_id"])
    assert [(r["field"], r["old_value"], r["new_value"], r["cause_id"]) for r in story if r["field"] == "mobile"] == \
        [("mobile", "+8613812345601", "+8613911112222", "m-2")]
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        assert sorted(r[0] for r in conn.execute("select lead_id from notify.notification_outbox").fetchall()) == \
            sorted([zhang["lead_id"], li["lead_id"], lead(home, "+8613700000003")["lead_id"]])
    # the same file read again applies nothing
    metadata = apply_events()
    assert metadata["events_read"].value == 0 and metadata["leads_changed"].value == 0


def test_a_lead_whose_contacts_are_all_invalid_is_quarantined_and_the_nightly_rebuild_keeps_every_correction(home):
    zhao = lead(home, "+8613600000004")
    write_events(home, "crm.jsonl", [
        event("i-1", "contact_invalid", "2026-11-24T09:00:00+08:00", {"lead_id": zhao["lead_id"]},
              field="mobile", value="136 0000 0004")])
    assert apply_events()["leads_changed"].value == 1
    assert lead(home, lead_id=zhao["lead_id"]) is None
    quarantined = lead(home, lead_id=zhao["lead_id"], table="leads_unreachable")
    assert quarantined["mobile"] is None and "marked invalid" in quarantined["reason"]
    zhang = lead(home, "+8613911112222")
    run_library(home)  # the nightly rebuild from the records
    assert lead(home, lead_id=zhang["lead_id"])["mobile"] == "+8613911112222"
    assert lead(home, "+8613700000003")["do_not_contact"] is True
    assert lead(home, lead_id=zhao["lead_id"], table="leads_unreachable") is not None


def test_a_manual_edit_beats_a_later_event_and_an_invalid_value_is_refused(home):
    wang = lead(home, "+8613700000003")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home.root), "LEADFACTORY_HOME": str(home.root),
           "DAGSTER_HOME": str(home.dagster_home)}
    refused = subprocess.run([LEADFACTORY, "edit", wang["lead_id"], "mobile=12345", "--by", "小王", "--reason", "客户来电"],
                             capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2 and "not a mobile in the numbering plan" in refused.stderr
    done = subprocess.run([LEADFACTORY, "edit", wang["lead_id"], "company=腾讯音乐", "--by", "小王", "--reason", "客户来电"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and ": applied" in done.stdout, done.stdout + done.stderr[-2000:]
    write_events(home, "app.jsonl", [
        event("j-2", "job_changed", "2099-01-01T00:00:00Z", {"lead_id": wang["lead_id"]}, company="字节跳动")])
    metadata = apply_events()
    assert metadata["outcome/superseded"].value == 1
    assert lead(home, lead_id=wang["lead_id"])["company"] == "腾讯音乐"
    story = subprocess.run([LEADFACTORY, "history", wang["lead_id"]], capture_output=True, text=True, env=env, timeout=120)
    assert "人工修改 manual edit" in story.stdout and "小王" in story.stdout and "腾讯音乐" in story.stdout
    assert "客户来电" in story.stdout  # the reason given with the edit


def test_a_batch_recorded_but_not_published_before_a_crash_is_published_once_by_the_next_run(home):
    wang = lead(home, "+8613700000003")
    write_events(home, "app.jsonl", [
        event("w-1", "owner_changed", "2026-11-25T09:00:00Z", {"lead_id": wang["lead_id"]}, owner="销售乙")])
    library = library_of(home.root)
    with duckdb.connect(str(home.duckdb_path)) as conn:
        report = record_events(conn, library, events_dir_of(home.root), load_correction_rules())
    assert report.outcomes["applied"] == 1
    # the process died here: recorded in the library, not laid over the leads
    assert lead(home, lead_id=wang["lead_id"])["owner"] != "销售乙"
    metadata = apply_events()
    assert metadata["events_read"].value == 0 and metadata["leads_changed"].value == 1
    assert lead(home, lead_id=wang["lead_id"])["owner"] == "销售乙"
    with duckdb.connect(str(home.duckdb_path)) as conn:
        assert publish_corrections(conn, library)[0] == []  # nothing twice
    owners = [r for r in LeadHistory(library.root).story(wang["lead_id"]) if r["field"] == "owner"]
    assert len(owners) == 1


def test_the_sensor_asks_for_a_run_only_when_there_are_new_lines(home):
    import dagster as dg

    from pipelines.realtime.corrections.sensors import evaluate_events

    instance = dg.DagsterInstance.ephemeral()
    assert isinstance(evaluate_events(instance, None)[0], dg.SkipReason)
    write_events(home, "app.jsonl", [
        event("w-2", "owner_changed", "2026-11-26T09:00:00Z", {"mobile": "13700000003"}, owner="销售丙")])
    assert isinstance(evaluate_events(instance, None)[0], dg.RunRequest)
    apply_events()
    assert isinstance(evaluate_events(instance, None)[0], dg.SkipReason)


def test_a_rebuild_writes_history_and_notifies_the_leads_it_changed(home):
    li = lead(home, "+8613900000002")
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        outbox_before = conn.execute("select count(*) from notify.notification_outbox").fetchone()[0]
    # a new record of 李娜 with her mobile and an e-mail she did not have
    write_csv(home.inbox_dir / "more.csv", [person("李娜", "13900000002", "lina@163.com", "华为", "深圳"),
                                            person("孙悦", "13500000009", None, "京东", "北京")])
    run_library(home)
    story = LeadHistory(library_of(home.root).root).story(li["lead_id"])
    assert [(r["field"], r["old_value"], r["new_value"], r["cause"]) for r in story if r["field"] == "email"] == \
        [("email", None, "lina@163.com", "import")]
    assert any(r["field"] == "lead" and r["new_value"] == "created" for r in story)  # from the first run
    sun = lead(home, "+8613500000009")
    assert [(r["field"], r["new_value"]) for r in LeadHistory(library_of(home.root).root).story(sun["lead_id"])] == \
        [("lead", "created")]
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        notified = conn.execute("select lead_id, payload::varchar from notify.notification_outbox "
                                "order by created_at desc").fetchall()[: 1]
        assert conn.execute("select count(*) from notify.notification_outbox").fetchone()[0] == outbox_before + 1
    assert notified[0][0] == li["lead_id"] and "lina@163.com" in notified[0][1]  # a new lead is not a change


@pytest.mark.parametrize("point", ["corrections_recorded", "corrections_published"])
def test_kill_9_between_applying_and_publishing_gives_the_right_state_on_the_next_run_once(home, point):
    import os

    wang = lead(home, "+8613700000003")
    owner = f"销售-{point}"
    at = {"corrections_recorded": "2026-11-27T09:00:00Z", "corrections_published": "2026-11-27T10:00:00Z"}[point]
    write_events(home, "app.jsonl", [event(f"k-{point}", "owner_changed", at,
                                           {"lead_id": wang["lead_id"]}, owner=owner)])
    env = {**os.environ, "LEADFACTORY_KILL_AT": point}
    killed = subprocess.run([LEADFACTORY, "events", "apply"], capture_output=True, text=True, env=env, timeout=300)
    assert killed.returncode == -9, killed.stdout + killed.stderr[-2000:]  # SIGKILL, as kill -9
    env.pop("LEADFACTORY_KILL_AT")
    again = subprocess.run([LEADFACTORY, "events", "apply"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr[-2000:]
    assert "0 read" in again.stdout or "nothing new" in again.stdout  # the line is not read, or applied, twice
    assert lead(home, lead_id=wang["lead_id"])["owner"] == owner
    rows = [r for r in LeadHistory(library_of(home.root).root).story(wang["lead_id"]) if r["new_value"] == owner]
    assert len(rows) == 1
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        assert conn.execute("select count(*) from notify.notification_outbox where payload::varchar like ?",
                            [f"%{owner}%"]).fetchone()[0] == 1
    latest = Versions(home.versions_dir).read("leads_clean")
    assert owner in latest.column("owner").to_pylist()  # the published version has it too


def test_notify_send_delivers_the_outbox_to_an_endpoint_that_was_down_for_a_while(home):
    import os
    import socket
    import time

    import dagster as dg

    from pipelines.realtime.notify.sensors import evaluate_notifications
    from tests.test_notifications import SECRET, Receiver

    with socket.socket() as probe:  # a port nobody listens on yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "LEADFACTORY_WEBHOOK_URL": f"http://127.0.0.1:{port}/hooks/leads",
           "LEADFACTORY_WEBHOOK_SECRET": SECRET}
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        waiting = {r[0] for r in conn.execute("select notification_id from notify.notification_outbox").fetchall()}
    assert waiting
    down = subprocess.run([LEADFACTORY, "notify", "send"], capture_output=True, text=True, env=env, timeout=300)
    assert down.returncode == 0 and f"failed (will retry) {len(waiting)}" in down.stdout, down.stdout + down.stderr[-2000:]
    receiver = Receiver(port=port)
    try:
        time.sleep(5.5)  # the first retry is due 5 s after a failed attempt
        up = subprocess.run([LEADFACTORY, "notify", "send"], capture_output=True, text=True, env=env, timeout=300)
        assert up.returncode == 0 and f"delivered {len(waiting)}" in up.stdout, up.stdout + up.stderr[-2000:]
        assert set(receiver.accepted) == waiting and receiver.rejected_signatures == 0
    finally:
        receiver.server.shutdown()
    # the sender's sensor asks for the same job while an endpoint is configured, and not without one
    instance = dg.DagsterInstance.ephemeral()
    assert isinstance(evaluate_notifications(instance), dg.SkipReason)
    os.environ["LEADFACTORY_WEBHOOK_URL"], os.environ["LEADFACTORY_WEBHOOK_SECRET"] = env["LEADFACTORY_WEBHOOK_URL"], SECRET
    try:
        assert isinstance(evaluate_notifications(instance), dg.RunRequest)
    finally:
        del os.environ["LEADFACTORY_WEBHOOK_URL"], os.environ["LEADFACTORY_WEBHOOK_SECRET"]


def test_the_staged_history_has_the_history_tables_columns_in_their_order():
    """History rows are staged in DuckDB in the publication's transaction, then appended to the Delta table
    as they are: the two must not drift apart."""
    from pipelines.lib.corrections.apply import PENDING_HISTORY, ensure_correction_tables
    from pipelines.lib.history.history import HISTORY_SCHEMA

    with duckdb.connect() as conn:
        ensure_correction_tables(conn)
        assert [c[0] for c in conn.execute(f"describe {PENDING_HISTORY}").fetchall()] == HISTORY_SCHEMA.names
