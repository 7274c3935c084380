"""The nightly full cleaning run, its schedule, and the explicit model training job."""

import dagster as dg

TRAINING = dg.AssetSelection.groups("training")

nightly_job = dg.define_asset_job(
    "nightly_job",
    selection=dg.AssetSelection.all() - TRAINING,
    description="Full cleaning run: ingest every file, standardise, match, publish.",
)

training_job = dg.define_asset_job(
    "training_job",
    selection=TRAINING.upstream(),
    description="Standardise, then retrain the Splink model and rewrite pipelines/config/match_model.json.",
)

nightly_schedule = dg.ScheduleDefinition(
    name="nightly_schedule",
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
