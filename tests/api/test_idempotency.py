"""Idempotency-Key: replay, reuse with another payload, concurrent duplicates, scope, TTL and purge."""

import functools
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from inventory import services as stock
from o2o.idempotency import idempotency_purge
from o2o.models import IdempotencyRecord
from orders import services as order_services
from orders.models import Order
from tests.api.conftest import bearer
from tests.concurrency import run_at_once

ORDERS = "/api/v1/orders/"


def body(store, skus, qty=1):
    return {"fulfillment": "pickup", "store": store.pk, "lines": [{"sku": skus[0].pk, "qty": qty}]}


@pytest.mark.django_db
class TestSemantics:
    def test_missing_or_malformed_key_is_400_and_nothing_happens(self, partner, stocked, store_a):
        _key, client = partner

        missing = client.post(ORDERS, body(store_a, stocked), format="json")
        spaced = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="a b")
        too_long = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)

        for response in (missing, spaced, too_long):
            assert response.status_code == 400
            assert response.json()["code"] == "idempotency_key_required"
        assert not Order.objects.exists()

    def test_a_retry_replays_the_first_response(self, partner, stocked, store_a):
        _key, client = partner

        first = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="order-1")
        retry = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="order-1")

        assert first.status_code == retry.status_code == 201
        assert retry.json() == first.json()
        assert retry["Idempotent-Replayed"] == "true"
        assert retry["ETag"] == first["ETag"] and retry["Location"] == first["Location"]
        assert Order.objects.count() == 1

    def test_key_order_in_the_body_does_not_matter(self, partner, stocked, store_a):
        _key, client = partner
        payload = body(store_a, stocked)
        shuffled = dict(reversed(list(payload.items())))

        first = client.post(ORDERS, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-order")
        retry = client.post(ORDERS, shuffled, format="json", HTTP_IDEMPOTENCY_KEY="k-order")

        assert retry.status_code == 201 and retry.json()["id"] == first.json()["id"]

    def test_same_key_with_another_payload_or_path_is_422(self, partner, stocked, store_a):
        _key, client = partner
        first = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="k1")

        other_body = client.post(ORDERS, body(store_a, stocked, qty=2), format="json",
                                 HTTP_IDEMPOTENCY_KEY="k1")
        other_path = client.post(f"{ORDERS}{first.json()['id']}/cancel/", {}, format="json",
                                 HTTP_IDEMPOTENCY_KEY="k1")

        assert other_body.status_code == other_path.status_code == 422
        assert other_body.json()["code"] == other_path.json()["code"] == "idempotency_key_reused"
        assert Order.objects.count() == 1
        assert Order.objects.get().status == "pending_payment"

    def test_keys_are_scoped_per_caller(self, partner, other_partner, stocked, store_a):
        _key, client = partner
        _other, other = other_partner

        mine = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="shared")
        theirs = other.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="shared")

        assert mine.status_code == theirs.status_code == 201
        assert mine.json()["id"] != theirs.json()["id"]
        assert "Idempotent-Replayed" not in theirs

    def test_staff_keys_are_scoped_per_user(self, clerk_a, partner, stocked, store_a):
        _key, client = partner
        order = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="p").json()
        _user, staff = clerk_a

        cancelled = staff.post(f"{ORDERS}{order['id']}/cancel/", {}, format="json", HTTP_IDEMPOTENCY_KEY="s")
        again = staff.post(f"{ORDERS}{order['id']}/cancel/", {}, format="json", HTTP_IDEMPOTENCY_KEY="s")

        assert cancelled.status_code == again.status_code == 200
        assert again["Idempotent-Replayed"] == "true"
        assert IdempotencyRecord.objects.get(key="s").owner.startswith("user:")

    def test_a_rejected_input_does_not_use_up_the_key(self, partner, stocked, store_a):
        _key, client = partner

        bad = client.post(ORDERS, {"fulfillment": "pickup", "lines": []}, format="json",
                          HTTP_IDEMPOTENCY_KEY="fix")
        fixed = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="fix")

        assert bad.status_code == 400
        assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed

    def test_a_domain_refusal_is_kept_and_replayed(self, partner, stocked, store_a, central):
        _key, client = partner
        want = body(store_a, stocked, qty=60)

        refused = client.post(ORDERS, want, format="json", HTTP_IDEMPOTENCY_KEY="big")
        stock.stock_receive(warehouse=central, lines=[(stocked[0].pk, 100)])
        retried = client.post(ORDERS, want, format="json", HTTP_IDEMPOTENCY_KEY="big")
        new_key = client.post(ORDERS, want, format="json", HTTP_IDEMPOTENCY_KEY="big-2")

        assert refused.status_code == retried.status_code == 409
        assert retried.json() == refused.json() and retried["Idempotent-Replayed"] == "true"
        assert new_key.status_code == 201

    def test_a_key_left_in_progress_is_taken_over_later(self, partner, stocked, store_a, settings):
        key, client = partner
        settings.IDEMPOTENCY_LOCK_SECONDS = 60
        first = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="crash")
        record = IdempotencyRecord.objects.get(key="crash")
        # As if the process died after claiming the key: the row is still "in progress".
        IdempotencyRecord.objects.filter(pk=record.pk).update(status="in_progress", response_body=None,
                                                              locked_at=timezone.now())
        busy = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="crash")
        IdempotencyRecord.objects.filter(pk=record.pk).update(locked_at=timezone.now() - timedelta(minutes=5))
        taken_over = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="crash")

        assert first.status_code == 201
        assert busy.status_code == 409 and busy.json()["code"] == "idempotency_in_progress"
        assert taken_over.status_code == 201
        assert IdempotencyRecord.objects.get(key="crash").status == "completed"

    def test_reads_need_no_key(self, partner):
        _key, client = partner

        assert client.get(ORDERS).status_code == 200
        assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_purge_keeps_records_for_the_ttl(partner, stocked, store_a, settings):
    _key, client = partner
    client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="old")
    client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="new")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    IdempotencyRecord.objects.filter(key="new").update(created_at=timezone.now() - timedelta(hours=23))

    assert idempotency_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 1
    assert idempotency_purge() == 1


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_duplicate_gets_409_while_the_first_runs(make_key, stocked, store_a, monkeypatch):
    _key, raw = make_key()
    started, release = threading.Event(), threading.Event()
    place = order_services.order_place

    def slow_place(**kwargs):
        started.set()
        release.wait(10)
        return place(**kwargs)

    monkeypatch.setattr(order_services, "order_place", slow_place)
    first = {}

    def run_first():
        try:
            first["response"] = bearer(raw).post(ORDERS, body(store_a, stocked), format="json",
                                                 HTTP_IDEMPOTENCY_KEY="race")
        finally:
            connection.close()

    thread = threading.Thread(target=run_first)
    thread.start()
    assert started.wait(10)
    duplicate = bearer(raw).post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="race")
    reused = bearer(raw).post(ORDERS, body(store_a, stocked, qty=2), format="json",
                              HTTP_IDEMPOTENCY_KEY="race")
    release.set()
    thread.join(20)
    after = bearer(raw).post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="race")

    assert duplicate.status_code == 409 and duplicate.json()["code"] == "idempotency_in_progress"
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert first["response"].status_code == 201
    assert after.status_code == 201 and after.json()["id"] == first["response"].json()["id"]
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_simultaneous_duplicates_create_one_order(make_key, stocked, store_a):
    _key, raw = make_key()
    clients = [bearer(raw) for _ in range(8)]
    payload = body(store_a, stocked)
    responses = run_at_once([functools.partial(c.post, ORDERS, payload, format="json", HTTP_IDEMPOTENCY_KEY="burst")
                             for c in clients], timeout=30)

    statuses = sorted(r.status_code for r in responses)
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(responses) == 8 and set(statuses) <= {201, 409}
    assert 201 in statuses and len(created) == 1
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_write_commits_only_with_its_keys_response(make_key, stocked, store_a, monkeypatch):
    """The database goes away after the order is written but before its key is completed: the order
    is rolled back with it, so a retry that takes the key over makes the one and only order."""
    from django.db import OperationalError

    from o2o import idempotency

    _key, raw = make_key()
    client = bearer(raw)
    real_complete = idempotency._complete
    calls = []

    def complete_then_lose_the_connection(record, response):
        calls.append(response.status_code)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_complete(record, response)

    monkeypatch.setattr(idempotency, "_complete", complete_then_lose_the_connection)
    lost = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="lost-1")

    assert lost.status_code == 503 and lost.json()["code"] == "database_unavailable"
    assert calls == [201]
    assert not Order.objects.exists()
    assert not IdempotencyRecord.objects.filter(key="lost-1").exists()
    retry = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="lost-1")
    again = client.post(ORDERS, body(store_a, stocked), format="json", HTTP_IDEMPOTENCY_KEY="lost-1")
    assert retry.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == retry.json()["id"]
    assert Order.objects.count() == 1
