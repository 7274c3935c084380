"""The run summary: how many rows were read, rejected, standardised and published, and whether they reconcile."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb

from .ingest import REJECTIONS_TABLE, SOURCE_SYSTEMS, raw_table
from .profiling import relation_exists
from .publish import LEAD_MEMBERS, LEAD_RECORDS, LEAD_REVIEW_QUEUE, LEADS_CLEAN, LEADS_UNREACHABLE


@dataclass(frozen=True)
class RunSummary:
    rows_read: int
    files_rejected: int
    rows_rejected: int
    rows_standardised: int
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
        """Every row read is rejected with a reason or standardised, and every standardised row is in a lead."""
        return (self.rows_read == self.rows_rejected + self.rows_standardised
                and self.records_in_leads == self.rows_standardised)

    def as_dict(self) -> dict[str, int | bool]:
        return {**asdict(self), "records_merged": self.records_merged, "reconciles": self.reconciles}

    def render(self) -> str:
        lines = [
            f"rows read          {self.rows_read:>10,}",
            f"files rejected     {self.files_rejected:>10,}",
            f"rows rejected      {self.rows_rejected:>10,}",
            f"rows standardised  {self.rows_standardised:>10,}",
            f"field issues       {self.field_issues:>10,}  (see marts.lead_field_issues)",
            f"records in leads   {self.records_in_leads:>10,}  ({LEAD_MEMBERS})",
            f"records merged     {self.records_merged:>10,}  (joined another record's lead)",
            f"leads published    {self.leads_published:>10,}  ({LEADS_CLEAN})",
            f"leads unreachable  {self.leads_unreachable:>10,}  ({LEADS_UNREACHABLE}: quarantined, with the reason)",
            f"pairs to review    {self.pairs_in_review:>10,}  ({LEAD_REVIEW_QUEUE})",
            f"reconciles         {'yes' if self.reconciles else 'NO'}",
        ]
        return "\n".join(lines)


def _count(conn: duckdb.DuckDBPyConnection, relation: str, where: str = "true") -> int:
    if not relation_exists(conn, relation):
        return 0
    return conn.execute(f"select count(*) from {relation} where {where}").fetchone()[0]


def run_summary(conn: duckdb.DuckDBPyConnection) -> RunSummary:
    return RunSummary(
        rows_read=sum(_count(conn, raw_table(s)) for s in SOURCE_SYSTEMS),
        files_rejected=_count(conn, REJECTIONS_TABLE),
        rows_rejected=_count(conn, "marts.lead_rejections", "source_row is not null"),
        rows_standardised=_count(conn, LEAD_RECORDS),
        field_issues=_count(conn, "marts.lead_field_issues"),
        records_in_leads=_count(conn, LEAD_MEMBERS),
        leads_published=_count(conn, LEADS_CLEAN),
        leads_unreachable=_count(conn, LEADS_UNREACHABLE),
        pairs_in_review=_count(conn, LEAD_REVIEW_QUEUE),
    )
