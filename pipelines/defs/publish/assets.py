"""Publication of the lead tables the CRM reads: golden leads, members, review queue, lead history."""

import dagster as dg

from pipelines.defs.resources import DUCKDB_WRITER_POOL, LeadHomeResource
from pipelines.lib.quality.profiling import profile_relation
from pipelines.lib.quality.quality import write_quality_report
from pipelines.lib.publish.publish import LEAD_MEMBERS, LEAD_REVIEW_QUEUE, LEADS_CLEAN, LEADS_UNREACHABLE, publish_leads, publish_version
from pipelines.lib.corrections.apply import flush_history
from pipelines.lib.history.backup import back_up_after_publication, mirror_working_state
from pipelines.lib.identity.library import library_of
from pipelines.lib.publish.postgres import sync_crm
from pipelines.lib.publish.receipts import write_receipts
from pipelines.lib.quality.summary import run_summary
from pipelines.lib.refresh import refresh_plan

PUBLISHED = {
    "leads_clean": "One golden lead per person: surviving values per field, every valid contact kept.",
    "leads_unreachable": "Leads with no valid mobile, e-mail, WeChat or QQ: quarantined with the reason and rows to fix.",
    "lead_members": "Every accepted record with its lead_id and why it was merged (the explanation).",
    "lead_review_queue": "Pairs for a person to decide: the review band, name conflicts, chaining-guard cuts.",
    "lead_events": "Append-only history of leads created, merged and split.",
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["published", name], description=text, group_name="publish", kinds={"duckdb"},
                     deps=[dg.AssetKey(["matching", "golden_leads"]), dg.AssetKey(["marts", "lead_rejections"])])
        for name, text in PUBLISHED.items()
    ],
    pool=DUCKDB_WRITER_POOL,
)
def published_leads(context: dg.AssetExecutionContext, lead_home: LeadHomeResource):
    """All four tables in one transaction: a failed run leaves the previous publication."""
    home = lead_home.lead_home()
    with home.connect() as conn:
        plan = refresh_plan(conn, context.run.run_id, context.run.root_run_id)
        publication = publish_leads(conn, incremental=plan.incremental, cause_id=context.run.run_id,
                                    actor=context.run.job_name)
        version = publish_version(conn, home.versions_dir, f"{'incremental' if plan.incremental else 'full'} run",
                                  context.run.run_id)
        history_rows = flush_history(conn, library_of(home.root).root, version.version)
        context.log.info(f"published version {version.version}; {history_rows:,} history rows")
        crm = sync_crm(conn, home.versions_dir, library_of(home.root).root, version)
        if crm is not None:
            context.log.info(crm.render())
        mirror_working_state(conn, library_of(home.root))
    back_up_after_publication(home.root, context.log)
    with home.connect() as conn:
        summary = run_summary(conn)
        if not summary.reconciles:
            context.log.warning(f"row counts do not reconcile: {summary.as_dict()}")
        # Numeric metadata on every full run: Dagster plots these over time (contactable %, duplicate rate
        # ...). An incremental run changes a few leads of many: its figures wait for the nightly run.
        report, quality = write_quality_report(conn, home.root) if not plan.incremental else (None, {})
        for name in PUBLISHED:
            relation = f"published.{name}"
            metadata = {"publication_id": publication.publication_id, "version": version.version,
                        "refresh": plan.describe()}
            if relation in (LEADS_CLEAN, LEADS_UNREACHABLE, LEAD_MEMBERS, LEAD_REVIEW_QUEUE) and not plan.incremental:
                metadata.update(profile_relation(conn, relation))
            else:
                metadata["row_count"] = conn.execute(f"select count(*) from {relation}").fetchone()[0]
            if relation == LEADS_CLEAN:
                metadata.update({f"summary/{k}": v for k, v in summary.as_dict().items()})
                metadata.update({f"quality/{k}": v for k, v in quality.items()
                                 if isinstance(v, (int, float)) and not isinstance(v, bool)})
                if report is not None:
                    metadata["quality_report"] = dg.MetadataValue.path(str(report))
            yield dg.MaterializeResult(asset_key=["published", name], metadata=metadata)


@dg.asset(
    key=["outbox", "import_receipts"],
    deps=[dg.AssetKey(["published", name]) for name in PUBLISHED],
    group_name="publish",
    kinds={"excel"},
    pool=DUCKDB_WRITER_POOL,
    description="A receipt workbook in <home>/outbox/ for every imported file that has none yet: rows read, new "
                "leads, merged, for review, rejected (reconciling), with the rows and reasons.",
)
def import_receipts(context: dg.AssetExecutionContext, lead_home: LeadHomeResource) -> dg.MaterializeResult:
    home = lead_home.lead_home()
    with home.connect() as conn:
        written = write_receipts(conn, library_of(home.root), home.outbox_dir)
    for receipt in written:
        context.log.info(f"receipt: {receipt.render()}")
    return dg.MaterializeResult(metadata={
        "receipts_written": len(written),
        "all_reconcile": all(r.reconciles for r in written),
        "receipts": dg.MetadataValue.json([
            {"file": r.file_name, "status": r.status, "rows_read": r.rows_read, "new_leads": r.new_leads,
             "merged": r.rows_merged, "review": r.rows_in_review, "rejected": r.rows_rejected,
             "receipt": str(r.path)} for r in written]),
    })
