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
