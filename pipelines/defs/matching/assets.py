"""Matching: Splink scores pairs of standardised records; clustering builds golden leads with stable ids."""

import dagster as dg

from pipelines.defs.resources import DUCKDB_WRITER_POOL, LeadHomeResource
from pipelines.lib.publish.publish import LEAD_RECORDS
from pipelines.lib.matching.leads import build_leads
from pipelines.lib.matching.match_config import load_match_config
from pipelines.lib.matching.incremental import CHANGED_RECORDS, SCOPE, stage_changed_records, stage_scope
from pipelines.lib.matching.matching import (prepare_match_input, score_changed_records, score_pairs, train_model,
                                             update_match_input)
from pipelines.lib.refresh import refresh_plan


@dg.asset(
    key=["matching", "scored_pairs"],
    deps=[dg.AssetKey(["marts", "lead_records"])],
    group_name="matching",
    kinds={"splink", "duckdb"},
    pool=DUCKDB_WRITER_POOL,
    description="Candidate pairs scored by the trained Splink model, with a per-field explanation.",
)
def scored_pairs(context: dg.AssetExecutionContext, lead_home: LeadHomeResource) -> dg.MaterializeResult:
    config = load_match_config()
    with lead_home.lead_home().connect() as conn:
        plan = refresh_plan(conn, context.run.run_id, context.run.root_run_id)
        if plan.incremental:
            # the changed records against the library and each other; the library's own pairs stand
            changed = stage_changed_records(conn)
            shared = update_match_input(conn, LEAD_RECORDS, config, CHANGED_RECORDS)
            pairs = score_changed_records(conn, config.model_path, config.review, CHANGED_RECORDS)
            context.log.info(f"{changed:,} changed records scored against the library: {pairs:,} pairs")
        else:
            shared = prepare_match_input(conn, LEAD_RECORDS, config)
            pairs = score_pairs(conn, config.model_path, config.review)
    return dg.MaterializeResult(metadata={
        "refresh": plan.describe(),
        "pairs_scored": pairs,
        **{f"shared_values_ignored/{kind}": n for kind, n in shared.items()},
        "model": dg.MetadataValue.path(str(config.model_path)),
    })


@dg.asset(
    key=["matching", "golden_leads"],
    deps=[scored_pairs],
    group_name="matching",
    kinds={"duckdb"},
    pool=DUCKDB_WRITER_POOL,
    description="Clusters with stable lead ids, survivorship, members, review queue and lead events, ready to publish.",
)
def golden_leads(context: dg.AssetExecutionContext, lead_home: LeadHomeResource) -> dg.MaterializeResult:
    config = load_match_config()
    with lead_home.lead_home().connect() as conn:
        plan = refresh_plan(conn, context.run.run_id, context.run.root_run_id)
        scope = None
        if plan.incremental:
            stage_changed_records(conn)
            scoped = stage_scope(conn, config)
            context.log.info(f"rebuilding the leads of {scoped:,} records the changed records touch")
            scope = SCOPE
        stats = build_leads(conn, LEAD_RECORDS, config, scope=scope)
    context.log.info(f"leads built: {stats.as_dict()}")
    return dg.MaterializeResult(metadata={
        "refresh": plan.describe(),
        "records": stats.records,
        "pairs_scored": stats.pairs_scored,
        "pairs_merged": stats.pairs_merged,
        "pairs_sent_to_review": stats.pairs_to_review,
        "clusters_split_by_chaining_guard": stats.clusters_split_by_guard,
        "largest_cluster_before_guard": stats.largest_cluster_before_guard,
        "largest_lead": stats.largest_lead,
        "leads": stats.leads,
        "leads_merged": stats.leads_merged,
        "leads_split": stats.leads_split,
    })


@dg.asset(
    key=["matching", "match_model"],
    deps=[dg.AssetKey(["marts", "lead_records"])],
    group_name="training",
    kinds={"splink"},
    pool=DUCKDB_WRITER_POOL,
    description="Retrains the Splink model on the library's records and rewrites pipelines/config/match_model.json. "
                "Run explicitly (training_job); the nightly job only uses the committed model.",
)
def match_model(context: dg.AssetExecutionContext, lead_home: LeadHomeResource) -> dg.MaterializeResult:
    config = load_match_config()
    with lead_home.lead_home().connect() as conn:
        prepare_match_input(conn, LEAD_RECORDS, config)
        model = train_model(conn, config.model_path)
    return dg.MaterializeResult(metadata={
        "model": dg.MetadataValue.path(str(config.model_path)),
        "probability_two_random_records_match": model["probability_two_random_records_match"],
    })
