"""Receipts: one workbook per file a specialist dropped, saying what became of every row.

Every data row of an imported file ends up as exactly one of: a new lead, merged into a lead (one
already in the library, or another row of the same file), waiting for review, or rejected with the
reason. The summary sheet's counts add up to the rows read. Lines that are not lead rows (a totals row,
an instruction line) are listed as skipped. A duplicate or failed file gets a receipt that says so.

Receipts hold full contact details (specialists need them to fix rows): they are personal data and
live only under the data home (``outbox/``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import xlsxwriter

from ..identity.ingest import LIBRARY_IMPORTS, LIBRARY_RECORDS
from ..identity.library import RECEIPT_SCHEMA, Library
from ..quality.masking import CONTACT_FIELDS, mask_contact

log = logging.getLogger(__name__)

# The run log names a file's first rejected rows and why, contacts masked; the receipt has them all, in full.
LOGGED_REJECTIONS = 20


OUTCOMES = {
    "new": "新线索 (new lead)",
    "merged": "并入已有线索 (merged into a lead)",
    "review": "待人工审核 (waiting for review)",
    "rejected": "未收录 (rejected)",
}


@dataclass(frozen=True)
class ReceiptSummary:
    import_id: int
    file_name: str
    status: str
    rows_read: int
    new_leads: int
    rows_merged: int
    rows_in_review: int
    rows_rejected: int
    lines_skipped: int
    pairs_for_review: int
    path: Path

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.new_leads + self.rows_merged + self.rows_in_review + self.rows_rejected

    def render(self) -> str:
        if self.status != "imported":
            return f"{self.file_name}: {self.status}; receipt {self.path}"
        return (f"{self.file_name}: {self.rows_read:,} rows read = {self.new_leads:,} new leads + "
                f"{self.rows_merged:,} merged + {self.rows_in_review:,} for review + {self.rows_rejected:,} rejected"
                f"{'' if self.reconciles else ' (DOES NOT RECONCILE)'}; {self.pairs_for_review:,} pairs to review; "
                f"{self.lines_skipped:,} lines skipped; receipt {self.path}")


def row_outcomes(conn: duckdb.DuckDBPyConnection, import_id: int) -> pl.DataFrame:
    """Every row of one import with its outcome, lead and reason (needs the published tables and the
    library views of ``Library.register``)."""
    return conn.execute(f"""
        with rows as (select * from lib_import_rows where import_id = $1),
        review_records as (
            select record_id_l as record_id, review_id from published.lead_review_queue
            union all select record_id_r, review_id from published.lead_review_queue
        ),
        -- only the leads and issues of this file's records: the library may hold millions
        file_leads as (
            select distinct lead_id from published.lead_members where record_id in (select record_id from rows)
        ),
        lead_first as (
            select m.lead_id, min(r.first_import_id) as first_import_id
            from published.lead_members m join {LIBRARY_RECORDS} r using (record_id)
            where m.lead_id in (select lead_id from file_leads)
            group by 1
        ),
        field_issues as (
            select record_id, string_agg(field || ': ' || issue || coalesce(' 「' || raw_value || '」', ''), '; ') as issues
            from marts.lead_field_issues where record_id in (select record_id from rows) group by 1
        ),
        joined as (
            select r.source_file, r.source_row, r.outcome as read_outcome, r.reason as read_reason, r.record_id,
                   rec.first_import_id, rj.reason as rejection, m.lead_id, m.match_explanation,
                   lf.first_import_id as lead_first_import_id, u.reason as unreachable_reason,
                   exists (select 1 from review_records v where v.record_id = r.record_id) as in_review,
                   row_number() over (partition by m.lead_id, (r.outcome = 'accepted')
                                      order by r.source_file, r.source_row) as nth_row_of_lead,
                   first_value(r.source_file || '#' || r.source_row) over (
                       partition by r.record_id order by r.source_file, r.source_row) as first_row_of_record,
                   first_value(r.source_file || '#' || r.source_row) over (
                       partition by m.lead_id order by r.source_file, r.source_row) as first_row_of_lead,
                   rec.name, rec.mobile, rec.email, rec.company, fi.issues
            from rows r
            left join {LIBRARY_RECORDS} rec using (record_id)
            left join marts.lead_rejections rj using (record_id)
            left join published.lead_members m using (record_id)
            left join lead_first lf using (lead_id)
            left join published.leads_unreachable u using (lead_id)
            left join field_issues fi using (record_id)
        )
        select source_file, source_row,
            case when read_outcome = 'skipped' then 'skipped'
                 when read_outcome = 'rejected' or rejection is not null or unreachable_reason is not null then 'rejected'
                 when lead_id is null then 'rejected'
                 when first_import_id < $1 or lead_first_import_id < $1 then 'merged'
                 when nth_row_of_lead > 1 then 'merged'
                 when in_review then 'review'
                 else 'new' end as outcome,
            lead_id,
            case when read_outcome in ('rejected', 'skipped') then read_reason
                 when rejection is not null then rejection
                 when unreachable_reason is not null then '没有有效的联系方式，未作为线索发布 (no valid contact: not published as a lead): '
                                                          || unreachable_reason
                 when lead_id is null then '记录已不在线索库中 (the record is no longer in the library)'
                 when first_import_id < $1 then '与线索库中已有记录相同 (the same as a record already in the library)'
                 when lead_first_import_id < $1 then coalesce(match_explanation, '并入已有线索 (joined an existing lead)')
                 when nth_row_of_lead > 1 and first_row_of_record <> source_file || '#' || source_row
                      then '与本文件 ' || first_row_of_record || ' 相同 (the same as that row of this file)'
                 when nth_row_of_lead > 1 then '与本文件 ' || first_row_of_lead || ' 是同一人 (the same person as that row): '
                                               || coalesce(match_explanation, '')
                 when in_review then '与其他线索可能是同一人，请审核 (may be the same person as another lead: see the review sheet)'
                 else null end as reason,
            issues as field_issues, name, mobile, email, company, record_id
        from joined
        order by source_file, source_row
    """, [import_id]).pl()


def review_pairs(conn: duckdb.DuckDBPyConnection, import_id: int) -> pl.DataFrame:
    return conn.execute("""
        select q.name_l as "姓名 A", q.mobile_l as "手机 A", q.company_l as "公司 A", q.source_l as "来源 A",
               q.name_r as "姓名 B", q.mobile_r as "手机 B", q.company_r as "公司 B", q.source_r as "来源 B",
               q.match_probability as "匹配概率", q.reason as "原因", q.explanation as "依据",
               q.lead_id_l as "线索 A", q.lead_id_r as "线索 B"
        from published.lead_review_queue q
        where q.record_id_l in (select record_id from lib_import_rows where import_id = $1)
           or q.record_id_r in (select record_id from lib_import_rows where import_id = $1)
        order by q.match_probability desc
    """, [import_id]).pl()


def _safe_name(text: str) -> str:
    return re.sub(r'[\\/:*?"<>|\s]+', "_", text).strip("_")[:80] or "file"


def receipt_path(outbox: Path, imported_at, file_name: str, import_id: int) -> Path:
    stem = _safe_name(Path(file_name).stem)
    # the import id in hex: a long digit run in a file name reads like a phone number to log scanners
    return outbox / f"{imported_at:%Y%m%d-%H%M%S}_{stem}_{import_id:x}_回执.xlsx"


def _write_sheet(workbook, title: str, frame: pl.DataFrame, header_format) -> None:
    sheet = workbook.add_worksheet(title)
    for col, name in enumerate(frame.columns):
        sheet.write_string(0, col, name, header_format)
        sheet.set_column(col, col, max(10, min(50, len(name) * 2 + 2)))
    for row_index, row in enumerate(frame.iter_rows(), start=1):
        for col, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                sheet.write_number(row_index, col, value)
            else:  # text stays text: Excel must not turn a mobile into 1.38E+10
                sheet.write_string(row_index, col, str(value))
    sheet.freeze_panes(1, 0)
    if frame.height:
        sheet.autofilter(0, 0, frame.height, max(0, frame.width - 1))


def write_receipt(conn: duckdb.DuckDBPyConnection, imp: dict, outbox: Path) -> ReceiptSummary:
    """Write the receipt workbook of one import (a row of the import log) and return its counts."""
    outbox.mkdir(parents=True, exist_ok=True)
    path = receipt_path(outbox, imp["imported_at"], imp["file_name"], imp["import_id"])
    status = imp["status"]
    outcomes = row_outcomes(conn, imp["import_id"]) if status == "imported" else pl.DataFrame()
    pairs = review_pairs(conn, imp["import_id"]) if status == "imported" else pl.DataFrame()

    def count(outcome: str) -> int:
        return outcomes.filter(pl.col("outcome") == outcome).height if outcomes.height else 0

    summary = ReceiptSummary(
        import_id=imp["import_id"], file_name=imp["file_name"], status=status,
        rows_read=int(imp["rows_read"] or 0),  # from the import log: the outcomes below must add up to it
        new_leads=count("new"), rows_merged=count("merged"), rows_in_review=count("review"),
        rows_rejected=count("rejected"), lines_skipped=count("skipped"), pairs_for_review=pairs.height, path=path,
    )
    status_words = {
        "imported": "已导入 (imported)",
        "duplicate": "重复文件，未再次导入 (a duplicate: this content was imported before, nothing added)",
        "failed": "未导入 (not imported)",
        "unchanged": "内容未变 (unchanged)",
    }
    lines = [
        ("文件 (file)", imp["file_name"]),
        ("保存位置 (kept as)", imp.get("stored_as") or ""),
        ("导入时间 (imported at, UTC)", f"{imp['imported_at']:%Y-%m-%d %H:%M:%S}"),
        ("导入编号 (import id)", str(imp["import_id"])),
        ("状态 (status)", status_words.get(status, status)),
    ]
    if imp.get("reason"):
        lines.append(("原因 (reason)", imp["reason"]))
    if status == "duplicate" and imp.get("duplicate_of"):
        lines.append(("原导入编号 (imported before as)", str(imp["duplicate_of"])))
    if status == "imported":
        lines += [
            ("读取行数 (rows read)", summary.rows_read),
            ("新线索 (new leads)", summary.new_leads),
            ("并入已有线索 (rows merged into leads)", summary.rows_merged),
            ("待人工审核 (rows waiting for review)", summary.rows_in_review),
            ("未收录 (rows rejected)", summary.rows_rejected),
            ("核对 (reconciles: read = new + merged + review + rejected)", "是 (yes)" if summary.reconciles else "否 (NO)"),
            ("待审核的配对 (pairs sent to review)", summary.pairs_for_review),
            ("跳过的非数据行 (lines skipped: totals, notes)", summary.lines_skipped),
        ]
    tmp = path.with_suffix(".tmp.xlsx")
    workbook = xlsxwriter.Workbook(str(tmp))
    header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7"})
    sheet = workbook.add_worksheet("汇总 Summary")
    sheet.set_column(0, 0, 48)
    sheet.set_column(1, 1, 70)
    for row, (label, value) in enumerate(lines):
        sheet.write_string(row, 0, label, header)
        if isinstance(value, int):
            sheet.write_number(row, 1, value)
        else:
            sheet.write_string(row, 1, str(value))
    if status == "imported":
        labelled = outcomes.with_columns(pl.col("outcome").replace_strict(
            {**OUTCOMES, "skipped": "跳过 (skipped)"}, default=pl.col("outcome")).alias("结果 (outcome)"))
        columns = {"source_file": "文件 (file)", "source_row": "行号 (row)", "结果 (outcome)": "结果 (outcome)",
                   "lead_id": "线索编号 (lead id)", "reason": "原因 (why)", "field_issues": "字段问题 (field issues)",
                   "name": "姓名", "mobile": "手机", "email": "邮箱", "company": "公司"}
        rejected = labelled.filter(pl.col("outcome") == "rejected").select(list(columns)).rename(columns)
        merged = labelled.filter(pl.col("outcome") == "merged").select(list(columns)).rename(columns)
        new = labelled.filter(pl.col("outcome").is_in(["new", "review"])).select(list(columns)).rename(columns)
        skipped = labelled.filter(pl.col("outcome") == "skipped").select(
            ["source_file", "source_row", "reason"]).rename({k: columns[k] for k in ("source_file", "source_row", "reason")})
        _write_sheet(workbook, "未收录 Rejected", rejected, header)
        _write_sheet(workbook, "已合并 Merged", merged, header)
        _write_sheet(workbook, "新线索 New", new, header)
        _write_sheet(workbook, "待审核 Review", pairs, header)
        if skipped.height:
            _write_sheet(workbook, "跳过 Skipped", skipped, header)
    workbook.close()
    tmp.replace(path)  # a reader never sees half a receipt
    if status == "imported":
        log_rejected_rows(conn, imp["file_name"], outcomes)
    return summary


def log_rejected_rows(conn: duckdb.DuckDBPyConnection, file_name: str, outcomes: pl.DataFrame) -> None:
    """Log a file's first rejected rows at INFO: row, reason and each field's problem with the value as
    the file had it, masked (138******00, z***@qq.com): the log is no place for personal data."""
    rejected = outcomes.filter(pl.col("outcome") == "rejected")
    if not rejected.height:
        return
    shown = rejected.head(LOGGED_REJECTIONS)
    ids = [r for r in shown["record_id"].to_list() if r is not None]
    problems: dict[str, list[str]] = {}
    if ids:
        for record_id, field, issue, raw_value in conn.execute(
                "select record_id, field, issue, raw_value from marts.lead_field_issues "
                "where record_id in (select unnest($1::varchar[])) order by record_id, field, raw_value", [ids]).fetchall():
            value = f" 「{mask_contact(field, raw_value)}」" if raw_value is not None and field in CONTACT_FIELDS else ""
            problems.setdefault(record_id, []).append(f"{field}: {issue}{value}")
    for row in shown.iter_rows(named=True):
        detail = "; ".join(problems.get(row["record_id"], []))
        log.info("%s row %s rejected: %s%s", file_name, row["source_row"], row["reason"] or "",
                 f" [{detail}]" if detail else "")
    if rejected.height > shown.height:
        log.info("%s: %d more rejected rows, listed in the receipt", file_name, rejected.height - shown.height)


def pending_receipts(conn: duckdb.DuckDBPyConnection, import_ids: list[int] | None = None) -> list[dict]:
    """Imports of append sources (files people dropped) that have no receipt yet (or the ones named);
    needs the library registered on ``conn``."""
    where = (f"i.import_id in ({', '.join(map(str, import_ids))})" if import_ids is not None else
             "i.import_id not in (select import_id from lib_all_receipts)")
    return conn.execute(f"""
        select i.* from {LIBRARY_IMPORTS} i
        where i.status in ('imported', 'duplicate', 'failed') and i.stored_as is not null and {where}
        order by i.import_id
    """).pl().to_dicts()


def write_receipts(conn: duckdb.DuckDBPyConnection, library: Library, outbox: Path,
                   import_ids: list[int] | None = None) -> list[ReceiptSummary]:
    """Write every pending receipt (imports need the published tables: call after publishing); record them."""
    if import_ids is not None and not import_ids:
        return []
    library.register(conn)
    try:
        done = [write_receipt(conn, imp, outbox) for imp in pending_receipts(conn, import_ids)]
    finally:
        library.unregister(conn)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    library.append("receipts", pa.table({"import_id": [s.import_id for s in done], "path": [str(s.path) for s in done],
                                         "written_at": [now] * len(done)}, schema=RECEIPT_SCHEMA))
    for summary in done:
        log.info("receipt %s", summary.render())
    return done
