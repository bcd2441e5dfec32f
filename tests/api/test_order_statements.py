"""What placing, starting to pay and being notified of an order cost in statements, pinned; and the stock
levels locked last: an order refused for stock costs a few reads, a placed one holds its levels'
locks only after its response is rendered and stored with its Idempotency-Key."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from inventory import services as stock
from inventory import soldout
from inventory.exceptions import InsufficientStock
from inventory.models import Reservation
from o2o.models import IdempotencyRecord
from orders.models import Order
from payments.models import Payment

from tests.api.conftest import idem, notify, place

pytestmark = pytest.mark.django_db

# Counted under the test's transaction, so savepoints count too.  Before: place 38, pay start 17,
# notification 23 (the order read twice, the paid total and time in two updates, the pending payments
# read twice, the response's shipments, returns and payments of a new order read), then 35, 15 and 21
# (the key's stores read apart from the key; the order locked by the view and again by the payment
# service; the notification's log row looked for before and read back after the service, for the answer).
PLACE_STATEMENTS = 34
PAY_START_STATEMENTS = 13
NOTIFY_STATEMENTS = 19
# The key with its stores (and its first-use stamp), the key's claim (3), the store, its region's pickup
# switch, the channel's config and warehouses (2), the refusal stored on the Idempotency-Key, and the
# savepoints of the rolled-back unit (6): no pricing, no promotion, no stock read, lock or write.
REJECTED_PLACE_STATEMENTS = 18


def _sqls(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries]


def _lines(skus):
    return [{"sku": skus[0].pk, "qty": 1}, {"sku": skus[1].pk, "qty": 2}]


def test_place_pay_start_and_notification_statements(partner, stocked, store_a, skus):
    _, client = partner
    place(client, store=store_a, lines=_lines(skus))  # the first request of a process warms caches
    with CaptureQueriesContext(connection) as placing:
        placed = place(client, store=store_a, lines=_lines(skus))
    assert placed.status_code == 201, placed.content
    body = placed.json()
    assert (body["payments"], body["shipments"], body["returns"]) == ([], [], [])
    assert [(ln["sku"], ln["qty"]) for ln in body["lines"]] == [(skus[0].pk, 1), (skus[1].pk, 2)]
    assert len(placing) <= PLACE_STATEMENTS, "\n".join(_sqls(placing))

    with CaptureQueriesContext(connection) as starting:
        started = client.post(f"/api/v1/orders/{body['id']}/payments/", {"tender": "sandbox"}, format="json",
                              **idem())
    assert started.status_code == 201, started.content
    order = Order.objects.get(pk=body["id"])
    assert started["ETag"] == placed["ETag"] and order.version == body["version"]
    assert len(starting) <= PAY_START_STATEMENTS, "\n".join(_sqls(starting))

    payment = Payment.objects.get(pk=started.json()["id"])
    with CaptureQueriesContext(connection) as notified:
        ack = notify(APIClient(), payment)
    assert ack.status_code == 200, ack.content
    order.refresh_from_db()
    assert order.status == "ready_for_pickup" and order.paid_total == order.total and order.paid_at
    assert order.updated_at >= order.paid_at
    assert len(notified) <= NOTIFY_STATEMENTS, "\n".join(_sqls(notified))


def test_stock_levels_are_locked_after_the_response_is_stored(partner, stocked, store_a, skus):
    _, client = partner
    with CaptureQueriesContext(connection) as placing:
        placed = place(client, store=store_a, lines=_lines(skus))
    assert placed.status_code == 201
    sqls = _sqls(placing)
    stored = next(i for i, sql in enumerate(sqls) if sql.startswith('UPDATE "o2o_idempotencyrecord"'))
    locked = next(i for i, sql in enumerate(sqls) if "FOR UPDATE OF l" in sql)
    assert stored < locked  # the key's stored response is written before the levels are locked
    # ... and commits with the order: its reservations exist and the key replays the same answer.
    number = placed.json()["number"]
    assert sorted(Reservation.objects.filter(reference=number).values_list("sku_id", "qty")) == [
        (skus[0].pk, 1), (skus[1].pk, 2)]
    assert IdempotencyRecord.objects.get().response_body["number"] == number


def test_an_order_losing_the_race_at_the_late_lock_rolls_back_with_its_key(partner, stocked, store_a, skus,
                                                                          monkeypatch):
    """The stock went between the lock-free read and the late reservation: nothing of the order stays,
    and the key keeps the refusal (a retry with it gets the same 409)."""
    _, client = partner
    reserve = stock.stock_reserve

    def sold_meanwhile(**kwargs):
        stock.stock_sell(warehouse=kwargs["warehouse"], lines=[(skus[1].pk, 4)], reference="COUNTER")
        return reserve(**kwargs)

    monkeypatch.setattr(stock, "stock_reserve", sold_meanwhile)
    headers = idem()
    body = {"fulfillment": "pickup", "store": store_a.pk, "lines": _lines(skus)}
    refused = client.post("/api/v1/orders/", body, format="json", **headers)
    assert refused.status_code == 409 and refused.json()["code"] == "insufficient_stock"
    assert not Order.objects.exists() and not Reservation.objects.exists()
    replay = client.post("/api/v1/orders/", body, format="json", **headers)
    assert replay.status_code == 409 and replay["Idempotent-Replayed"] == "true"


def test_an_order_for_a_sold_out_sku_is_refused_before_pricing_or_locks(partner, stocked, store_a, central,
                                                                       skus):
    _, client = partner
    sku = skus[0]
    for warehouse in (store_a.warehouse, central):  # every warehouse the order could come from
        stock.stock_sell(warehouse=warehouse, lines=[(sku.pk, 5 if warehouse == store_a.warehouse else 50)],
                         reference="GONE")
        with pytest.raises(InsufficientStock):
            stock.stock_sell(warehouse=warehouse, lines=[(sku.pk, 1)], reference="GONE-2")
    assert soldout.soldout_marked(warehouse_id=central.pk, sku_ids=[sku.pk])
    with CaptureQueriesContext(connection) as trying:
        refused = place(client, store=store_a, lines=[{"sku": sku.pk, "qty": 1}])
    assert refused.status_code == 409 and refused.json()["code"] == "insufficient_stock"
    sqls = _sqls(trying)
    assert not any("FOR UPDATE" in s or "inventory_stocklevel" in s or "promotions_" in s for s in sqls), sqls
    assert len(trying) <= REJECTED_PLACE_STATEMENTS, "\n".join(s[:90] for s in sqls)
    assert not Order.objects.exists()


def test_an_unknown_sku_is_still_named_before_stock(partner, stocked, store_a, skus):
    _, client = partner
    refused = place(client, store=store_a, lines=[{"sku": skus[0].pk, "qty": 1}, {"sku": 10**8, "qty": 1}])
    assert refused.status_code in (400, 422) and refused.json()["code"] != "insufficient_stock"


def test_without_the_gate_the_lock_free_read_refuses(partner, stocked, store_a, central, skus, settings):
    settings.STOCK_SOLDOUT_GATE = False
    _, client = partner
    with CaptureQueriesContext(connection) as trying:
        refused = place(client, store=store_a, lines=[{"sku": skus[0].pk, "qty": 51}])
    assert refused.status_code == 409 and refused.json()["code"] == "insufficient_stock"
    sqls = _sqls(trying)
    # Priced first (unknown or inactive SKUs are named as such), then the read: no hold, lock or write.
    assert not any("FOR UPDATE" in s or "promotions_promotionuse" in s or s.startswith("UPDATE \"promotions")
                   for s in sqls), sqls
    assert len(trying) <= REJECTED_PLACE_STATEMENTS + 3, "\n".join(s[:90] for s in sqls)
