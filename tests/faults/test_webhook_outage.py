"""Webhook deliveries against a real HTTP receiver on loopback, sent by real Celery workers:

* the receiver is down (connections refused), then answers 500, then comes back: every
  delivery is retried with growing backoff and each event is applied exactly once;
* the outage outlasts the retry window: the deliveries are dead letters, nothing is sent
  after that, and a replay delivers each event once;
* a worker is killed with SIGKILL in the middle of sending: the lease expires, the beat sweep
  sends again, and the receiver (which drops duplicates by event id) applies each event once.

Private Redis, retry windows shortened through tests/faults/fault_settings.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection, transaction
from django.utils import timezone

from integrations import webhooks
from o2o.apiauth import ORDERS_READ, partner_key_create
from o2o.celery import app
from integrations.models import WebhookAttempt, WebhookDelivery
from o2o.models import OutboxMessage
from o2o.outbox import outbox_dispatch, outbox_emit
from tests.faults.conftest import assert_ledgers_clean
from tests.faults.procs import kill, process_env, worker_start
from tests.faults.redis_private import _free_port

pytestmark = pytest.mark.faults

EVENTS = 30
RETRY_BASE = 1.0
RETRY_MAX = 4.0


class Receiver:
    """A partner endpoint that can be down (port closed), failing (``status``) or up (200).

    Like a careful receiver it verifies the signature and applies each event id once.
    """

    def __init__(self, secret: str = "", delay: float = 0.0) -> None:
        self.port = _free_port()
        self.secret, self.delay = secret, delay
        self.failing_status: int | None = None
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.inflight = 0
        self.applied: Counter = Counter()  # event id -> times applied (must stay 1)
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.inflight += 1
                time.sleep(receiver.delay)
                signed = webhooks.signature_verify(receiver.secret, self.headers["X-O2O-Signature"], body)
                status = receiver.failing_status or (200 if signed else 401)
                with receiver.lock:
                    event_id = json.loads(body)["id"]
                    receiver.inflight -= 1
                    receiver.requests.append({"event_id": event_id, "status": status, "at": time.monotonic()})
                    if status == 200 and event_id not in receiver.applied:
                        receiver.applied[event_id] += 1
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"no")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def received(self) -> int:
        with self.lock:
            return len(self.requests)


@pytest.fixture
def subscription(transactional_db, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    key, _raw = partner_key_create(name="faults shop", channel="mini_program", scopes=[ORDERS_READ])
    receiver = Receiver()
    sub = webhooks.subscription_create(key=key, url=receiver.url, events=["order.paid"])
    receiver.secret = sub.secret
    yield sub, receiver
    receiver.down()


@pytest.fixture
def worker_env(private_broker):
    return process_env(db=connection.settings_dict, broker_url=private_broker.url,
                       O2O_FAULTS_QUEUE=app.conf.task_default_queue, O2O_FAULTS_WEBHOOK_TIMEOUT="2",
                       O2O_FAULTS_WEBHOOK_RETRY_BASE=str(RETRY_BASE), O2O_FAULTS_WEBHOOK_RETRY_MAX=str(RETRY_MAX))


def _events(count: int) -> list[str]:
    """Order events through the outbox; the webhook consumer makes one delivery per event (queued)."""
    ids = []
    for i in range(count):
        with transaction.atomic():
            ids.append(outbox_emit(topic="order.paid", payload={"order_id": 10_000 + i, "channel": "mini_program",
                                                                 "partner": "", "store_id": None, "version": 2}).pk)
    for message_id in ids:
        outbox_dispatch(message_id=message_id)
    return [f"evt_{i}" for i in ids]


def _wait(predicate, seconds: float, every=None, every_seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    next_tick = time.monotonic() + every_seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        if every is not None and time.monotonic() >= next_tick:
            every()
            next_tick = time.monotonic() + every_seconds
        time.sleep(0.2)
    return predicate()


def _by_status() -> Counter:
    return Counter(WebhookDelivery.objects.values_list("status", flat=True))


def _gaps(delivery: WebhookDelivery) -> list[float]:
    times = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("id").values_list("attempted_at", flat=True))
    return [(b - a).total_seconds() for a, b in zip(times, times[1:])]


def test_receiver_down_then_back_gets_each_event_once(subscription, worker_env, tmp_path):
    sub, receiver = subscription
    # Given the receiver is down (its port refuses connections) while events are raised
    worker = worker_start(worker_env, queue=app.conf.task_default_queue, log=tmp_path / "worker.log")
    try:
        event_ids = _events(EVENTS)
        assert _wait(lambda: WebhookAttempt.objects.count() >= 2 * EVENTS, 60)
        # When it comes back answering 500 for a while, then 200
        receiver.failing_status = 500
        receiver.up()
        assert _wait(lambda: receiver.received() >= EVENTS, 60)
        receiver.failing_status = None
        # Then every delivery succeeds, by the retries alone (no sweep runs here)
        assert _wait(lambda: _by_status() == {"succeeded": EVENTS}, 90), _by_status()
    finally:
        kill(worker)
    assert sorted(receiver.applied) == sorted(event_ids)
    assert set(receiver.applied.values()) == {1}
    oks = Counter(r["event_id"] for r in receiver.requests if r["status"] == 200)
    assert oks == Counter({e: 1 for e in event_ids})  # sent until delivered, then never again
    assert {r["status"] for r in receiver.requests} == {500, 200}
    retried_thrice = 0
    for delivery in WebhookDelivery.objects.all():
        attempts = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("id"))
        assert len(attempts) >= 2 and attempts[-1].succeeded and not any(a.succeeded for a in attempts[:-1])
        assert {a.status_code for a in attempts[:-1]} <= {None, 500}
        assert any(a.status_code is None and "Connect" in a.error for a in attempts)
        # with backoff: the n-th retry never before base * 2^(n-1) (less 10 % jitter), capped; a
        # busy worker may send later than that, never sooner
        gaps = _gaps(delivery)
        floors = [min(RETRY_MAX, RETRY_BASE * 2 ** n) * 0.9 for n in range(len(gaps))]
        assert all(gap >= floor - 0.05 for gap, floor in zip(gaps, floors)), (gaps, floors)
        retried_thrice += len(gaps) >= 2
    assert retried_thrice >= EVENTS // 2
    assert_ledgers_clean()


def test_outage_past_the_retry_window_dead_letters_then_replays_once(subscription, worker_env, settings, tmp_path):
    sub, receiver = subscription
    # Given a retry window of 20 s and a receiver that stays down past it
    settings.WEBHOOK_RETRY_HOURS = 20 / 3600
    worker = worker_start(worker_env, queue=app.conf.task_default_queue, log=tmp_path / "worker.log")
    try:
        event_ids = _events(EVENTS)
        # Then each delivery is tried, retried, and ends as a dead letter
        assert _wait(lambda: _by_status() == {"dead": EVENTS}, 60), _by_status()
        assert all(d.attempts >= 2 for d in WebhookDelivery.objects.all())
        # and nothing is sent to it once it is back
        receiver.up()
        time.sleep(RETRY_MAX + 1)
        assert receiver.received() == 0 and _by_status() == {"dead": EVENTS}
        # When the dead letters are replayed (the admin action)
        settings.WEBHOOK_RETRY_HOURS = 24
        assert webhooks.deliveries_replay(ids=WebhookDelivery.objects.values_list("id", flat=True)) == EVENTS
        assert _wait(lambda: _by_status() == {"succeeded": EVENTS}, 60), _by_status()
    finally:
        kill(worker)
    # Then each event was applied once
    assert sorted(receiver.applied) == sorted(event_ids) and set(receiver.applied.values()) == {1}
    assert len(receiver.requests) == EVENTS
    assert_ledgers_clean()


def test_worker_killed_mid_send_each_event_applied_once(subscription, worker_env, tmp_path):
    sub, receiver = subscription
    # Given a slow receiver (each answer takes 0.3 s) and deliveries queued for a worker
    receiver.delay = 0.3
    receiver.up()
    event_ids = _events(EVENTS)
    worker = worker_start(worker_env, queue=app.conf.task_default_queue, log=tmp_path / "worker.log")
    try:
        assert _wait(lambda: receiver.received() >= EVENTS // 4 and receiver.inflight > 0, 60)
        # When the worker is killed with SIGKILL while it is sending
        kill(worker)
        at_kill = receiver.received()
        assert 0 < at_kill < EVENTS, "the kill did not land mid-delivery"
        killed_leases = WebhookDelivery.objects.filter(status="pending", locked_until__gt=timezone.now())
        assert killed_leases.exists(), "no delivery was in flight when the worker was killed"
        # and a worker is started again, with beat's sweep of due deliveries running
        worker = worker_start(worker_env, queue=app.conf.task_default_queue, log=tmp_path / "worker.log")
        done = _wait(lambda: _by_status() == {"succeeded": EVENTS}, 100, every=webhooks.webhook_deliveries_due)
        assert done, _by_status()
    finally:
        kill(worker)
    # Then every event reached the receiver and was applied exactly once (a send cut by the
    # kill may arrive twice: the receiver drops the copy by event id)
    assert sorted(receiver.applied) == sorted(event_ids) and set(receiver.applied.values()) == {1}
    assert WebhookDelivery.objects.count() == EVENTS
    assert OutboxMessage.objects.filter(topic="order.paid").count() == EVENTS
    assert not WebhookDelivery.objects.filter(delivered_at__isnull=True).exists()
    assert_ledgers_clean()
