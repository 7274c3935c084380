"""The batch location's jobs: the nightly full cleaning run, the inbox import, their schedule, the explicit
model training job and `leadfactory dedupe`. Corrections and notifications are the real-time location's
(pipelines/realtime).

Every job runs in one process (the in-process executor): the run holds the home's writer lock from its
first step to its last (LeadHomeResource), so two runs never interleave their writes.
"""

import dagster as dg

from pipelines.defs.quality.checks import FRESHNESS_CHECKS

TRAINING = dg.AssetSelection.groups("training")
LIBRARY_FLOW = dg.AssetSelection.all() - TRAINING

nightly_job = dg.define_asset_job(
    "nightly_job",
    selection=LIBRARY_FLOW,
    executor_def=dg.in_process_executor,
    description="Full cleaning run: import every declared source (snapshots re-read, new inbox files), "
                "standardise, match, gate, publish, write receipts.",
)

inbox_import_job = dg.define_asset_job(
    "inbox_import_job",
    # a specialist waits for the receipt: the sources' freshness is the nightly run's concern
    selection=LIBRARY_FLOW - dg.AssetSelection.checks(*FRESHNESS_CHECKS.values()),
    executor_def=dg.in_process_executor,
    description="Import the files the inbox sensor (or `leadfactory ingest`) names, then standardise, match, "
                "gate, publish and write each file's receipt.",
)

training_job = dg.define_asset_job(
    "training_job",
    # the standardised records' quality gate counts rejections too: train only on records that passed it
    selection=(TRAINING.upstream() | dg.AssetSelection.assets(["marts", "lead_rejections"])).required_multi_asset_neighbors(),
    executor_def=dg.in_process_executor,
    description="Standardise, then retrain the Splink model and rewrite pipelines/config/match_model.json.",
)

# `leadfactory dedupe`: one file on a throwaway home, through the same assets up to golden leads; no
# publication, and no data tests or quality gates (the file is not the library, nothing is published).
dedupe_job = dg.define_asset_job(
    "dedupe_job",
    selection=(dg.AssetSelection.groups("ingest", "reference", "standardise")
               | dg.AssetSelection.assets(["matching", "scored_pairs"], ["matching", "golden_leads"])).without_checks(),
    executor_def=dg.in_process_executor,
    description="Deduplicate files on their own (leadfactory dedupe): import, standardise, match, build leads.",
)

nightly_schedule = dg.ScheduleDefinition(
    name="nightly_schedule",
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
