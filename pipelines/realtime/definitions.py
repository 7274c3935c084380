"""The real-time code location (workspace.yaml: leadfactory_realtime): corrections and notifications."""

import dagster as dg

from pipelines.defs.resources import LeadHomeResource
from pipelines.realtime.corrections.assets import applied_corrections
from pipelines.realtime.corrections.sensors import events_sensor
from pipelines.realtime.jobs import correction_job, notification_job
from pipelines.realtime.notify.assets import notification_deliveries
from pipelines.realtime.notify.sensors import notifications_sensor


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[applied_corrections, notification_deliveries],
        sensors=[events_sensor, notifications_sensor],
        jobs=[correction_job, notification_job],
        resources={"lead_home": LeadHomeResource()},
    )
