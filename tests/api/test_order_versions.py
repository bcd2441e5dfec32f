"""An order's version moves with every change a partner can see, If-Match guards every order action,
and every order webhook carries the version so a receiver can put them in order."""

import json

import pytest
from rest_framework.test import APIClient

from integrations.models import WebhookDelivery
from members.services.points import points_adjust
from members.tests.factories import MemberFactory
from o2o.models import OutboxMessage
from o2o.outbox import outbox_dispatch
from orders.models import Return
from payments.models import Payment
from tests.api.conftest import idem, notify, pay, place
from tests.api.test_orders import ORDERS, placed, ship_order

pytestmark = pytest.mark.django_db


def handed_over(client, clerk, store, skus):
    order = placed(client, store, skus)
    pay(client, order["id"])
    _user, staff = clerk
    assert staff.post("/api/v1/pickups/handover/", {"code": order["pickup_code"]}, format="json",
                      **idem()).status_code == 200
    return order


def return_one(client, order, store, **headers):
    return client.post(f"{ORDERS}{order['id']}/returns/",
                       {"store": store.pk, "lines": [{"order_line": order["lines"][0]["id"], "qty": 1}]},
                       format="json", **headers, **idem())


def test_a_second_return_with_a_stale_if_match_is_412_and_changes_nothing(partner, clerk_a, stocked, store_a):
    _key, client = partner
    order = handed_over(client, clerk_a, store_a, stocked)
    etag = client.get(f"{ORDERS}{order['id']}/")["ETag"]

    first = return_one(client, order, store_a, HTTP_IF_MATCH=etag)
    second = return_one(client, order, store_a, HTTP_IF_MATCH=etag)

    assert first.status_code == 201
    assert first["ETag"] != etag
    assert second.status_code == 412 and second.json()["code"] == "precondition_failed"
    assert Return.objects.filter(order_id=order["id"]).count() == 1
    detail = client.get(f"{ORDERS}{order['id']}/")
    assert detail["ETag"] == first["ETag"] and detail.json()["lines"][0]["qty_returned"] == 1
    # The fresh version goes through.
    assert return_one(client, order, store_a, HTTP_IF_MATCH=first["ETag"]).status_code == 201


def test_shipment_steps_move_the_version(partner, stocked):
    _key, client = partner
    order = ship_order(client, stocked)
    seen = [client.get(f"{ORDERS}{order['id']}/")["ETag"]]

    created = client.post(f"{ORDERS}{order['id']}/shipments/", {}, format="json", HTTP_IF_MATCH=seen[-1],
                          **idem())
    assert created.status_code == 201, created.content
    seen.append(created["ETag"])
    shipment = created.json()["id"]
    stale_pack = client.post(f"/api/v1/shipments/{shipment}/pack/", format="json", HTTP_IF_MATCH=seen[0],
                             **idem())
    packed = client.post(f"/api/v1/shipments/{shipment}/pack/", format="json", HTTP_IF_MATCH=seen[-1], **idem())
    seen.append(packed["ETag"])
    shipped = client.post(f"/api/v1/shipments/{shipment}/ship/", {"carrier": "SF", "tracking_number": "SF7"},
                          format="json", HTTP_IF_MATCH=seen[-1], **idem())
    seen.append(shipped["ETag"])

    assert stale_pack.status_code == 412 and stale_pack.json()["code"] == "precondition_failed"
    assert packed.status_code == 200 and shipped.status_code == 200
    versions = [int(tag.strip('"')) for tag in seen]
    assert versions == sorted(versions) and len(set(versions)) == 4
    assert client.get(f"{ORDERS}{order['id']}/").json()["version"] == versions[-1]


def test_a_payment_moves_the_version_even_before_the_order_is_fully_paid(partner, member_with_points, stocked,
                                                                         store_a):
    # Points pay part at placement; the rest is paid later: each changes paid_total and the version.
    _key, client = partner
    response = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}],
                     member={"id": member_with_points.pk}, points=1000)
    assert response.status_code == 201, response.content
    order = response.json()
    before = client.get(f"{ORDERS}{order['id']}/")
    started = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": "sandbox"}, format="json", **idem())
    notify(APIClient(), Payment.objects.get(pk=started.json()["id"]))

    after = client.get(f"{ORDERS}{order['id']}/")
    assert after.json()["status"] == "ready_for_pickup"
    assert int(after["ETag"].strip('"')) > int(before["ETag"].strip('"'))


@pytest.fixture
def member_with_points(db):
    member = MemberFactory()
    points_adjust(member=member, points=5000, reason="welcome")
    return member


@pytest.mark.django_db(transaction=True)
def test_webhooks_for_successive_changes_carry_increasing_versions(partner, clerk_a, stocked, store_a,
                                                                  settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    _key, client = partner
    subscribed = client.post("/api/v1/webhooks/subscriptions/", {"url": "http://127.0.0.1:9/hook",
                                                                 "events": ["*"]}, format="json", **idem())
    assert subscribed.status_code == 201, subscribed.content
    order = handed_over(client, clerk_a, store_a, stocked)
    assert return_one(client, order, store_a).status_code == 201
    assert return_one(client, order, store_a).status_code == 201

    for message_id in OutboxMessage.objects.order_by("id").values_list("id", flat=True):
        outbox_dispatch(message_id=message_id)

    bodies = [json.loads(d.body) for d in WebhookDelivery.objects.order_by("id")]
    mine = [b for b in bodies if b["data"].get("order_id") == order["id"]]
    types = [b["type"] for b in mine]
    versions = [b["data"]["version"] for b in mine]
    assert types.count("order.returned") == 2
    assert types[:2] == ["order.created", "order.paid"] and "order.picked_up" in types
    assert versions == sorted(versions) and len(set(versions)) == len(versions), list(zip(types, versions))
    assert versions[-1] == client.get(f"{ORDERS}{order['id']}/").json()["version"]


def test_a_handover_with_a_stale_if_match_is_412_and_hands_nothing_over(partner, clerk_a, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)
    before_payment = client.get(f"{ORDERS}{order['id']}/")["ETag"]
    pay(client, order["id"])
    current = client.get(f"{ORDERS}{order['id']}/")["ETag"]
    _user, staff = clerk_a

    stale = staff.post("/api/v1/pickups/handover/", {"code": order["pickup_code"]}, format="json",
                       HTTP_IF_MATCH=before_payment, **idem())
    fresh = staff.post("/api/v1/pickups/handover/", {"code": order["pickup_code"]}, format="json",
                       HTTP_IF_MATCH=current, **idem())

    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
    assert fresh.status_code == 200 and fresh.json()["status"] == "picked_up"
    assert fresh["ETag"] != current
