"""Stable lead ids across runs, merges and splits recorded as events, and human decisions that stick."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.lib.matching.leads import record_decision
from tests.conftest import leads_of, run_library, use_home, write_csv

P = "warehouse/people.csv#"


def row(i: int) -> str:
    """The i-th person of BASE as lineage names it: Excel's row number, the header being row 1."""
    return f"{P}{i + 1}"


def person(name, mobile=None, email=None, company=None, city=None):
    return {"姓名": name, "手机": mobile, "邮箱": email, "公司": company, "城市": city}


BASE = [
    person("张伟", "13812345601", "zw@qq.com", "北京字节跳动科技有限公司", "北京"),  # 1
    person("张伟", "138 1234 5601", None, "字节跳动", "北京"),  # 2: same person
    person("李娜", "13900000002", None, None, "深圳"),  # 3
    person("李娜", "13600000006", "lina2@163.com", None, "深圳"),  # 4: same name, nothing shared with 3
    person("王芳", "13700000003", "wf@126.com", "腾讯", "深圳"),  # 5
    person("王芳", "13511112222", "other@126.com", "华为", "上海"),  # 6: nothing shared with 5
]


def events(home):
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        return conn.execute("select event_type, lead_id, other_lead_id from published.lead_events "
                            "where event_type <> 'created' order by event_at, event_type").fetchall()


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = use_home(tmp_path, monkeypatch)
    write_csv(home.warehouse_dir / "people.csv", BASE)
    run_library(home)
    return home


def test_same_input_same_ids(home):
    first = leads_of(home)
    assert first[row(1)] == first[row(2)]
    assert len({first[row(i)] for i in range(1, 7)}) == 5
    run_library(home)
    assert leads_of(home) == first


def test_a_new_record_joins_the_existing_lead_and_keeps_its_id(home):
    before = leads_of(home)
    write_csv(home.inbox_dir / "new.csv", [person("张伟", None, "zw@qq.com", None, "北京")])
    run_library(home)
    after = leads_of(home)
    assert after["inbox/new.csv#2"] == before[row(1)]
    assert {k: v for k, v in after.items() if k.startswith(P)} == before


def test_merge_keeps_a_deterministic_survivor_and_records_the_other(home):
    before = leads_of(home)
    a, b = before[row(3)], before[row(4)]
    assert a != b
    write_csv(home.inbox_dir / "bridge.csv", [person("李娜", "13900000002", "lina2@163.com", None, "深圳")])
    run_library(home)
    after = leads_of(home)
    survivor = min(a, b)  # one record each: the tie goes to the smaller id
    assert after[row(3)] == after[row(4)] == after["inbox/bridge.csv#2"] == survivor
    assert ("merged", max(a, b), survivor) in events(home)


def test_split_leaves_the_id_with_the_larger_part(home):
    # A second warehouse extract bridges records 3 and 4; when its newest version drops the bridge, the
    # bridge record is retired and the lead splits.
    write_csv(home.warehouse_dir / "bridge.csv", [person("李娜", "13900000002", "lina2@163.com", None, "深圳"),
                                                  person("李娜", "13900000002", None, None, "深圳")])
    run_library(home)
    merged = leads_of(home)
    lead = merged[row(3)]
    assert merged[row(4)] == lead
    # the bridge goes, but its second record (same mobile as record 3) stays: {3, bridge#2} vs {4}
    write_csv(home.warehouse_dir / "bridge.csv", [person("李娜", "13900000002", None, None, "深圳")])
    run_library(home)
    split = leads_of(home)
    assert split[row(3)] == lead  # the larger part keeps the id
    assert split[row(4)] != lead
    assert ("split", lead, split[row(4)]) in events(home)
    assert ("record_retired", lead, None) in events(home)


def test_different_is_never_merged_again(home):
    before = leads_of(home)
    a, b = before[row(3)], before[row(4)]
    with home.connect() as conn:
        record_decision(conn, a, b, "different", decided_by="test")
    write_csv(home.inbox_dir / "bridge.csv", [person("李娜", "13900000002", "lina2@163.com", None, "深圳")])
    for _ in range(2):  # and still not on the run after
        run_library(home)
        after = leads_of(home)
        assert after[row(3)] == a and after[row(4)] == b
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        offered = conn.execute("select count(*) from published.lead_review_queue where "
                               "(lead_id_l = ? and lead_id_r = ?) or (lead_id_l = ? and lead_id_r = ?)", [a, b, b, a]).fetchone()[0]
    assert offered == 0, "a pair a person has decided is not offered for review again"


def test_same_is_always_merged(home):
    before = leads_of(home)
    c, d = before[row(5)], before[row(6)]
    with home.connect() as conn:
        record_decision(conn, c, d, "same", decided_by="test")
    run_library(home)
    after = leads_of(home)
    assert after[row(5)] == after[row(6)] == min(c, d)
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        explanation = conn.execute("select match_explanation from published.lead_members where source_row = 7 "
                                   "and source_file = 'warehouse/people.csv'").fetchone()[0]
    assert "a person decided: same" in explanation


def test_decisions_name_existing_leads(home):
    existing = leads_of(home)[row(1)]
    with home.connect() as conn, pytest.raises(ValueError, match="is not in published.lead_members"):
        record_decision(conn, "LNOTALEAD", existing, "same")


def test_an_unreachable_lead_is_quarantined_with_the_reason_and_comes_back_when_repaired(home):
    write_csv(home.warehouse_dir / "fix_me.csv", [person("孙悟空", "1380013", None, "花果山贸易有限公司", "苏州")])
    run_library(home)
    lead = leads_of(home)["warehouse/fix_me.csv#2"]
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        reason, rows = conn.execute("select reason, rows_to_fix from published.leads_unreachable where lead_id = ?",
                                    [lead]).fetchone()
        published = conn.execute("select count(*) from published.leads_clean where lead_id = ?", [lead]).fetchone()[0]
    assert "mobile invalid" in reason and rows == ["warehouse/fix_me.csv#2"] and published == 0
    # The specialist corrects the cell in the extract: the edited row replaces the old record and the
    # lead keeps its id.
    write_csv(home.warehouse_dir / "fix_me.csv", [person("孙悟空", "13800139999", None, "花果山贸易有限公司", "苏州")])
    run_library(home)
    assert leads_of(home)["warehouse/fix_me.csv#2"] == lead
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        assert conn.execute("select mobile from published.leads_clean where lead_id = ?", [lead]).fetchone() == ("+8613800139999",)
        assert conn.execute("select count(*) from published.leads_unreachable where lead_id = ?", [lead]).fetchone()[0] == 0


def members(home) -> dict[str, str]:
    """{record_id: lead_id} of the current publication."""
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        return dict(conn.execute("select record_id, lead_id from published.lead_members").fetchall())


def lifecycle_events(home) -> int:
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        return conn.execute("select count(*) from published.lead_events "
                            "where event_type in ('created', 'record_retired', 'retired', 'merged', 'split')").fetchone()[0]


def test_rename_reorder_reexport_and_archive_change_no_lead_id_and_decisions_follow(home):
    write_csv(home.inbox_dir / "drop.csv", [person("赵敏", "13311112222", None, "明教", "杭州"),
                                            person("张伟", "13812345601", None, None, "北京")])
    run_library(home)
    assert not (home.inbox_dir / "drop.csv").exists()  # archived: the library keeps its records
    first = leads_of(home)
    c, d = first[row(5)], first[row(6)]
    with home.connect() as conn:
        record_decision(conn, c, d, "same", decided_by="test")
    run_library(home)
    before, events_before = members(home), lifecycle_events(home)
    assert leads_of(home)[row(5)] == leads_of(home)[row(6)] == min(c, d)
    # renamed with a date, rows reversed
    (home.warehouse_dir / "people.csv").unlink()
    write_csv(home.warehouse_dir / "people_2026-11-23.csv", list(reversed(BASE)))
    run_library(home)
    assert members(home) == before and lifecycle_events(home) == events_before
    # re-exported by another tool: English headers, another column order, GBK
    (home.warehouse_dir / "people_2026-11-23.csv").unlink()
    english = [{"Company": p["公司"], "Name": p["姓名"], "E-mail": p["邮箱"], "Mobile": p["手机"], "City": p["城市"]}
               for p in BASE]
    write_csv(home.warehouse_dir / "export.csv", english, encoding="gbk")
    run_library(home)
    assert members(home) == before and lifecycle_events(home) == events_before
    assert leads_of(home)["inbox/drop.csv#3"] == first[row(1)]  # the inbox row still in 张伟's lead


def test_a_record_gone_from_the_extract_is_retired_and_its_lead_id_is_never_reused(home):
    before = leads_of(home)
    gone = before[row(3)]  # 李娜, a lead of one record
    write_csv(home.warehouse_dir / "people.csv", [p for i, p in enumerate(BASE, start=1) if i != 3])
    run_library(home)
    after = members(home)
    assert gone not in after.values()
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        kinds = [k for (k,) in conn.execute("select event_type from published.lead_events where lead_id = ? "
                                            "order by event_at, event_type", [gone]).fetchall()]
        in_clean = conn.execute("select count(*) from published.leads_clean where lead_id = ?", [gone]).fetchone()[0]
    assert kinds == ["created", "record_retired", "retired"] and in_clean == 0
    # the same person comes back: a new lead, never the retired id
    write_csv(home.warehouse_dir / "people.csv", BASE)
    run_library(home)
    back = leads_of(home)[row(3)]
    assert back != gone
    assert {k: v for k, v in leads_of(home).items() if k != row(3)} == {k: v for k, v in before.items() if k != row(3)}


def first_ingested(home) -> dict[str, object]:
    """{source_file#source_row: first_ingested_at of its lead} of the current publication."""
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        return dict(conn.execute("""
            select m.source_file || '#' || m.source_row, l.first_ingested_at
            from published.lead_members m
            join (select lead_id, first_ingested_at from published.leads_clean
                  union all select lead_id, first_ingested_at from published.leads_unreachable) l using (lead_id)""").fetchall())


def test_first_ingested_at_is_when_the_library_first_saw_the_records(home):
    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        (imported_at,), = conn.execute("select imported_at from raw.library_imports "
                                       "where file_name = 'warehouse/people.csv'").fetchall()
    first = first_ingested(home)
    assert len(first) == len(BASE) and set(first.values()) == {imported_at}
    run_library(home)  # run again later: nothing was seen for the first time
    assert first_ingested(home) == first
    # a later import: a new person gets its time; a record joining 张伟's lead leaves the lead's time alone
    write_csv(home.inbox_dir / "later.csv", [person("钱七", "13355556666", None, None, "南京"),
                                             person("张伟", None, "zw@qq.com", None, "北京")])
    run_library(home)
    later = first_ingested(home)
    assert later["inbox/later.csv#2"] > imported_at
    assert later["inbox/later.csv#3"] == imported_at
    assert {k: v for k, v in later.items() if k.startswith(P)} == first
    # a record that leaves the extract and comes back was first seen when it first came, not when it returned
    write_csv(home.warehouse_dir / "people.csv", [p for i, p in enumerate(BASE, start=1) if i != 3])
    run_library(home)
    assert row(3) not in first_ingested(home)
    write_csv(home.warehouse_dir / "people.csv", BASE)
    run_library(home)
    assert first_ingested(home) == later
