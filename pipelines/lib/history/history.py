"""The history of every published lead: one row per changed field, appended, never updated or deleted.

A row says which lead, which field, the old and the new value, the cause (an import, a matching run's merge,
split or retirement, an event, a manual edit, a review decision, a restore), the cause's id (the run, the
event id, the edit id, the decision id, the restored version), the rule that made the change, who did it and
when. It lives in the library (``<home>/library/lead_history``, Delta, append-only like the rest of the
system of record), so losing the DuckDB file loses none of it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from ..quality.masking import mask_contact

HISTORY_TABLE = "lead_history"
CAUSES = ("import", "merge", "split", "retire", "event", "manual_edit", "review_decision", "restore")
HISTORY_SCHEMA = pa.schema([
    ("lead_id", pa.string()),
    ("field", pa.string()),
    ("old_value", pa.string()),
    ("new_value", pa.string()),
    ("cause", pa.string()),
    ("cause_id", pa.string()),
    ("rule", pa.string()),
    ("actor", pa.string()),
    ("changed_at", pa.timestamp("us", tz="UTC")),
    ("version", pa.int64()),      # the published version the change went out in
])
# How a specialist reads a cause and a field.
CAUSE_WORDS = {"import": "导入 import", "merge": "合并 merge", "split": "拆分 split", "retire": "退役 retire",
               "event": "事件 event", "manual_edit": "人工修改 manual edit", "review_decision": "审核决定 review decision",
               "restore": "恢复版本 restore"}
FIELD_WORDS = {"name": "姓名 name", "mobile": "手机 mobile", "email": "邮箱 email", "wechat": "微信 wechat",
               "qq": "QQ", "landline": "座机 landline", "company": "公司 company", "job_title": "职务 job title",
               "province": "省 province", "city": "市 city", "district": "区县 district", "address": "地址 address",
               "owner": "负责人 owner", "do_not_contact": "勿扰 do not contact", "lead": "线索 lead"}


def field_changes_sql(before: str, after: str, key: str, fields: list[str]) -> str:
    """(key, field, old, new) for every field that differs between two relations' rows with the same key;
    values as text."""
    return " union all ".join(
        f"select {key}, '{f}' as field, b.{f}::varchar as old_value, a.{f}::varchar as new_value "
        f"from {before} b join {after} a using ({key}) where b.{f}::varchar is distinct from a.{f}::varchar"
        for f in fields)


class LeadHistory:
    def __init__(self, library_root: Path):
        self.path = str(Path(library_root) / HISTORY_TABLE)

    def append(self, rows: pa.Table) -> int:
        """Append change rows (HISTORY_SCHEMA); the only way anything is written to the history."""
        if rows.num_rows == 0:
            return 0
        unknown = set(rows.column("cause").to_pylist()) - set(CAUSES)
        if unknown:
            raise ValueError(f"unknown causes {sorted(unknown)}; known: {', '.join(CAUSES)}")
        write_deltalake(self.path, rows.select(HISTORY_SCHEMA.names).cast(HISTORY_SCHEMA), mode="append")
        return rows.num_rows

    def story(self, lead_id: str) -> list[dict]:
        """Every change of one lead, newest first."""
        if not DeltaTable.is_deltatable(self.path):
            return []
        with duckdb.connect() as conn:
            conn.register("history", DeltaTable(self.path).to_pyarrow_dataset())
            return conn.execute("select * from history where lead_id = ? order by changed_at desc, field",
                                [lead_id]).to_arrow_table().to_pylist()


def render_story(lead_id: str, rows: list[dict], mask: bool = True) -> str:
    """A lead's story in words a specialist reads, newest first; contacts masked unless ``mask`` is False."""
    if not rows:
        return f"{lead_id}: 没有变更记录 (no changes recorded)"
    lines = [f"{lead_id}: {len(rows)} 条变更 (changes), 最新在前 (newest first)"]
    for row in rows:
        def shown(value):
            if value is None:
                return "（空 empty）"
            return mask_contact(row["field"], value) if mask else value
        at = row["changed_at"].strftime("%Y-%m-%d %H:%M") if isinstance(row["changed_at"], datetime) else row["changed_at"]
        cause = CAUSE_WORDS.get(row["cause"], row["cause"])
        by = f", {row['actor']}" if row.get("actor") else ""
        rule = f", {row['rule']}" if row.get("rule") else ""
        lines.append(f"  {at}  {FIELD_WORDS.get(row['field'], row['field'])}: {shown(row['old_value'])} → "
                     f"{shown(row['new_value'])}  ({cause} {row['cause_id'] or ''}{rule}{by})")
    return "\n".join(lines)
