"""Notifications to sales: signed per Standard Webhooks, delivered at least once to a real HTTP server on
127.0.0.1 that verifies every signature and fails on purpose, retried with backoff, never lost."""

from __future__ import annotations

import base64
import socket
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest
from standardwebhooks import Webhook

from pipelines.lib.notify.webhooks import (ATTEMPTS, MAX_ATTEMPTS, Endpoint, deliver_due, endpoints_from_env, enqueue,
                                           retry_delay)

SECRET = "whsec_" + base64.b64encode(b"a secret only the two ends know").decode()


class Receiver:
    """A webhook endpoint: verifies each signature (401 if wrong), fails the first ``fail_first`` valid
    deliveries with 503, and records the webhook ids it accepted."""

    def __init__(self, port: int = 0, fail_first: int = 0, secret: str = SECRET):
        self.accepted: list[str] = []
        self.rejected_signatures = 0
        self.fail_left = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    Webhook(secret).verify(body, dict(self.headers))
                except Exception:
                    receiver.rejected_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                if receiver.fail_left > 0:
                    receiver.fail_left -= 1
                    self.send_response(503)
                else:
                    receiver.accepted.append(self.headers["webhook-id"])
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/leads"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def conn():
    with duckdb.connect() as connection:
        enqueue(connection, "n1", "L1", "event", {"lead_id": "L1", "field": "mobile", "new": "+8613900000002"})
        enqueue(connection, "n2", "L2", "manual_edit", {"lead_id": "L2", "field": "owner", "new": "王五"})
        enqueue(connection, "n1", "L1", "event", {"again": True})  # the same change committed twice: once
        yield connection


def test_a_failing_endpoint_gets_each_notification_once_it_recovers_signed_and_with_a_stable_id(conn):
    receiver = Receiver(fail_first=2)
    try:
        endpoint = [Endpoint("sales", receiver.url, SECRET)]
        t0 = datetime.now(timezone.utc)
        first = deliver_due(conn, endpoint, t0)
        assert (first.delivered, first.failed) == (0, 2)  # two 503s
        # not due again before the backoff has passed
        assert deliver_due(conn, endpoint, t0 + retry_delay(1) - timedelta(seconds=1)).delivered == 0
        second = deliver_due(conn, endpoint, t0 + retry_delay(1))
        assert (second.delivered, second.failed) == (2, 0)
        assert deliver_due(conn, endpoint, t0 + timedelta(hours=2)).delivered == 0  # delivered: never again
        assert sorted(receiver.accepted) == ["n1", "n2"] and receiver.rejected_signatures == 0
        attempts = conn.execute(f"select notification_id, attempt, outcome from {ATTEMPTS} order by 1, 2").fetchall()
        assert attempts == [("n1", 1, "failed"), ("n1", 2, "delivered"), ("n2", 1, "failed"), ("n2", 2, "delivered")]
    finally:
        receiver.close()


def test_an_endpoint_that_is_down_then_comes_back_loses_nothing(conn):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = [Endpoint("sales", f"http://127.0.0.1:{port}/hooks/leads", SECRET)]
    t0 = datetime.now(timezone.utc)
    down = deliver_due(conn, endpoint, t0)
    assert down.failed == 2
    error = conn.execute(f"select error from {ATTEMPTS} limit 1").fetchone()[0]
    assert "unreachable" in error
    receiver = Receiver(port=port)
    try:
        back = deliver_due(conn, endpoint, t0 + retry_delay(1))
        assert back.delivered == 2 and sorted(receiver.accepted) == ["n1", "n2"]
    finally:
        receiver.close()


def test_a_wrong_secret_is_refused_by_the_receiver_and_parked_after_the_last_attempt(conn):
    receiver = Receiver()
    try:
        wrong = "whsec_" + base64.b64encode(b"not the shared secret").decode()
        endpoint = [Endpoint("sales", receiver.url, wrong)]
        at = datetime.now(timezone.utc)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            report = deliver_due(conn, endpoint, at)
            at += retry_delay(attempt)
        assert report.parked == 2 and receiver.accepted == [] and receiver.rejected_signatures == 2 * MAX_ATTEMPTS
        reasons = conn.execute(f"select distinct error from {ATTEMPTS} where outcome = 'parked'").fetchall()
        assert reasons == [("HTTP 401 Unauthorized",)]
        assert deliver_due(conn, endpoint, at + timedelta(days=1)).parked == 0  # parked stays parked
    finally:
        receiver.close()


def test_the_endpoint_comes_from_the_environment_and_must_be_signed(monkeypatch):
    monkeypatch.delenv("LEADFACTORY_WEBHOOK_URL", raising=False)
    assert endpoints_from_env() == []
    monkeypatch.setenv("LEADFACTORY_WEBHOOK_URL", "http://127.0.0.1:9/hooks")
    monkeypatch.delenv("LEADFACTORY_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ValueError, match="must be signed"):
        endpoints_from_env()
    monkeypatch.setenv("LEADFACTORY_WEBHOOK_SECRET", SECRET)
    assert endpoints_from_env() == [Endpoint("default", "http://127.0.0.1:9/hooks", SECRET)]
