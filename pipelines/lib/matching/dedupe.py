"""Deduplicating one file on its own (``leadfactory dedupe``): what the output holds and how it is written.

The run itself is the library's own ``dedupe_job`` on a throwaway home (``pipelines/runs.py``)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from .leads import LEAD_MEMBERS, REVIEW_QUEUE
from ..publish.publish import LEAD_RECORDS

EXCEL_MAX_ROWS = 1_048_575  # one header row


def dedupe_output(conn) -> pl.DataFrame:
    """One row per data row of the imported file(s): its lead, standardised fields and why; rows that
    are not a lead carry the reason instead of a lead id. ``review_with`` lists the leads this row's lead
    may be the same person as (the review queue's pairs): a person should look before trusting them apart."""
    return conn.execute(f"""
        with review as (
            select lead_id, string_agg(other, ';' order by other) as review_with
            from (select lead_id_l as lead_id, lead_id_r as other from {REVIEW_QUEUE}
                  union select lead_id_r, lead_id_l from {REVIEW_QUEUE})
            group by lead_id
        )
        select i.source_row, m.lead_id, r.name, r.mobile, array_to_string(r.mobiles, ';') as mobiles,
               r.landline, r.email, array_to_string(r.emails, ';') as emails, r.wechat, r.qq,
               r.company, r.company_core, r.job_title, r.job_title_canonical,
               r.province, r.city, r.district, r.address,
               case when i.outcome <> 'accepted' then '未收录: ' || i.reason
                    when j.reason is not null then '未收录: ' || j.reason
                    else m.match_explanation end as match_explanation,
               v.review_with
        from lib_import_rows i
        left join {LEAD_RECORDS} r using (record_id)
        left join {LEAD_MEMBERS} m using (record_id)
        left join review v on v.lead_id = m.lead_id
        left join marts.lead_rejections j using (record_id)
        where i.outcome <> 'skipped'
        order by i.source_file, i.source_row
    """).pl()


def write_dedupe_output(output: pl.DataFrame, output_path: Path) -> None:
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix.lower() == ".csv":
        output.write_csv(output_path, include_bom=True)  # the BOM lets Excel open Chinese text correctly
    else:
        if output.height > EXCEL_MAX_ROWS:
            raise ValueError(f"{output_path}: {output.height:,} rows do not fit in one Excel sheet; write .csv instead")
        output.write_excel(output_path, worksheet="去重结果")
