"""The run summary: how many rows were read, rejected, standardised and published, and whether they reconcile."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb

from .ingest import REJECTIONS_TABLE, SOURCE_SYSTEMS, raw_table
from .profiling import relation_exists
from .publish import LEADS_CLEAN


@dataclass(frozen=True)
class RunSummary:
    rows_read: int
    files_rejected: int
    rows_rejected: int
    rows_standardised: int
    field_issues: int
    rows_published: int

    @property
    def reconciles(self) -> bool:
        """Every row read is either standardised or rejected with a reason."""
        return self.rows_read == self.rows_rejected + self.rows_standardised

    def as_dict(self) -> dict[str, int | bool]:
        return {**asdict(self), "reconciles": self.reconciles}

    def render(self) -> str:
        lines = [
            f"rows read          {self.rows_read:>10,}",
            f"files rejected     {self.files_rejected:>10,}",
            f"rows rejected      {self.rows_rejected:>10,}",
            f"rows standardised  {self.rows_standardised:>10,}",
            f"field issues       {self.field_issues:>10,}  (see marts.lead_field_issues)",
            f"rows published     {self.rows_published:>10,}  ({LEADS_CLEAN})",
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
        rows_standardised=_count(conn, "marts.lead_records"),
        field_issues=_count(conn, "marts.lead_field_issues"),
        rows_published=_count(conn, LEADS_CLEAN),
    )
