"""Webhook tools for partners: ping a subscription, redeliver one delivery or a time range, and an
operator's allowlist of private receivers (an intranet endpoint the SSRF guard otherwise refuses)."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from integrations import webhooks
from integrations.models import WebhookDelivery, WebhookSubscription
from tests.api.conftest import idem, place
from tests.api.test_webhooks import Receiver, dispatch_outbox, send_due, subscribe

LOOPBACK_ONLY = ["127.0.0.0/8"]


@pytest.fixture
def intranet(settings):
    """The operator allows receivers on loopback (and plain http, as on an intranet); nothing else private."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    settings.WEBHOOK_ALLOWED_PRIVATE_RECEIVERS = LOOPBACK_ONLY
    settings.WEBHOOK_ALLOW_HTTP = True
    return settings


def ping(client, sub_id):
    return client.post(f"/api/v1/webhooks/subscriptions/{sub_id}/ping/", **idem())


@pytest.mark.django_db(transaction=True)
def test_an_allowed_intranet_receiver_gets_a_signed_ping_and_real_events(partner, intranet, stocked, store_a):
    _key, api = partner
    with Receiver() as receiver:
        sub = subscribe(api, receiver.url, ["order.created"])
        receiver.secret = sub["secret"]

        pinged = ping(api, sub["id"])
        place(api, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}])
        dispatch_outbox()
        send_due()

    assert pinged.status_code == 201, pinged.content
    delivery = pinged.json()
    assert delivery["topic"] == "webhook.ping" and delivery["status"] == "succeeded"
    assert delivery["last_status_code"] == 200 and delivery["attempts"] == 1
    assert [r["signed"] for r in receiver.requests] == [True, True]
    first = json.loads(receiver.requests[0]["body"])
    assert first["type"] == "webhook.ping" and first["data"]["subscription"] == sub["id"]
    assert first["id"] == delivery["event_id"]
    assert [e["type"] for e in receiver.applied.values()] == ["webhook.ping", "order.created"]
    listed = api.get("/api/v1/webhooks/deliveries/", {"topic": "webhook.ping"}).json()["results"]
    assert [d["id"] for d in listed] == [delivery["id"]]


@pytest.mark.django_db(transaction=True)
def test_a_failed_ping_is_reported_and_not_retried(partner, intranet):
    _key, api = partner
    with Receiver(fail_first=1, status=500) as receiver:
        sub = subscribe(api, receiver.url, ["*"])
        receiver.secret = sub["secret"]
        pinged = ping(api, sub["id"])

    assert pinged.status_code == 201
    body = pinged.json()
    assert (body["status"], body["last_status_code"], body["attempts"]) == ("dead", 500, 1)
    assert webhooks.deliveries_due_ids() == []
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_a_private_address_off_the_list_is_refused_at_subscription_and_at_sending(partner, settings):
    _key, api = partner
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOWED_PRIVATE_RECEIVERS = ["10.0.0.0/8", "hooks.intranet.example"]

    refused = [api.post("/api/v1/webhooks/subscriptions/", {"url": url, "events": ["order.paid"]},
                        format="json", **idem())
               for url in ("http://127.0.0.1:9/x", "http://192.168.1.10/x", "http://[::1]/x",
                           "http://169.254.169.254/latest/meta-data/")]
    assert [(r.status_code, r.json()["code"]) for r in refused] == [(400, "invalid_url")] * 4
    assert subscribe(api, "http://10.20.30.40/hook", ["order.paid"])
    assert subscribe(api, "http://HOOKS.intranet.example./hook", ["order.paid"])

    with Receiver() as receiver:
        settings.WEBHOOK_ALLOWED_PRIVATE_RECEIVERS = LOOPBACK_ONLY
        sub = subscribe(api, receiver.url, ["order.paid"])
        settings.WEBHOOK_ALLOWED_PRIVATE_RECEIVERS = ["10.0.0.0/8"]  # the operator narrows the list
        pinged = ping(api, sub["id"])

    assert pinged.json()["status"] == "dead" and pinged.json()["last_error"] == "address not allowed"
    assert receiver.requests == []


def test_the_allowlist_reads_hosts_and_networks(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_RECEIVERS = ["10.0.0.0/8", "192.168.1.5", "[::1]", "fd00::/8", "Hooks.Corp.",
                                                  "bad/33", ""]

    hosts, networks = webhooks.private_receivers()

    assert hosts == {"hooks.corp"}
    assert [str(n) for n in networks] == ["10.0.0.0/8", "192.168.1.5/32", "::1/128", "fd00::/8"]


def test_the_allowlist_comes_from_the_environment():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "o2o.settings",
           "WEBHOOK_ALLOWED_PRIVATE_RECEIVERS": "10.8.0.0/16, erp.corp.local"}
    out = subprocess.run([sys.executable, "-c", "from django.conf import settings; "
                          "print(repr(settings.WEBHOOK_ALLOWED_PRIVATE_RECEIVERS))"],
                         cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                         check=True)

    assert out.stdout.strip() == "['10.8.0.0/16', 'erp.corp.local']"


@pytest.mark.django_db
class TestPingAndRedeliverRules:
    def test_only_your_own_and_only_with_an_idempotency_key(self, partner, other_partner, intranet):
        _key, api = partner
        _other, other = other_partner
        sub = subscribe(api, "http://127.0.0.1:9/hook", ["*"])
        delivery = WebhookDelivery.objects.create(subscription_id=sub["id"], event_id="evt_1", topic="order.paid",
                                                  body="{}", give_up_at=timezone.now())

        assert ping(other, sub["id"]).status_code == 404
        assert other.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/redeliver/", **idem()).status_code == 404
        missing_key = api.post(f"/api/v1/webhooks/subscriptions/{sub['id']}/ping/")
        assert missing_key.status_code == 400 and missing_key.json()["code"] == "idempotency_key_required"

    def test_an_inactive_subscription_is_not_pinged(self, partner, intranet):
        _key, api = partner
        sub = subscribe(api, "http://127.0.0.1:9/hook", ["*"])
        WebhookSubscription.objects.filter(pk=sub["id"]).update(is_active=False)

        response = ping(api, sub["id"])

        assert response.status_code == 409 and response.json()["code"] == "subscription_inactive"
        assert not WebhookDelivery.objects.exists()

    def test_a_range_must_be_a_range_and_not_too_large(self, partner, intranet, monkeypatch):
        _key, api = partner
        sub = subscribe(api, "http://127.0.0.1:9/hook", ["*"])
        now = timezone.now()
        for n in range(2):
            WebhookDelivery.objects.create(subscription_id=sub["id"], event_id=f"evt_{n}", topic="order.paid",
                                           body="{}", give_up_at=now, status="dead")
        monkeypatch.setattr(webhooks, "REDELIVER_MAX", 1)

        backwards = api.post("/api/v1/webhooks/deliveries/redeliver/",
                             {"since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()},
                             format="json", **idem())
        too_many = api.post("/api/v1/webhooks/deliveries/redeliver/",
                            {"since": (now - timedelta(hours=1)).isoformat()}, format="json", **idem())

        assert backwards.status_code == 400 and "until" in backwards.json()["fields"]
        assert too_many.status_code == 400 and too_many.json()["code"] == "too_many_deliveries"
        assert WebhookDelivery.objects.filter(status="dead").count() == 2


@pytest.mark.django_db(transaction=True)
def test_redeliver_one_dead_letter_through_the_api(partner, intranet, stocked, store_a):
    intranet.WEBHOOK_RETRY_HOURS = 0  # the first failure is final
    _key, api = partner
    with Receiver(fail_first=1, status=503) as receiver:
        sub = subscribe(api, receiver.url, ["order.created"])
        receiver.secret = sub["secret"]
        place(api, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}])
        dispatch_outbox()
        send_due(rounds=1)
        dead = WebhookDelivery.objects.get()
        assert dead.status == "dead"

        intranet.WEBHOOK_RETRY_HOURS = 24
        response = api.post(f"/api/v1/webhooks/deliveries/{dead.pk}/redeliver/", **idem())
        assert response.status_code == 202, response.content
        assert response.json()["status"] == "pending"
        send_due()

    dead.refresh_from_db()
    assert dead.status == "succeeded" and dead.attempts == 2
    assert [r["event_id"] for r in receiver.requests] == [dead.event_id, dead.event_id]
    assert list(receiver.applied) == [dead.event_id]


@pytest.mark.django_db(transaction=True)
def test_redeliver_a_time_range(partner, other_partner, intranet):
    key, api = partner
    other_key, _other = other_partner
    now = timezone.now()
    with Receiver() as receiver:
        sub = subscribe(api, receiver.url, ["*"])
        receiver.secret = sub["secret"]
        other_sub = webhooks.subscription_create(key=other_key, url=receiver.url, events=["*"])

        def delivery(n, *, hours_ago, status="dead", subscription_id=sub["id"], topic="order.paid"):
            body = webhooks.event_body(event_id=f"evt_{n}", topic=topic, data={"n": n})
            row = WebhookDelivery.objects.create(subscription_id=subscription_id, event_id=f"evt_{n}",
                                                 topic=topic, body=body, give_up_at=now, status=status)
            WebhookDelivery.objects.filter(pk=row.pk).update(created_at=now - timedelta(hours=hours_ago))
            return row.pk

        inside = [delivery(1, hours_ago=5), delivery(2, hours_ago=3)]
        delivery(3, hours_ago=30)                                   # before the range
        delivered = delivery(4, hours_ago=4, status="succeeded")    # not dead: only when asked for
        delivery(5, hours_ago=4, subscription_id=other_sub.pk)      # another partner's
        delivery(6, hours_ago=4, topic="webhook.ping")              # pings are not redelivered

        dead_only = api.post("/api/v1/webhooks/deliveries/redeliver/",
                             {"since": (now - timedelta(hours=6)).isoformat(),
                              "until": (now - timedelta(hours=1)).isoformat()}, format="json", **idem())
        send_due()
        delivered_too = api.post("/api/v1/webhooks/deliveries/redeliver/",
                                 {"since": (now - timedelta(hours=6)).isoformat(), "status": ["succeeded"],
                                  "subscription": sub["id"]}, format="json", **idem())
        send_due()

    assert dead_only.status_code == 202, dead_only.content
    assert dead_only.json() == {"count": 2, "deliveries": inside}
    assert delivered_too.json()["deliveries"] == sorted([*inside, delivered])
    sent = [r["event_id"] for r in receiver.requests]
    assert sorted(sent[:2]) == ["evt_1", "evt_2"] and sorted(sent[2:]) == ["evt_1", "evt_2", "evt_4"]
    assert all(r["signed"] for r in receiver.requests)
    assert WebhookDelivery.objects.get(event_id="evt_3").status == "dead"
    assert WebhookDelivery.objects.get(event_id="evt_5").attempts == 0


@pytest.mark.django_db
def test_a_ping_inside_a_transaction_is_queued_not_sent(partner, intranet, django_capture_on_commit_callbacks,
                                                        monkeypatch):
    _key, api = partner
    queued = []
    monkeypatch.setattr(webhooks, "_enqueue", lambda ids, countdown=0: queued.extend(ids))
    with Receiver() as receiver:
        sub = subscribe(api, receiver.url, ["*"])
        with django_capture_on_commit_callbacks(execute=True):
            pinged = ping(api, sub["id"])

    assert pinged.status_code == 201
    assert pinged.json()["status"] == "pending" and pinged.json()["attempts"] == 0
    assert queued == [pinged.json()["id"]] and receiver.requests == []
