"""The nightly full cleaning run and its schedule."""

import dagster as dg

nightly_job = dg.define_asset_job(
    "nightly_job",
    selection=dg.AssetSelection.all(),
    description="Full cleaning run: ingest every file, standardise, publish.",
)

nightly_schedule = dg.ScheduleDefinition(
    name="nightly_schedule",
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
