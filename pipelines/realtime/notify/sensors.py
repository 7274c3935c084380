"""The sender's sensor: while a webhook endpoint is configured, the notification job runs every few seconds
(it sends only what is due, so an idle run is cheap); never two at once."""

from __future__ import annotations

import dagster as dg

from pipelines.realtime.jobs import notification_job
from pipelines.defs.run_health import UNFINISHED
from pipelines.lib.notify.webhooks import WEBHOOK_URL_ENV, endpoints_from_env



def evaluate_notifications(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    try:
        if not endpoints_from_env():
            return dg.SkipReason(f"no webhook endpoint configured ({WEBHOOK_URL_ENV})")
    except ValueError as exc:
        return dg.SkipReason(str(exc))
    if instance.get_run_records(filters=dg.RunsFilter(job_name=notification_job.name, statuses=UNFINISHED), limit=1):
        return dg.SkipReason("a delivery run is under way")
    return dg.RunRequest()


@dg.sensor(job=notification_job, minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Delivers due notifications to the configured webhooks, as `leadfactory notify send` does.")
def notifications_sensor(context: dg.SensorEvaluationContext):
    return evaluate_notifications(context.instance)
