"""Published versions: numbered, immutable Delta versions with time travel, listed, compared, and readable
without the working DuckDB file."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable

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
