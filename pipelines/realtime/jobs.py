"""The real-time location's jobs, one per concern; each runs in one process, like the batch jobs."""

import dagster as dg

correction_job = dg.define_asset_job(
    "correction_job",
    selection=dg.AssetSelection.groups("corrections"),
    executor_def=dg.in_process_executor,
    description="Apply new events and manual edits to the published leads: history, notifications, a new version.",
)

notification_job = dg.define_asset_job(
    "notification_job",
    selection=dg.AssetSelection.groups("notify"),
    executor_def=dg.in_process_executor,
    description="Deliver the due notifications to the configured webhooks (leadfactory notify send).",
)
