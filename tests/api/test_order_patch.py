"""PATCH /api/v1/orders/{id}/: what a partner may change before fulfilment, always with If-Match."""

import io

import pytest
from django.core.management import call_command

from inventory.models import Reservation
from orders.models import Order, OrderEvent
from tests.api.conftest import idem, pay
from tests.api.test_orders import ORDERS, placed, ship_order

pytestmark = pytest.mark.django_db


def patch(client, order_id, body, etag=None):
    headers = {"HTTP_IF_MATCH": etag} if etag else {}
    return client.patch(f"{ORDERS}{order_id}/", body, format="json", **headers)


def etag_of(client, order_id):
    return client.get(f"{ORDERS}{order_id}/")["ETag"]


def test_address_and_remark_change_before_shipping_then_409_once_fulfilment_started(partner, stocked):
    _key, client = partner
    order = ship_order(client, stocked)
    etag = etag_of(client, order["id"])

    missing = patch(client, order["id"], {"remark": "call first"})
    changed = patch(client, order["id"], {"ship_address": "9 River Road", "remark": "call first",
                                          "customer_name": "韩梅梅"}, etag)
    stale = patch(client, order["id"], {"remark": "again"}, etag)

    assert missing.status_code == 428 and missing.json()["code"] == "precondition_required"
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert (body["ship_address"], body["remark"], body["customer_name"]) == ("9 River Road", "call first", "韩梅梅")
    assert changed["ETag"] != etag and body["version"] == int(changed["ETag"].strip('"'))
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
    assert Order.objects.get(pk=order["id"]).remark == "call first"
    assert OrderEvent.objects.filter(order_id=order["id"], kind="update").count() == 1

    # Once a shipment is made, the order can no longer be changed
    assert client.post(f"{ORDERS}{order['id']}/shipments/", {}, format="json", **idem()).status_code == 201
    late = patch(client, order["id"], {"ship_address": "1 Other Road"}, etag_of(client, order["id"]))
    assert late.status_code == 409 and late.json()["code"] == "fulfilment_started"
    assert Order.objects.get(pk=order["id"]).ship_address == "9 River Road"


def test_pickup_store_moves_while_unpaid_with_its_stock_hold(partner, stocked, store_a, store_b):
    _key, client = partner
    order = placed(client, store_a, stocked)
    sku = stocked[0].pk

    moved = patch(client, order["id"], {"store": store_b.pk}, etag_of(client, order["id"]))

    assert moved.status_code == 200, moved.content
    assert moved.json()["store"] == store_b.pk
    held = Reservation.objects.filter(reference=order["number"], status=Reservation.Status.ACTIVE)
    assert [(r.sku_id, r.qty) for r in held] == [(sku, 2)]
    assert held[0].warehouse_id != store_a.warehouse_id  # store B has none: held centrally, transferred
    assert Order.objects.get(pk=order["id"]).needs_transfer
    call_command("audit_ledgers", stdout=io.StringIO())

    # Once paid, the store stays
    pay(client, order["id"])
    paid = patch(client, order["id"], {"store": store_a.pk}, etag_of(client, order["id"]))
    assert paid.status_code == 409 and paid.json()["code"] in {"order_already_paid", "fulfilment_started"}
    assert Order.objects.get(pk=order["id"]).store_id == store_b.pk


def test_bad_changes_are_refused_and_change_nothing(partner, other_partner, clerk_a, stocked, store_a, store_b):
    _key, client = partner
    _other, other = other_partner
    order = placed(client, store_a, stocked)
    etag = etag_of(client, order["id"])
    _user, staff = clerk_a

    empty = patch(client, order["id"], {}, etag)
    unknown = patch(client, order["id"], {"total": "1.00"}, etag)
    address_on_pickup = patch(client, order["id"], {"ship_address": "1 Lake Road"}, etag)
    too_long = patch(client, order["id"], {"remark": "字" * 301}, etag)
    not_theirs = patch(other, order["id"], {"remark": "x"}, etag)
    by_staff = patch(staff, order["id"], {"remark": "x"}, etag)

    assert empty.status_code == 400
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_field"
    assert address_on_pickup.status_code == 400 and "ship_address" in address_on_pickup.json()["fields"]
    assert too_long.status_code == 400 and "remark" in too_long.json()["fields"]
    assert not_theirs.status_code == 404
    assert by_staff.status_code == 403
    assert etag_of(client, order["id"]) == etag
    cancelled = client.post(f"{ORDERS}{order['id']}/cancel/", {}, format="json", **idem())
    assert cancelled.status_code == 200
    closed = patch(client, order["id"], {"remark": "x"}, cancelled["ETag"])
    assert closed.status_code == 409 and closed.json()["code"] == "invalid_order_state"
