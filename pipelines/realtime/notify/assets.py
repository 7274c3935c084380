"""Notifications to sales: the outbox's due entries delivered to the configured webhooks (signed per
Standard Webhooks), each attempt recorded; a failing endpoint delays only its own notifications."""

import dagster as dg

from pipelines.defs.resources import DUCKDB_WRITER_POOL, LeadHomeResource
from pipelines.lib.notify.webhooks import deliver_due, endpoints_from_env


@dg.asset(
    key=["notify", "notification_deliveries"],
    group_name="notify",
    kinds={"duckdb"},
    pool=DUCKDB_WRITER_POOL,
    description="Due notifications POSTed to LEADFACTORY_WEBHOOK_URL (signed with LEADFACTORY_WEBHOOK_SECRET), "
                "retried with backoff until delivered or parked with the reason; every attempt appended.",
)
def notification_deliveries(context: dg.AssetExecutionContext, lead_home: LeadHomeResource) -> dg.MaterializeResult:
    endpoints = endpoints_from_env()
    if not endpoints:
        context.log.info("no webhook endpoint configured (LEADFACTORY_WEBHOOK_URL): nothing sent")
        return dg.MaterializeResult(metadata={"endpoints": 0, "delivered": 0, "failed": 0, "parked": 0})
    home = lead_home.lead_home()
    with home.connect() as conn:
        report = deliver_due(conn, endpoints)
    context.log.info(f"notifications: {report.render()}")
    return dg.MaterializeResult(metadata={"endpoints": len(endpoints), "delivered": report.delivered,
                                          "failed": report.failed, "parked": report.parked,
                                          "report": report.render()})
