"""A client that gives up after random short timeouts and retries with the same sale UUID or
external order id: every sale and order exists once, with one set of payments, stock moves,
points and events (real HTTP against the live test server)."""

import uuid
from collections import Counter

import httpx
import pytest

from bench.load import order_body, pos_body
from inventory.models import StockMove
from members.models import PointsEntry
from o2o.models import OutboxMessage
from orders.models import Order
from payments.models import Payment
from tests.faults.conftest import assert_ledgers_clean

pytestmark = pytest.mark.urls("bench.urls")

SALES = 12
ORDERS = 12
MAX_ATTEMPTS = 12


def _until_ok(http: httpx.Client, path: str, body: dict, rng) -> tuple[dict, int]:
    """Post until a 2xx arrives; each attempt with a random timeout, often too short to wait."""
    tries = 0
    for tries in range(1, MAX_ATTEMPTS + 1):
        timeout = rng.choice([0.002, 0.01, 0.05, 10.0]) if tries < MAX_ATTEMPTS else 30.0
        try:
            resp = http.post(path, json=body, timeout=timeout)
        except httpx.TimeoutException:
            continue
        assert resp.status_code in (200, 201), resp.text
        return resp.json(), tries
    raise AssertionError(f"no answer after {MAX_ATTEMPTS} attempts")


def test_retries_with_the_same_key_apply_once(world, live_server, rng):
    # Given sales and online orders, each retried after random client timeouts
    with httpx.Client(base_url=live_server.url) as http:
        sales, orders, attempts = {}, {}, 0
        for i in range(SALES):
            body = pos_body(world, i)
            answer, tries = _until_ok(http, "/bench/pos-sale/", body, rng)
            # and once more after success, as a client that never saw the answer would
            again, _ = _until_ok(http, "/bench/pos-sale/", body, rng)
            assert again["number"] == answer["number"]
            sales[body["client_uuid"]] = answer["number"]
            attempts += tries
        for i in range(ORDERS):
            body = order_body(world, i, "pickup" if i % 2 else "ship_warehouse")
            answer, tries = _until_ok(http, "/bench/order-place/", body, rng)
            again, _ = _until_ok(http, "/bench/order-place/", body, rng)
            assert again["number"] == answer["number"] and again["created"] is False
            orders[body["external_id"]] = answer["number"]
            attempts += tries
    # Then each key made exactly one order, with exactly its own effects
    assert attempts > SALES + ORDERS, "no request timed out: the fault was not injected"
    assert Order.objects.filter(client_uuid__in=[uuid.UUID(k) for k in sales]).count() == SALES
    assert Order.objects.filter(external_id__in=list(orders)).count() == ORDERS
    numbers = list(sales.values())
    per_order_payments = Counter(Payment.objects.filter(reference__in=numbers).values_list("reference", flat=True))
    assert per_order_payments == {n: 2 for n in numbers}  # cash + card, once each
    moves = Counter(StockMove.objects.filter(reference__in=numbers).values_list("reference", flat=True))
    assert moves == {n: world["lines"] for n in numbers}
    earned = Counter(PointsEntry.objects.filter(order_number__in=numbers, kind="earn")
                     .values_list("order_number", flat=True))
    assert earned == {n: 1 for n in numbers}
    paid_events = Counter(m.payload.get("order") for m in OutboxMessage.objects.filter(topic="order.paid"))
    assert all(paid_events[n] == 1 for n in numbers)
    assert_ledgers_clean()
