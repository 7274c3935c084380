"""Corrections: the business systems' events and specialists' manual edits, laid over the published leads
within seconds (pipelines/lib/corrections/apply.py), each change in history, in a new version and in the
notifications outbox."""

import dagster as dg

from pipelines.defs.resources import DUCKDB_WRITER_POOL, LeadHomeResource
from pipelines.lib.corrections.apply import (PENDING_HISTORY, ensure_correction_tables, events_dir_of, flush_history,
                                             publish_corrections, record_events)
from pipelines.lib.corrections.rules import load_correction_rules
from pipelines.lib.faults import kill_point
from pipelines.lib.history.backup import back_up_after_publication
from pipelines.lib.identity.library import library_of
from pipelines.lib.publish.postgres import sync_crm
from pipelines.lib.publish.publish import LEADS_CLEAN, LEADS_UNREACHABLE, publish_version
from pipelines.lib.quality.profiling import relation_exists


class CorrectionConfig(dg.Config):
    max_lines: int = 0  # at most this many event lines per run (0: all that are pending)


@dg.asset(
    key=["corrections", "applied_corrections"],
    group_name="corrections",
    kinds={"duckdb", "delta"},
    deps=[dg.AssetKey(["published", "leads_clean"])],
    pool=DUCKDB_WRITER_POOL,
    description="Event lines from <home>/events and manual edits, each applied, a no-op, superseded, skipped or "
                "dead-lettered with the reason; the changes laid over the published leads with their history, "
                "notifications and a new version.",
)
def applied_corrections(context: dg.AssetExecutionContext, config: CorrectionConfig,
                        lead_home: LeadHomeResource) -> dg.MaterializeResult:
    home = lead_home.lead_home()
    library = library_of(home.root)
    events_dir = events_dir_of(home.root)
    events_dir.mkdir(parents=True, exist_ok=True)
    with home.connect() as conn:
        if not relation_exists(conn, LEADS_CLEAN):
            raise dg.Failure("尚未发布线索 (nothing published yet): events wait until the first run "
                             "(`leadfactory run`) has published leads")
        report = record_events(conn, library, events_dir, load_correction_rules(), max_lines=config.max_lines or None)
        kill_point("corrections_recorded")  # tests: killed between the library commit and the publication
        changed, batch_id = publish_corrections(conn, library)
        kill_point("corrections_published")  # tests: killed before the version and the history flush
        ensure_correction_tables(conn)
        unflushed = conn.execute(f"select count(*) from {PENDING_HISTORY}").fetchone()[0]
        published = None
        if changed or unflushed:  # unflushed: a run that died after its commit left its version to this one
            # corrections change leads, never members or the review queue: only the lead tables are written,
            # and in them only the leads changed since the last version: this batch's, and any a dead run
            # committed without publishing (each change has its history row waiting to be flushed)
            since_version = sorted(set(changed) | {row[0] for row in conn.execute(
                f"select distinct lead_id from {PENDING_HISTORY} where lead_id is not null").fetchall()})
            published = publish_version(conn, home.versions_dir, "corrections", batch_id,
                                        changed=(LEADS_CLEAN, LEADS_UNREACHABLE), changed_leads=since_version)
        version = published.version if published is not None else None
        history_rows = flush_history(conn, library.root, version)
        if published is not None:
            crm = sync_crm(conn, home.versions_dir, library.root, published, changed_leads=since_version)
            if crm is not None:
                context.log.info(crm.render())
    if version is not None:
        back_up_after_publication(home.root, context.log)
    report.leads_changed, report.version = len(changed), version
    context.log.info(report.render())
    return dg.MaterializeResult(metadata={
        "events_read": report.lines, **{f"outcome/{k}": v for k, v in report.outcomes.items()},
        "reconciles": report.reconciles, "leads_changed": len(changed), "history_rows": history_rows,
        "version": version if version is not None else -1, "report": report.render(),
    })
