"""The run summary: the library's records, what the last import batch did, what was published, and
whether the counts reconcile."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb

from ..identity.ingest import LIBRARY_IMPORTS, LIBRARY_RECORDS
from .profiling import relation_exists
from ..publish.publish import LEAD_MEMBERS, LEAD_RECORDS, LEAD_REVIEW_QUEUE, LEADS_CLEAN, LEADS_UNREACHABLE


@dataclass(frozen=True)
class RunSummary:
    files_imported: int      # by the last import batch
    files_duplicate: int
    files_failed: int
    rows_read: int           # data rows of the files the last batch imported
    rows_rejected_at_import: int
    records_in_library: int  # current records, every source
    records_rejected: int    # in the library but not usable as a lead (marts.lead_rejections)
    rows_standardised: int   # records accepted as leads' members (marts.lead_records)
    field_issues: int
    records_in_leads: int
    leads_published: int
    leads_unreachable: int
    pairs_in_review: int

    @property
    def records_merged(self) -> int:
        """Records that joined another record's lead."""
        return self.records_in_leads - self.leads_published - self.leads_unreachable

    @property
    def reconciles(self) -> bool:
        """Every library record is rejected with a reason or standardised, and every standardised one is in a lead."""
        return (self.records_in_library == self.records_rejected + self.rows_standardised
                and self.records_in_leads == self.rows_standardised)

    def as_dict(self) -> dict[str, int | bool]:
        return {**asdict(self), "records_merged": self.records_merged, "reconciles": self.reconciles}

    def render(self) -> str:
        lines = [
            "last import",
            f"  files imported       {self.files_imported:>10,}  (duplicates {self.files_duplicate:,}, failed {self.files_failed:,})",
            f"  rows read            {self.rows_read:>10,}  (rejected at import {self.rows_rejected_at_import:,}; see each receipt)",
            "library",
            f"  records              {self.records_in_library:>10,}  ({LIBRARY_RECORDS})",
            f"  records rejected     {self.records_rejected:>10,}  (marts.lead_rejections: not usable as a lead)",
            f"  records standardised {self.rows_standardised:>10,}  ({LEAD_RECORDS})",
            f"  field issues         {self.field_issues:>10,}  (marts.lead_field_issues)",
            f"  records in leads     {self.records_in_leads:>10,}  ({LEAD_MEMBERS})",
            f"  records merged       {self.records_merged:>10,}  (joined another record's lead)",
            f"  leads published      {self.leads_published:>10,}  ({LEADS_CLEAN})",
            f"  leads unreachable    {self.leads_unreachable:>10,}  ({LEADS_UNREACHABLE}: quarantined, with the reason)",
            f"  pairs to review      {self.pairs_in_review:>10,}  ({LEAD_REVIEW_QUEUE})",
            f"  reconciles           {'yes' if self.reconciles else 'NO':>10}",
        ]
        return "\n".join(lines)


def _count(conn: duckdb.DuckDBPyConnection, relation: str, where: str = "true") -> int:
    if not relation_exists(conn, relation):
        return 0
    return conn.execute(f"select count(*) from {relation} where {where}").fetchone()[0]


def run_summary(conn: duckdb.DuckDBPyConnection) -> RunSummary:
    last = "batch_id = (select max(batch_id) from raw.library_imports)"
    batch = (0, 0, 0, 0, 0)
    if relation_exists(conn, LIBRARY_IMPORTS):
        batch = conn.execute(f"""
            select count(*) filter (where status = 'imported'), count(*) filter (where status = 'duplicate'),
                   count(*) filter (where status = 'failed'),
                   coalesce(sum(rows_read) filter (where status = 'imported'), 0),
                   coalesce(sum(rows_rejected) filter (where status = 'imported'), 0)
            from {LIBRARY_IMPORTS} where {last}
        """).fetchone()
    return RunSummary(
        files_imported=batch[0], files_duplicate=batch[1], files_failed=batch[2],
        rows_read=int(batch[3]), rows_rejected_at_import=int(batch[4]),
        records_in_library=_count(conn, LIBRARY_RECORDS),
        records_rejected=_count(conn, "marts.lead_rejections"),
        rows_standardised=_count(conn, LEAD_RECORDS),
        field_issues=_count(conn, "marts.lead_field_issues"),
        records_in_leads=_count(conn, LEAD_MEMBERS),
        leads_published=_count(conn, LEADS_CLEAN),
        leads_unreachable=_count(conn, LEADS_UNREACHABLE),
        pairs_in_review=_count(conn, LEAD_REVIEW_QUEUE),
    )
