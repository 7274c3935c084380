"""Notifications to sales: an outbox of lead changes delivered to webhook endpoints, at least once.

Each notification is signed per the Standard Webhooks specification (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``: HMAC-SHA256 by the ``standardwebhooks`` package) and POSTed as
JSON. The notification id is the ``webhook-id`` of every attempt, so a receiver that saw it already can
drop the repeat (the idempotency key). Every attempt is appended to ``notification_attempts`` (nothing is
updated in place): a notification is delivered once an attempt succeeded, due again after a backoff
while attempts fail, and parked with the last reason after ``MAX_ATTEMPTS``. A failing endpoint only delays
its own notifications: HTTP happens outside any transaction, with a short timeout.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import duckdb
from standardwebhooks import Webhook

log = logging.getLogger(__name__)

SCHEMA = "notify"
OUTBOX = f"{SCHEMA}.notification_outbox"      # one row per change to a published lead
ATTEMPTS = f"{SCHEMA}.notification_attempts"  # one row per delivery attempt to one endpoint
WEBHOOK_URL_ENV = "LEADFACTORY_WEBHOOK_URL"
WEBHOOK_SECRET_ENV = "LEADFACTORY_WEBHOOK_SECRET"
FIRST_RETRY = timedelta(seconds=5)   # then doubling: 5 s, 10 s, 20 s ... up to MAX_RETRY
MAX_RETRY = timedelta(hours=1)
MAX_ATTEMPTS = 20                    # about 14 hours of retries, then parked with the reason
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    secret: str  # whsec_... (base64 after the prefix), as Standard Webhooks gives it


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    failed: int     # will be retried
    parked: int     # gave up, with the reason kept

    def render(self) -> str:
        return f"delivered {self.delivered}, failed (will retry) {self.failed}, parked {self.parked}"


def endpoints_from_env() -> list[Endpoint]:
    """The endpoint of ``LEADFACTORY_WEBHOOK_URL`` / ``LEADFACTORY_WEBHOOK_SECRET``, if set."""
    url, secret = os.environ.get(WEBHOOK_URL_ENV), os.environ.get(WEBHOOK_SECRET_ENV)
    if not url:
        return []
    if not secret:
        raise ValueError(f"{WEBHOOK_URL_ENV} is set but {WEBHOOK_SECRET_ENV} is not: notifications must be signed")
    Webhook(secret)  # a malformed secret fails here, not at the first delivery
    return [Endpoint("default", url, secret)]


def ensure_notification_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"create schema if not exists {SCHEMA}")
    conn.execute(f"""create table if not exists {OUTBOX} (
        notification_id varchar primary key, lead_id varchar, change varchar, payload json, created_at timestamp)""")
    conn.execute(f"""create table if not exists {ATTEMPTS} (
        notification_id varchar, endpoint varchar, attempt integer, attempted_at timestamp,
        outcome varchar, status_code integer, error varchar)""")


def retry_delay(attempt: int) -> timedelta:
    """How long after failed attempt number ``attempt`` (1-based) the next one is due."""
    return min(FIRST_RETRY * (2 ** (attempt - 1)), MAX_RETRY)


def due_notifications(conn: duckdb.DuckDBPyConnection, endpoint: Endpoint, now: datetime) -> list[tuple]:
    """(notification_id, payload, attempts so far) of the notifications due for ``endpoint`` at ``now``,
    oldest first."""
    first = FIRST_RETRY.total_seconds()
    cap = MAX_RETRY.total_seconds()
    return conn.execute(f"""
        with tried as (
            select notification_id, count(*) as attempts, max(attempted_at) as last_at,
                   bool_or(outcome = 'delivered') as delivered, bool_or(outcome = 'parked') as parked
            from {ATTEMPTS} where endpoint = ? group by notification_id
        )
        select o.notification_id, o.payload::varchar, coalesce(t.attempts, 0)
        from {OUTBOX} o left join tried t using (notification_id)
        where not coalesce(t.delivered or t.parked, false)
          and (t.last_at is null
               or t.last_at + to_seconds(least({first} * pow(2, t.attempts - 1), {cap})) <= ?::timestamp)
        order by o.created_at, o.notification_id
    """, [endpoint.name, now.replace(tzinfo=None)]).fetchall()


def post_signed(endpoint: Endpoint, notification_id: str, body: str, now: datetime) -> tuple[bool, int | None, str | None]:
    """One signed POST; (accepted, HTTP status, error in words)."""
    signature = Webhook(endpoint.secret).sign(notification_id, now.astimezone(timezone.utc), body)
    request = urllib.request.Request(endpoint.url, data=body.encode("utf-8"), method="POST", headers={
        "content-type": "application/json",
        "webhook-id": notification_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    })
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return 200 <= response.status < 300, response.status, None
    except urllib.error.HTTPError as exc:
        return False, exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, None, f"endpoint unreachable: {reason}"


def deliver_due(conn: duckdb.DuckDBPyConnection, endpoints: list[Endpoint], now: datetime | None = None) -> DeliveryReport:
    """Send every notification that is due to every endpoint, once each; record each attempt."""
    ensure_notification_tables(conn)
    delivered = failed = parked = 0
    for endpoint in endpoints:
        for notification_id, body, attempts in due_notifications(conn, endpoint, now or datetime.now(timezone.utc)):
            at = now or datetime.now(timezone.utc)
            ok, status, error = post_signed(endpoint, notification_id, body, at)
            attempt = attempts + 1
            outcome = "delivered" if ok else ("parked" if attempt >= MAX_ATTEMPTS else "failed")
            conn.execute(f"insert into {ATTEMPTS} values (?, ?, ?, ?, ?, ?, ?)",
                         [notification_id, endpoint.name, attempt, at.astimezone(timezone.utc).replace(tzinfo=None),
                          outcome, status, error])
            delivered += ok
            failed += outcome == "failed"
            parked += outcome == "parked"
            if not ok:
                log.warning("notification %s to %s: attempt %d failed (%s)%s", notification_id, endpoint.name,
                            attempt, error, "; parked" if outcome == "parked" else "")
    return DeliveryReport(delivered, failed, parked)


def enqueue(conn: duckdb.DuckDBPyConnection, notification_id: str, lead_id: str, change: str, payload: dict,
            created_at: datetime | None = None) -> None:
    """Add one notification to the outbox (inside the caller's transaction: the change and its notification
    commit together); a notification id already there is not added twice."""
    ensure_notification_tables(conn)
    conn.execute(f"insert into {OUTBOX} values (?, ?, ?, ?, ?) on conflict do nothing",
                 [notification_id, lead_id, change, json.dumps(payload, ensure_ascii=False, default=str),
                  (created_at or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)])
