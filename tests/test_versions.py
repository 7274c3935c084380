"""Published versions: numbered, immutable Delta versions with time travel, listed, compared, and readable
without the working DuckDB file."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable, Schema

from pipelines.lib.history.versions import Versions


def _leads(rows: list[tuple]) -> pa.Table:
    return pa.table({"lead_id": [r[0] for r in rows], "name": [r[1] for r in rows], "mobile": [r[2] for r in rows]})


def test_each_publication_is_a_numbered_version_that_later_ones_never_change(tmp_path):
    versions = Versions(tmp_path / "versions")
    one = versions.publish({"leads_clean": _leads([("L1", "张伟", "+8613800000001"), ("L2", "李娜", None)])},
                           cause="nightly run", cause_id="run-1")
    two = versions.publish({"leads_clean": _leads([("L1", "张伟", "+8613900000002"), ("L3", "王芳", "+8613700000003")])},
                           cause="event batch", cause_id="app.jsonl")
    assert [v.version for v in versions.list()] == [1, 2]
    assert [(v.cause, v.cause_id) for v in versions.list()] == [("nightly run", "run-1"), ("event batch", "app.jsonl")]
    assert one.tables["leads_clean"]["rows"] == 2 and two.tables["leads_clean"]["rows"] == 2
    # version 1 reads as it was published, after version 2 replaced the table
    assert versions.read("leads_clean", 1).to_pylist()[0]["mobile"] == "+8613800000001"
    assert versions.read("leads_clean").to_pylist()[0]["mobile"] == "+8613900000002"
    diff = versions.diff("leads_clean", 1, 2)
    assert diff == {"added": ["L3"], "removed": ["L2"],
                    "changed": [("L1", "mobile", "+8613800000001", "+8613900000002")]}
    # a plain Delta reader (no product code, no DuckDB file) sees the same history
    assert DeltaTable(str(tmp_path / "versions" / "leads_clean")).version() == two.tables["leads_clean"]["delta_version"]
    with pytest.raises(KeyError, match="version 7 does not exist"):
        versions.read("leads_clean", 7)


def test_history_is_appended_only_and_tells_a_lead_story_newest_first_with_contacts_masked(tmp_path):
    from datetime import datetime, timezone

    from pipelines.lib.history.history import HISTORY_SCHEMA, LeadHistory, render_story

    history = LeadHistory(tmp_path / "library")

    def change(field, old, new, cause, cause_id, at, actor=None):
        return {"lead_id": "L1", "field": field, "old_value": old, "new_value": new, "cause": cause,
                "cause_id": cause_id, "rule": None, "actor": actor, "version": 1,
                "changed_at": datetime(2026, 11, at, 10, 0, tzinfo=timezone.utc)}

    history.append(pa.Table.from_pylist([change("mobile", None, "+8613800000001", "import", "run-1", 20)], HISTORY_SCHEMA))
    history.append(pa.Table.from_pylist([
        change("mobile", "+8613800000001", "+8613900000002", "event", "e-7", 22, "app"),
        change("owner", "张三", "王五", "manual_edit", "edit-1", 23, "李娜")], HISTORY_SCHEMA))
    with pytest.raises(ValueError, match="unknown causes"):
        history.append(pa.Table.from_pylist([change("owner", "a", "b", "guess", "x", 24)], HISTORY_SCHEMA))
    story = history.story("L1")
    assert [(r["field"], r["cause"]) for r in story] == [("owner", "manual_edit"), ("mobile", "event"), ("mobile", "import")]
    text = render_story("L1", story)
    assert text.splitlines()[1].strip().startswith("2026-11-23 10:00  负责人 owner: 张三 → 王五  (人工修改 manual edit edit-1, 李娜)")
    assert "+8613900000002" not in text and "139****0002" in text  # masked, as everywhere
    assert "+8613900000002" in render_story("L1", story, mask=False)
    # append-only: every commit of the table is an append, and each version holds all of the one before
    table = DeltaTable(str(tmp_path / "library" / "lead_history"))
    assert {c["operation"] for c in table.history()} <= {"CREATE TABLE", "WRITE"}
    assert all(c.get("operationParameters", {}).get("mode", "Append") == "Append" for c in table.history())
    sizes = [DeltaTable(str(tmp_path / "library" / "lead_history"), version=v).to_pyarrow_table().num_rows
             for v in range(table.version() + 1)]
    assert sizes == sorted(sizes) and sizes[-1] == 3


def test_a_table_a_publication_did_not_change_carries_over_without_being_rewritten(tmp_path):
    versions = Versions(tmp_path / "versions")
    members = pa.table({"lead_id": ["L1", "L1"], "record_id": ["r1", "r2"]})
    versions.publish({"leads_clean": _leads([("L1", "张伟", "+8613800000001")]), "lead_members": members}, cause="run")
    two = versions.publish({"leads_clean": _leads([("L1", "张伟", "+8613900000002")])}, cause="corrections")
    assert two.tables["lead_members"] == versions.get(1).tables["lead_members"]
    assert versions.read("lead_members", 2).equals(members)
    assert DeltaTable(str(tmp_path / "versions" / "lead_members")).version() == 0  # written once
    assert versions.read("leads_clean", 2).to_pylist()[0]["mobile"] == "+8613900000002"


def test_a_correction_batch_replaces_only_its_leads_rows_in_the_files_holding_them(tmp_path, monkeypatch):
    """One event on a large library must not rewrite every lead (issue 10: visible within 15 s): the version
    replaces its leads' rows in place, and reads exactly as the published table does."""
    import duckdb
    from deltalake import write_deltalake

    from pipelines.lib.history import versions as versions_module
    from pipelines.lib.publish.publish import (CORRECTION_COMMIT, LEADS_CLEAN, LEADS_UNREACHABLE, mark_unversioned,
                                               publish_version)

    monkeypatch.setattr(versions_module, "TARGET_FILE_BYTES", 20_000)  # many small files from a small table
    conn = duckdb.connect(str(tmp_path / "lib.duckdb"))
    conn.execute("create schema published")
    conn.execute("create table published.leads_clean as select 'L' || lpad(i::varchar, 5, '0') as lead_id, "
                 "'客户' || i as name, '+86138' || lpad(i::varchar, 8, '0') as mobile from range(12000) t(i)")
    conn.execute("create table published.leads_unreachable as select * from published.leads_clean limit 0")
    conn.execute("create table published.lead_members as select lead_id, lead_id || '-r' as record_id from published.leads_clean")
    conn.execute("create table published.lead_review_queue as select 'R1' as review_id, 'L00001' as lead_id_l")
    versions_dir = tmp_path / "versions"
    path = str(versions_dir / "leads_clean")

    def files() -> set[str]:
        return set(DeltaTable(path).file_uris())

    def held_equals_published() -> bool:
        held = Versions(versions_dir).read("leads_clean")
        conn.register("held", held)
        return conn.execute("select count(*) from (select * from published.leads_clean except all select * from held"
                            " union all select * from held except all select * from published.leads_clean)").fetchone()[0] == 0

    publish_version(conn, versions_dir, "run", "r1")
    first = files()
    assert len(first) > 8
    # a correction batch: two leads change, one leaves the table (its last contact bounced)
    conn.execute("update published.leads_clean set mobile = '+8613900000001' where lead_id in ('L00010', 'L11990')")
    conn.execute("insert into published.leads_unreachable select * from published.leads_clean where lead_id = 'L03000'")
    conn.execute("delete from published.leads_clean where lead_id = 'L03000'")
    mark_unversioned(conn, CORRECTION_COMMIT)
    v2 = publish_version(conn, versions_dir, "corrections", "b1", changed=(LEADS_CLEAN, LEADS_UNREACHABLE),
                         changed_leads=["L00010", "L03000", "L11990"])
    assert held_equals_published() and v2.tables["leads_clean"]["rows"] == 11999
    assert len(files() - first) <= 4  # the three files holding them, rewritten, and the new rows
    assert Versions(versions_dir).read("leads_clean", 1).num_rows == 12000  # version 1 as it was

    # a crashed publication wrote a Delta version no version names: never built upon in place
    write_deltalake(path, conn.execute("select 'L00020' as lead_id, '残留' as name, null::varchar as mobile").arrow(),
                    mode="append")
    conn.execute("update published.leads_clean set name = '改名' where lead_id = 'L00020'")
    mark_unversioned(conn, CORRECTION_COMMIT)
    schema = Schema.from_arrow(conn.execute("select * from published.leads_clean limit 0").arrow().schema)
    assert not Versions(versions_dir).can_replace_in_place("leads_clean", "lead_id", ["L00020"], schema)
    publish_version(conn, versions_dir, "corrections", "b2", changed=(LEADS_CLEAN,), changed_leads=["L00020"])
    assert held_equals_published()

    # a run committed its publication and died before its version: the next batch's version is written whole,
    # as the run changed leads no batch names (here: a name)
    conn.execute("update published.leads_clean set name = '夜间' where lead_id = 'L00030'")
    mark_unversioned(conn, "publication")
    conn.execute("update published.leads_clean set mobile = null where lead_id = 'L00040'")
    mark_unversioned(conn, CORRECTION_COMMIT)
    publish_version(conn, versions_dir, "corrections", "b2b", changed=(LEADS_CLEAN,), changed_leads=["L00040"])
    assert held_equals_published()

    # a column the version does not have (added by newer code): written whole, with the new column
    conn.execute("alter table published.leads_clean add column do_not_contact boolean default false")
    conn.execute("update published.leads_clean set do_not_contact = true where lead_id = 'L00050'")
    mark_unversioned(conn, CORRECTION_COMMIT)
    publish_version(conn, versions_dir, "corrections", "b2c", changed=(LEADS_CLEAN,), changed_leads=["L00050"])
    assert held_equals_published()

    # a batch touching most files is written whole, in full files
    many = [f"L{i:05d}" for i in range(0, 12000, 7)]
    conn.execute("update published.leads_clean set name = name || '*' where lead_id in (select unnest(?))", [many])
    mark_unversioned(conn, CORRECTION_COMMIT)
    before = files()
    publish_version(conn, versions_dir, "corrections", "b3", changed=(LEADS_CLEAN,), changed_leads=many)
    assert held_equals_published() and not files() & before and len(files()) <= len(first)
