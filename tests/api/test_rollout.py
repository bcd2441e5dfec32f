"""The API obeys the roll-out: pickup only at launched stores, returns from elsewhere only where
returns anywhere is on, shipping only from stores that ship, guide binding only where it is on."""

import pytest

from inventory import services as stock
from members.models import GuideBinding
from members.services import members
from orders.models import Order, Return
from stores.models import Capability, Role
from stores.services import capability_set
from stores.tests.factories import StaffFactory
from tests.api.conftest import idem, pay, place

pytestmark = pytest.mark.django_db
ORDERS = "/api/v1/orders/"


def test_pickup_at_a_store_not_launched_is_409_and_places_nothing(partner, stocked, store_a, store_b):
    _key, client = partner
    capability_set(capability=Capability.PICKUP, enabled=False)  # global default off
    capability_set(capability=Capability.PICKUP, enabled=True, store=store_a)

    refused = client.post("/api/v1/orders/", {"fulfillment": "pickup", "store": store_b.pk,
                                               "lines": [{"sku": stocked[0].pk, "qty": 1}]},
                          format="json", HTTP_ACCEPT_LANGUAGE="en", **idem())
    accepted = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}])

    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "pickup_not_launched" and body["params"] == {"capability": "pickup",
                                                                        "store": store_b.code}
    assert accepted.status_code == 201
    assert Order.objects.count() == 1


def test_ship_from_store_skips_stores_where_it_is_off(partner, stocked, store_a, store_b):
    _key, client = partner
    stock.stock_receive(warehouse=store_b.warehouse, lines=[(stocked[0].id, 5)])
    body = {"fulfillment": "ship_store", "ship_city": store_a.city_id, "ship_address": "文三路 1 号",
            "lines": [{"sku": stocked[0].pk, "qty": 1}]}

    first = client.post(ORDERS, body, format="json", **idem())
    capability_set(capability=Capability.SHIP_FROM_STORE, enabled=False, store=store_a)
    second = client.post(ORDERS, body, format="json", **idem())
    capability_set(capability=Capability.SHIP_FROM_STORE, enabled=False, city=store_a.city)
    capability_set(capability=Capability.SHIP_FROM_STORE, enabled=None, store=store_a)
    third = client.post(ORDERS, body, format="json", **idem())

    assert first.json()["lines"][0]["warehouse"] == store_a.warehouse_id
    assert second.json()["lines"][0]["warehouse"] == store_b.warehouse_id
    assert third.status_code == 409 and third.json()["code"] == "insufficient_stock"


def test_return_from_elsewhere_needs_return_anywhere_at_the_receiving_store(partner, clerk_a, stocked, store_a,
                                                                           store_b):
    _key, client = partner
    order = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 2}]).json()
    pay(client, order["id"])
    clerk_a[1].post("/api/v1/pickups/handover/", {"code": order["pickup_code"]}, format="json", **idem())
    capability_set(capability=Capability.RETURN_ANYWHERE, enabled=False, city=store_a.city)
    line = [{"order_line": order["lines"][0]["id"], "qty": 1}]

    elsewhere = client.post(f"{ORDERS}{order['id']}/returns/", {"store": store_b.pk, "lines": line},
                            format="json", **idem())
    at_home = client.post(f"{ORDERS}{order['id']}/returns/", {"store": store_a.pk, "lines": line},
                          format="json", **idem())
    capability_set(capability=Capability.RETURN_ANYWHERE, enabled=True, store=store_b)
    launched = client.post(f"{ORDERS}{order['id']}/returns/", {"store": store_b.pk, "lines": line},
                           format="json", **idem())

    assert elsewhere.status_code == 409 and elsewhere.json()["code"] == "return_anywhere_not_launched"
    assert at_home.status_code == 201 and launched.status_code == 201
    assert list(Return.objects.order_by("id").values_list("store", flat=True)) == [store_a.pk, store_b.pk]


def test_binding_to_a_guide_of_a_store_not_launched_is_409(partner, store_a, store_b):
    _key, client = partner
    member = members.member_register(phone="13800138000", channel="mini_program")
    StaffFactory(role=Role.GUIDE, store=store_a, guide_code="G-A")
    StaffFactory(role=Role.GUIDE, store=store_b, guide_code="G-B")
    capability_set(capability=Capability.GUIDE, enabled=False, store=store_b)

    refused = client.post(f"/api/v1/members/{member.pk}/guide/", {"guide_code": "G-B", "source": "qr"},
                          format="json", **idem())
    bound = client.post(f"/api/v1/members/{member.pk}/guide/", {"guide_code": "G-A", "source": "qr"},
                        format="json", **idem())

    assert refused.status_code == 409 and refused.json()["code"] == "guide_not_launched"
    assert bound.status_code == 200 and bound.json()["store"] == store_a.pk
    assert GuideBinding.objects.get().store == store_a
