"""Webhooks: a loopback receiver that fails and recovers loses nothing and applies nothing twice;
signatures verify; dead letters are visible and replayable in the admin."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection, transaction
from django.utils import timezone

from integrations import webhooks
from o2o.apiauth import ORDERS_READ, STOCK_READ
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from o2o.models import OutboxMessage
from o2o.outbox import outbox_dispatch, outbox_emit
from tests.api.conftest import bearer, idem, pay, place


class Receiver:
    """A partner's endpoint on loopback: fails the first ``fail_first`` requests, then answers 200.

    Like a careful receiver it verifies the signature and applies each event id once.
    """

    def __init__(self, fail_first: int = 0, status: int = 500):
        self.fail_first, self.status = fail_first, status
        self.secret = ""
        self.requests: list[dict] = []
        self.applied: dict[str, dict] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    signed = webhooks.signature_verify(receiver.secret, self.headers["X-O2O-Signature"], body)
                    receiver.requests.append({"path": self.path, "signed": signed, "body": body,
                                              "event_id": self.headers["X-O2O-Event-Id"]})
                    failing = len(receiver.requests) <= receiver.fail_first
                    if signed and not failing:
                        event = json.loads(body)
                        receiver.applied.setdefault(event["id"], event)
                self.send_response(receiver.status if failing else 200)
                self.end_headers()
                self.wfile.write(b"no" if failing else b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def private_ok(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


def dispatch_outbox():
    for message_id in OutboxMessage.objects.order_by("id").values_list("id", flat=True):
        outbox_dispatch(message_id=message_id)


def send_due(rounds: int = 20) -> None:
    """What the workers do: send what is due; then pretend the backoff has passed, until nothing is left."""
    for _ in range(rounds):
        for delivery_id in webhooks.deliveries_due_ids():
            webhooks.webhook_send(delivery_id=delivery_id)
        pending = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
        if not pending.exists():
            return
        pending.update(next_attempt_at=timezone.now())


def subscribe(client, url, events):
    response = client.post("/api/v1/webhooks/subscriptions/", {"url": url, "events": events}, format="json",
                           **idem())
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_recovers_nothing_lost_nothing_twice(partner, other_partner, stocked, store_a,
                                                                private_ok):
    _key, client = partner
    _other, other = other_partner
    with Receiver(fail_first=2) as receiver:
        sub = subscribe(client, receiver.url, ["order.created", "order.paid", "order.ready_for_pickup"])
        receiver.secret = sub["secret"]
        subscribe(other, receiver.url.replace("/hook", "/other"), ["*"])

        order = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}]).json()
        pay(client, order["id"])
        dispatch_outbox()
        dispatch_outbox()  # a redelivered outbox message adds no delivery
        send_due()

        assert WebhookDelivery.objects.count() == 3
        assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
        assert all(r["signed"] for r in receiver.requests)
        assert not [r for r in receiver.requests if r["path"] == "/other"]  # the web shop sees none of it
        events = sorted(receiver.applied.values(), key=lambda e: e["data"]["version"])
        assert [e["type"] for e in events] == ["order.created", "order.paid", "order.ready_for_pickup"]
        assert all(e["data"]["order_id"] == order["id"] for e in events)
        assert len(receiver.requests) == 3 + 2  # two failed attempts, then each event once
        failed = WebhookAttempt.objects.filter(succeeded=False)
        assert failed.count() == 2 and set(failed.values_list("status_code", flat=True)) == {500}

        # Replaying a delivered event sends the same id again; the receiver keeps one copy.
        delivered = WebhookDelivery.objects.get(topic="order.paid")
        webhooks.deliveries_replay(ids=[delivered.pk])
        send_due()

        assert len(receiver.requests) == 6
        assert receiver.requests[-1]["event_id"] == delivered.event_id
        assert len(receiver.applied) == 3


@pytest.mark.django_db(transaction=True)
def test_dead_letter_then_replay_from_the_admin(partner, stocked, store_a, private_ok, settings, hq_user,
                                                client):
    settings.WEBHOOK_RETRY_HOURS = 0  # the window closes at once: the first failure is final
    _key, api = partner
    with Receiver(fail_first=1, status=503) as receiver:
        sub = subscribe(api, receiver.url, ["order.created"])
        receiver.secret = sub["secret"]
        place(api, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}])
        dispatch_outbox()
        send_due(rounds=1)

        dead = WebhookDelivery.objects.get()
        assert dead.status == "dead" and dead.last_status_code == 503 and dead.attempts == 1

        client.force_login(hq_user)
        page = client.get("/admin/integrations/webhookdelivery/", {"status__exact": "dead"})
        assert page.status_code == 200 and dead.event_id in page.content.decode()
        settings.WEBHOOK_RETRY_HOURS = 24
        client.post("/admin/integrations/webhookdelivery/", {"action": "replay", "_selected_action": [dead.pk]})
        send_due()

    dead.refresh_from_db()
    assert dead.status == "succeeded" and dead.attempts == 2
    assert list(receiver.applied) == [dead.event_id]
    detail = client.get(f"/admin/integrations/webhookdelivery/{dead.pk}/change/")
    assert detail.status_code == 200 and "503" in detail.content.decode()


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_receiver_is_retried_with_growing_backoff(partner, stocked, store_a, private_ok):
    _key, api = partner
    with Receiver() as gone:
        url = gone.url  # the port is closed once the receiver is gone
    subscribe(api, url, ["order.created"])
    place(api, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}])
    dispatch_outbox()
    delivery = WebhookDelivery.objects.get()

    gaps = []
    for _ in range(3):
        started = timezone.now()
        webhooks.webhook_send(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        gaps.append((delivery.next_attempt_at - started).total_seconds())
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())

    assert delivery.status == "pending" and delivery.attempts == 3
    assert gaps[0] < gaps[1] < gaps[2]
    assert WebhookAttempt.objects.filter(delivery=delivery, status_code=None).count() == 3
    assert "Connect" in WebhookAttempt.objects.first().error


@pytest.mark.django_db(transaction=True)
def test_sending_never_runs_inside_a_transaction(partner, stocked, store_a, private_ok):
    with transaction.atomic():
        with pytest.raises(RuntimeError):
            webhooks.webhook_send(delivery_id=1)
    assert not connection.in_atomic_block


@pytest.mark.django_db
class TestSubscriptionsApi:
    def test_private_addresses_and_plain_http_are_refused_by_default(self, partner):
        _key, client = partner

        loopback = client.post("/api/v1/webhooks/subscriptions/", {"url": "https://127.0.0.1/x",
                                                                   "events": ["order.paid"]},
                               format="json", **idem())
        private = client.post("/api/v1/webhooks/subscriptions/", {"url": "https://10.1.2.3/x",
                                                                  "events": ["order.paid"]},
                              format="json", **idem())
        not_a_url = client.post("/api/v1/webhooks/subscriptions/", {"url": "ftp://x",
                                                                    "events": ["order.paid"]},
                                format="json", **idem())

        for response in (loopback, private, not_a_url):
            assert response.status_code == 400 and response.json()["code"] == "invalid_url"

    def test_events_must_be_known_and_within_the_keys_scopes(self, make_key, private_ok):
        _key, raw = make_key(scopes=[STOCK_READ])
        client = bearer(raw)

        unknown = client.post("/api/v1/webhooks/subscriptions/", {"url": "http://127.0.0.1/x",
                                                                  "events": ["order.eaten"]},
                              format="json", **idem())
        not_allowed = client.post("/api/v1/webhooks/subscriptions/",
                                  {"url": "http://127.0.0.1/x", "events": ["order.paid"]}, format="json",
                                  **idem())
        allowed = client.post("/api/v1/webhooks/subscriptions/", {"url": "http://127.0.0.1/x",
                                                                  "events": ["stock.availability_changed"]},
                              format="json", **idem())

        assert unknown.status_code == 400 and "events.0" in unknown.json()["fields"]
        assert not_allowed.status_code == 400 and not_allowed.json()["code"] == "event_not_allowed"
        assert allowed.status_code == 201 and allowed.json()["secret"].startswith("whsec_")

    def test_subscriptions_are_private_to_their_key(self, partner, other_partner, clerk_a, private_ok):
        _key, client = partner
        _other, other = other_partner
        sub = subscribe(client, "http://127.0.0.1/x", ["*"])

        assert other.get(f"/api/v1/webhooks/subscriptions/{sub['id']}/").status_code == 404
        assert other.get("/api/v1/webhooks/subscriptions/").json()["results"] == []
        assert other.delete(f"/api/v1/webhooks/subscriptions/{sub['id']}/").status_code == 404
        assert "secret" not in client.get(f"/api/v1/webhooks/subscriptions/{sub['id']}/").json()
        _user, staff = clerk_a
        assert staff.get("/api/v1/webhooks/subscriptions/").status_code == 403
        assert client.delete(f"/api/v1/webhooks/subscriptions/{sub['id']}/").status_code == 204
        assert not WebhookSubscription.objects.exists()

    def test_fanout_respects_channel_store_and_scope(self, make_key, private_ok, store_a, store_b):
        mini, _raw = make_key(name="mini")
        restricted, _raw2 = make_key(name="store a only", stores=[store_a])
        reader, _raw3 = make_key(name="no orders", scopes=[STOCK_READ])
        web, _raw4 = make_key(channel="web", name="web")
        members, _raw5 = make_key(channel="web", name="crm", scopes=["members:read", ORDERS_READ])
        for key in (mini, restricted, reader, web, members):
            webhooks.subscription_create(key=key, url="http://127.0.0.1/x", events=["*"])
        with transaction.atomic():
            at_b = outbox_emit(topic="order.paid", payload={"order_id": 1, "channel": "mini_program",
                                                           "partner": "", "store_id": store_b.pk, "version": 3})
            points = outbox_emit(topic="member.points_changed",
                                 payload={"member_id": 9, "points_available": 10})

        outbox_dispatch(message_id=at_b.pk)
        outbox_dispatch(message_id=points.pk)

        def keys(topic):
            deliveries = WebhookDelivery.objects.filter(topic=topic)
            return set(deliveries.values_list("subscription__partner_key__name", flat=True))
        assert keys("order.paid") == {"mini"}
        assert keys("member.points_changed") == {"mini", "store a only", "web", "crm"}
        body = json.loads(WebhookDelivery.objects.get(topic="order.paid").body)
        assert body["id"] == f"evt_{at_b.pk}" and body["data"]["version"] == 3


def test_signature_verification():
    body = b'{"id":"evt_1"}'
    header = webhooks.signature_header("whsec_x", body)

    assert webhooks.signature_verify("whsec_x", header, body)
    assert not webhooks.signature_verify("whsec_y", header, body)
    assert not webhooks.signature_verify("whsec_x", header, body + b" ")
    old = webhooks.signature_header("whsec_x", body, timestamp=int(time.time()) - 3600)
    assert not webhooks.signature_verify("whsec_x", old, body)
    assert not webhooks.signature_verify("whsec_x", "garbage", body)


@pytest.mark.django_db
def test_deliveries_log_is_visible_to_the_partner(partner, private_ok, stocked, store_a):
    key, client = partner
    subscribe(client, "http://127.0.0.1/x", ["order.created"])
    place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}])
    dispatch_outbox()

    listed = client.get("/api/v1/webhooks/deliveries/", {"status": "pending"}).json()["results"]

    assert [d["topic"] for d in listed] == ["order.created"]
    assert WebhookDelivery.objects.get().give_up_at > timezone.now() + timedelta(hours=23)
