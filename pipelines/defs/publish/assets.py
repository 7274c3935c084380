"""Publication of clean lead tables for the CRM."""


import dagster as dg

from pipelines.defs.resources import DUCKDB_WRITER_POOL, LeadHomeResource
from pipelines.lib.profiling import profile_relation
from pipelines.lib.publish import LEADS_CLEAN, publish_leads_clean
from pipelines.lib.summary import run_summary


@dg.asset(
    key=["published", "leads_clean"],
    deps=[dg.AssetKey(["marts", "lead_records"]), dg.AssetKey(["marts", "lead_rejections"])],
    group_name="publish",
    kinds={"duckdb"},
    pool=DUCKDB_WRITER_POOL,
    description="The clean lead table the CRM reads; replaced atomically, so a failed run leaves the last one.",
)
def leads_clean(context: dg.AssetExecutionContext, lead_home: LeadHomeResource) -> dg.MaterializeResult:
    home = lead_home.lead_home()
    with home.connect() as conn:
        publication = publish_leads_clean(conn)
        summary = run_summary(conn)
        if not summary.reconciles:
            context.log.warning(f"row counts do not reconcile: {summary.as_dict()}")
        return dg.MaterializeResult(
            metadata={
                **profile_relation(conn, LEADS_CLEAN),
                "publication_id": publication.publication_id,
                **{f"summary/{k}": v for k, v in summary.as_dict().items()},
            }
        )
