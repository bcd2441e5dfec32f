"""Order endpoints: placing, paying, cancelling, shipping, pickup, returns, isolation and every error code."""

import base64
import io
import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from o2o.apiauth import ORDERS_READ, ORDERS_WRITE, PAYMENTS_NOTIFY
from orders import services as order_services
from orders.models import Order, OrderEvent, Status
from payments import services as pay_services
from payments.models import Payment, PaymentNotification, Refund
from payments.providers.sandbox import sandbox_notification
from stores.tests.factories import CityFactory
from tests.api.conftest import bearer, idem, meta, notify, pay, place

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"


def placed(client, store, skus, **extra):
    response = place(client, store=store, lines=[{"sku": skus[0].pk, "qty": 2}], **extra)
    assert response.status_code == 201, response.content
    return response.json()


# --- placing ---------------------------------------------------------------------------------------


def test_place_pickup_order_is_priced_by_the_server(partner, stocked, store_a):
    key, client = partner

    # Prices, totals, status and channel are the server's: sending them is refused, not ignored.
    refused = place(client, store=store_a, external_id="MP-1", customer_phone="+8613800000000",
                    lines=[{"sku": stocked[0].pk, "qty": 2, "unit_price": "0.01"}],
                    total="0.01", status="paid", channel="web", discount_total="198.00")
    response = place(client, store=store_a, external_id="MP-1", customer_phone="+8613800000000",
                     lines=[{"sku": stocked[0].pk, "qty": 2}])

    assert refused.status_code == 400 and refused.json()["code"] == "unknown_field"
    assert sorted(refused.json()["fields"]) == ["channel", "discount_total", "status", "total"]
    assert response.status_code == 201
    body = response.json()
    assert body["total"] == "198.00" and body["subtotal"] == "198.00" and body["discount_total"] == "0.00"
    assert body["lines"][0]["unit_price"] == "99.00"
    assert body["status"] == "pending_payment"
    assert body["channel"] == key.channel == "mini_program"
    assert body["pickup_code"] and len(body["pickup_code"]) == 8
    assert response["ETag"] == f'"{body["version"]}"'
    assert response["Location"] == f"/api/v1/orders/{body['id']}/"


def test_a_pickup_code_collision_never_hands_out_another_customers_order(partner, stocked, store_a,
                                                                         monkeypatch):
    # Given a customer's open pickup order, and a code generator that draws that code again first
    _key, client = partner
    first = placed(client, store_a, stocked, customer_phone="+8613800000001")
    queue = [first["pickup_code"], "87654321"]
    monkeypatch.setattr(order_services.placement, "_new_pickup_code", lambda: queue.pop(0))

    # When another customer places the same basket (no external id)
    response = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 2}],
                     customer_phone="+8613800000002")

    # Then they get a new order of their own, with another code
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] != first["id"] and body["pickup_code"] == "87654321"
    assert Order.objects.get(pk=body["id"]).customer_phone == "+8613800000002"
    assert Order.objects.get(pk=first["id"]).pickup_code == first["pickup_code"]


def test_same_external_id_returns_the_first_order(partner, stocked, store_a):
    _key, client = partner
    first = placed(client, store_a, stocked, external_id="MP-2")

    again = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 2}], external_id="MP-2")
    different = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 3}], external_id="MP-2")

    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert different.status_code == 422 and different.json()["code"] == "duplicate_different_payload"
    assert Order.objects.count() == 1


def test_place_ship_order(partner, stocked, central):
    _key, client = partner
    city = CityFactory()

    response = place(client, fulfillment="ship_warehouse", ship_city=city.pk, ship_address="1 Lake Road",
                     lines=[{"sku": stocked[1].pk, "qty": 1}])

    assert response.status_code == 201
    assert response.json()["lines"][0]["warehouse"] == central.pk


@pytest.mark.parametrize("body, field", [
    ({"fulfillment": "pickup", "lines": []}, "lines"),
    ({"fulfillment": "pickup", "lines": [{"sku": 1, "qty": 0}]}, "lines.0.qty"),
    ({"fulfillment": "pickup", "lines": [{"sku": 1, "qty": 10**30}]}, "lines.0.qty"),
    ({"fulfillment": "pickup", "lines": [{"sku": 1, "qty": 1.5}]}, "lines.0.qty"),
    ({"fulfillment": "pickup", "lines": [{"sku": "abc", "qty": 1}]}, "lines.0.sku"),
    ({"fulfillment": "pickup", "lines": [{"sku": 2**70, "qty": 1}]}, "lines.0.sku"),
    ({"fulfillment": "pickup", "lines": [{"sku": 1, "qty": 1}]}, "store"),
    ({"fulfillment": "ship_warehouse", "lines": [{"sku": 1, "qty": 1}]}, "ship_city"),
    ({"fulfillment": "in_store", "lines": [{"sku": 1, "qty": 1}]}, "fulfillment"),
    ({"fulfillment": "pickup", "store": 2**70, "lines": [{"sku": 1, "qty": 1}]}, "store"),
    ({"fulfillment": "pickup", "store": "x", "lines": [{"sku": 1, "qty": 1}]}, "store"),
    ({"fulfillment": "pickup", "store": True, "lines": [{"sku": 1, "qty": 1}]}, "store"),
    ({"fulfillment": "pickup", "customer_name": "\ud800", "lines": [{"sku": 1, "qty": 1}]}, "customer_name"),
    ({"fulfillment": "pickup", "customer_name": "a\x00b", "lines": [{"sku": 1, "qty": 1}]}, "customer_name"),
    ({"fulfillment": "pickup", "customer_phone": "call me", "lines": [{"sku": 1, "qty": 1}]},
     "customer_phone"),
    ({"fulfillment": "pickup", "external_id": "x" * 101, "lines": [{"sku": 1, "qty": 1}]}, "external_id"),
    ({"fulfillment": "pickup", "lines": "all of it"}, "lines"),
])
def test_invalid_order_input_is_400_naming_the_field(partner, store_a, body, field):
    _key, client = partner
    body = dict(body)
    if body.get("store") is None and field != "store" and body["fulfillment"] == "pickup":
        body["store"] = store_a.pk

    # json.dumps escapes what the test client's renderer cannot encode (a lone surrogate)
    response = client.post(ORDERS, data=json.dumps(body), content_type="application/json", **idem())

    assert response.status_code == 400, response.content
    result = response.json()
    assert result["code"] == "invalid_input"
    assert field in result["fields"], result
    assert result["message"]


def test_malformed_json_wrong_type_and_media_type_are_client_errors(partner):
    _key, client = partner

    broken = client.post(ORDERS, data=b'{"fulfillment": ', content_type="application/json", **idem())
    a_list = client.post(ORDERS, data=b"[1, 2]", content_type="application/json", **idem())
    nested = client.post(ORDERS, data=b"[" * 100_000, content_type="application/json", **idem())
    text = client.post(ORDERS, data=b"hello", content_type="text/plain", **idem())
    bad_utf8 = client.post(ORDERS, data=b'{"a": "\xff"}', content_type="application/json", **idem())
    nan = client.post(ORDERS, data=b'{"lines": NaN}', content_type="application/json", **idem())

    assert broken.status_code == 400 and broken.json()["code"] == "parse_error"
    assert a_list.status_code == 400 and a_list.json()["code"] == "invalid_input"
    assert nested.status_code == 400 and nested.json()["code"] == "parse_error"
    assert text.status_code == 415 and text.json()["code"] == "unsupported_media_type"
    assert bad_utf8.status_code == 400 and bad_utf8.json()["code"] == "parse_error"
    assert nan.status_code == 400 and nan.json()["code"] == "parse_error"


def test_unknown_and_inactive_skus_are_422(partner, stocked, store_a):
    _key, client = partner
    inactive = SkuFactory(is_active=False)

    unknown = place(client, store=store_a, lines=[{"sku": 987654321, "qty": 1}])
    off = place(client, store=store_a, lines=[{"sku": inactive.pk, "qty": 1}])

    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_sku"
    assert off.status_code == 422 and off.json()["code"] == "inactive_sku"


def test_not_enough_stock_is_409_in_the_requested_language(partner, stocked, store_a):
    _key, client = partner

    english = client.post(ORDERS, {"fulfillment": "pickup", "store": store_a.pk,
                                   "lines": [{"sku": stocked[0].pk, "qty": 999}]},
                          format="json", HTTP_ACCEPT_LANGUAGE="en", **idem())
    chinese = client.post(ORDERS, {"fulfillment": "pickup", "store": store_a.pk,
                                   "lines": [{"sku": stocked[0].pk, "qty": 999}]},
                          format="json", HTTP_ACCEPT_LANGUAGE="zh-Hans", **idem())

    assert english.status_code == chinese.status_code == 409
    assert english.json()["code"] == chinese.json()["code"] == "insufficient_stock"
    assert english.json()["message"] == "No warehouse has enough stock for this order."
    assert chinese.json()["message"] == "没有仓库有足够的库存满足该订单。"


# --- isolation ---------------------------------------------------------------------------------------


def test_partners_see_only_their_channels_orders(partner, other_partner, stocked, store_a):
    _key, client = partner
    _other, other = other_partner
    mine = placed(client, store_a, stocked)

    assert other.get(f"{ORDERS}{mine['id']}/").status_code == 404
    assert other.get(ORDERS).json()["results"] == []
    assert other.post(f"{ORDERS}{mine['id']}/cancel/", {}, format="json", **idem()).status_code == 404
    assert other.post(f"{ORDERS}{mine['id']}/payments/", {"tender": "sandbox"}, format="json",
                      **idem()).status_code == 404
    assert other.get("/api/v1/shipments/", {"order": mine["id"]}).json()["results"] == []
    assert [o["id"] for o in client.get(ORDERS).json()["results"]] == [mine["id"]]


def test_marketplace_partners_are_kept_apart(make_key, stocked, store_a):
    _a, raw_a = make_key(channel="marketplace", partner="tmall", name="tmall")
    _b, raw_b = make_key(channel="marketplace", partner="jd", name="jd")
    order = placed(bearer(raw_a), store_a, stocked)

    assert bearer(raw_b).get(f"{ORDERS}{order['id']}/").status_code == 404
    assert bearer(raw_a).get(f"{ORDERS}{order['id']}/").status_code == 200


def test_a_store_restricted_key_cannot_use_other_stores(make_key, stocked, store_a, store_b):
    _key, raw = make_key(stores=[store_a])

    response = place(bearer(raw), store=store_b, lines=[{"sku": stocked[0].pk, "qty": 1}])

    assert response.status_code == 400 and "store" in response.json()["fields"]


def test_a_store_limited_key_names_its_store_on_a_ship_from_warehouse_order(make_key, stocked, store_a, store_b):
    # Given a partner key limited to store A
    _key, raw = make_key(stores=[store_a])
    client = bearer(raw)
    city = CityFactory()
    ship = {"fulfillment": "ship_warehouse", "ship_city": city.pk, "ship_address": "文三路 1 号",
            "lines": [{"sku": stocked[0].pk, "qty": 1}]}
    before = Order.objects.count()

    # When it places a ship-from-warehouse order without a store, or with another store
    bare = client.post(ORDERS, ship, format="json", **idem())
    other = client.post(ORDERS, {**ship, "store": store_b.pk}, format="json", **idem())

    # Then it is told which store to name, in the one error shape, and nothing is placed
    assert bare.status_code == 400 and bare["Content-Type"] == "application/json"
    assert bare.json()["code"] == "store_required" and "store" in bare.json()["fields"]
    assert other.status_code == 400 and "store" in other.json()["fields"]
    assert Order.objects.count() == before

    # And with its own store named, the order is placed and stays the key's to read, pay and cancel
    placed_ = client.post(ORDERS, {**ship, "store": store_a.pk}, format="json", **idem())
    assert placed_.status_code == 201, placed_.content
    body = placed_.json()
    assert body["store"] == store_a.pk and body["lines"][0]["warehouse"] != store_a.warehouse_id
    assert client.get(f"{ORDERS}{body['id']}/").status_code == 200
    assert client.post(f"{ORDERS}{body['id']}/cancel/", {}, format="json", **idem()).status_code == 200


def test_staff_see_only_their_stores_orders(partner, clerk_a, clerk_b, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)
    _ua, staff_a = clerk_a
    _ub, staff_b = clerk_b

    seen_a = staff_a.get(f"{ORDERS}{order['id']}/")
    assert seen_a.status_code == 200
    assert seen_a.json()["pickup_code"] is None  # staff get the code from the customer, not the API
    assert staff_b.get(f"{ORDERS}{order['id']}/").status_code == 404
    assert staff_b.get(ORDERS).json()["results"] == []
    assert [o["id"] for o in staff_a.get(ORDERS).json()["results"]] == [order["id"]]


def test_order_list_filters(partner, stocked, store_a, store_b):
    _key, client = partner
    first = placed(client, store_a, stocked)
    second = placed(client, store_b, stocked)
    client.post(f"{ORDERS}{first['id']}/cancel/", {}, format="json", **idem())

    cancelled = client.get(ORDERS, {"status": "cancelled"}).json()["results"]
    both = client.get(ORDERS, {"status": ["cancelled", "pending_payment"]}).json()["results"]
    at_b = client.get(ORDERS, {"store": store_b.pk}).json()["results"]
    bad = client.get(ORDERS, {"status": "lost"})

    assert [o["id"] for o in cancelled] == [first["id"]]
    assert [o["id"] for o in both] == [second["id"], first["id"]]
    assert [o["id"] for o in at_b] == [second["id"]]
    assert bad.status_code == 400 and "status" in bad.json()["fields"]


def test_updated_since_sees_status_changes(partner, stocked, store_a):
    _key, client = partner
    older = placed(client, store_a, stocked)
    changed = placed(client, store_a, stocked)
    since = OrderEvent.objects.order_by("-id").first().created_at
    Order.objects.update(updated_at=since.replace(year=2020))

    client.post(f"{ORDERS}{changed['id']}/cancel/", {}, format="json", **idem())
    found = client.get(ORDERS, {"updated_since": since.isoformat()}).json()["results"]

    assert [o["id"] for o in found] == [changed["id"]]
    assert older["id"] not in [o["id"] for o in found]


def test_a_status_change_moves_the_orders_updated_at(partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)
    Order.objects.filter(pk=order["id"]).update(updated_at=timezone.now() - timedelta(days=3))

    client.post(f"{ORDERS}{order['id']}/cancel/", {}, format="json", **idem())

    changed = Order.objects.get(pk=order["id"])
    assert changed.status == "cancelled"
    assert timezone.now() - changed.updated_at < timedelta(minutes=1)
    shown = datetime.fromisoformat(client.get(f"{ORDERS}{order['id']}/").json()["updated_at"])
    assert shown == changed.updated_at


# --- cancel, If-Match ----------------------------------------------------------------------------------


def test_cancel_then_cancel_again_is_409(partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)

    first = client.post(f"{ORDERS}{order['id']}/cancel/", {"reason": "changed mind"}, format="json", **idem())
    second = client.post(f"{ORDERS}{order['id']}/cancel/", {}, format="json", **idem())

    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    assert second.status_code == 409 and second.json()["code"] == "invalid_order_state"


def test_stale_if_match_is_412_and_changes_nothing(partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)
    etag = client.get(f"{ORDERS}{order['id']}/")["ETag"]

    stale = client.post(f"{ORDERS}{order['id']}/cancel/", {}, format="json", HTTP_IF_MATCH='"1"', **idem())
    fresh = client.post(f"{ORDERS}{order['id']}/cancel/", {}, format="json", HTTP_IF_MATCH=etag, **idem())

    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
    assert fresh.status_code == 200
    assert fresh["ETag"] != etag


# --- payments --------------------------------------------------------------------------------------


def test_pay_with_a_provider_and_its_notification(partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)

    started = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": "sandbox"}, format="json", **idem())
    payment = Payment.objects.get(pk=started.json()["id"])
    ack = notify(APIClient(), payment)
    replay = notify(APIClient(), payment)

    assert started.status_code == 201
    assert started.json()["amount"] == "198.00"
    assert started.json()["payment_code"].startswith("o2o-sandbox://")
    assert ack.status_code == 200 and ack.json() == {"code": "SUCCESS", "message": "OK"}
    assert replay.status_code == 200  # a duplicate is acknowledged, applied once
    detail = client.get(f"{ORDERS}{order['id']}/").json()
    assert detail["status"] == "ready_for_pickup" and detail["paid_total"] == "198.00"
    assert [p["status"] for p in detail["payments"]] == ["captured"]
    assert PaymentNotification.objects.filter(outcome="applied").count() == 1


def test_paying_on_two_phones_opens_one_payment_and_charges_once(partner, stocked, store_a):
    # Given an order the customer starts paying on two phones (two requests, two Idempotency-Keys)
    _key, client = partner
    order = placed(client, store_a, stocked)
    first = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": "sandbox"}, format="json", **idem())
    second = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": "sandbox"}, format="json", **idem())

    # Then both phones show the same payment: the provider can take the money only once
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert Payment.objects.filter(reference=order["number"]).count() == 1
    ack = notify(APIClient(), Payment.objects.get(pk=second.json()["id"]))
    assert ack.status_code == 200
    detail = client.get(f"{ORDERS}{order['id']}/").json()
    assert detail["status"] == "ready_for_pickup" and detail["paid_total"] == "198.00"
    call_command("audit_ledgers", stdout=io.StringIO())


def test_a_second_capture_is_refunded_and_cancel_refunds_the_rest(partner, stocked, store_a):
    # Given an order with a second pending provider payment for the full amount (opened before one
    # payment per order was enforced), and the provider captures both
    _key, client = partner
    order = placed(client, store_a, stocked)
    started = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": "sandbox"}, format="json", **idem())
    first = Payment.objects.get(pk=started.json()["id"])
    second = pay_services.payment_create(reference=order["number"], tender="sandbox", amount=first.amount)

    assert notify(APIClient(), first).status_code == 200
    assert notify(APIClient(), second).status_code == 200

    # Then the order is paid once and the second capture goes back in full, recorded on the order
    detail = client.get(f"{ORDERS}{order['id']}/").json()
    assert detail["status"] == "ready_for_pickup" and detail["paid_total"] == "198.00"
    refund = Refund.objects.get(payment=second)
    assert refund.amount == Decimal("198.00") and refund.overpayment
    assert OrderEvent.objects.filter(order_id=order["id"], reason="second payment refunded").exists()
    call_command("audit_ledgers", stdout=io.StringIO())

    # When the order is cancelled, the first payment is refunded in full: the customer gets everything back
    cancelled = client.post(f"{ORDERS}{order['id']}/cancel/", {}, format="json", **idem())
    assert cancelled.status_code == 200
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.refunded_amount + first.refunding_amount == Decimal("198.00")
    assert second.refunded_amount + second.refunding_amount == Decimal("198.00")
    call_command("audit_ledgers", stdout=io.StringIO())


def test_a_capture_on_a_cancelled_order_is_refunded(partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)
    started = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": "sandbox"}, format="json", **idem())
    client.post(f"{ORDERS}{order['id']}/cancel/", {}, format="json", **idem())

    assert notify(APIClient(), Payment.objects.get(pk=started.json()["id"])).status_code == 200

    refund = Refund.objects.get(payment_id=started.json()["id"])
    assert refund.amount == Decimal("198.00") and refund.overpayment
    assert client.get(f"{ORDERS}{order['id']}/").json()["status"] == "cancelled"
    call_command("audit_ledgers", stdout=io.StringIO())


def test_unconfigured_or_unknown_tenders_are_400(partner, stocked, store_a, settings):
    _key, client = partner
    order = placed(client, store_a, stocked)

    wechat = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": "wechat_pay"}, format="json",
                         **idem())
    cash = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": "cash"}, format="json", **idem())
    settings.SANDBOX_PAY_ENABLED = False
    sandbox_off = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": "sandbox"}, format="json",
                              **idem())

    for response in (wechat, cash, sandbox_off):
        assert response.status_code == 400 and "tender" in response.json()["fields"]


def test_paying_a_cancelled_order_is_409(partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)
    client.post(f"{ORDERS}{order['id']}/cancel/", {}, format="json", **idem())

    response = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": "sandbox"}, format="json", **idem())

    assert response.status_code == 409 and response.json()["code"] == "order_not_payable"


def test_notification_errors(partner, stocked, store_a, make_key):
    _key, client = partner
    order = placed(client, store_a, stocked)
    started = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": "sandbox"}, format="json", **idem())
    payment = Payment.objects.get(pk=started.json()["id"])
    headers, body = sandbox_headers(payment)

    forged = APIClient().post("/api/v1/payments/notify/sandbox/", data=body.replace(b"SUCCESS", b"CLOSED"),
                              **meta(headers))
    wrong_amount = notify(APIClient(), payment, amount=Decimal("1.00"))
    unknown = APIClient().post("/api/v1/payments/notify/paypal/", data=body, **meta(headers))
    alipay = APIClient().post("/api/v1/payments/notify/alipay/", data=b"a=1", content_type="text/plain")
    _k, raw = make_key(scopes=[ORDERS_READ])
    no_scope = bearer(raw).post("/api/v1/payments/notify/sandbox/", data=body, **meta(headers))
    _k2, raw2 = make_key(scopes=[PAYMENTS_NOTIFY], name="relay")
    relayed = bearer(raw2).post("/api/v1/payments/notify/sandbox/", data=body, **meta(headers))

    assert forged.status_code == 401 and forged.json()["code"] == "invalid_signature"
    assert wrong_amount.status_code == 400 and wrong_amount.json()["code"] == "notification_rejected_amount"
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_provider"
    assert alipay.status_code == 400 and alipay.content == b"fail"
    assert no_scope.status_code == 403 and no_scope.json()["code"] == "insufficient_scope"
    assert relayed.status_code == 200
    assert Order.objects.get(pk=order["id"]).status == Status.READY_FOR_PICKUP


def sandbox_headers(payment):
    return sandbox_notification(payment)


# --- shipping ----------------------------------------------------------------------------------------


def ship_order(client, skus, fulfillment="ship_warehouse"):
    city = CityFactory()
    response = place(client, fulfillment=fulfillment, ship_city=city.pk, ship_address="1 Lake Road",
                     lines=[{"sku": skus[0].pk, "qty": 2}, {"sku": skus[1].pk, "qty": 1}])
    assert response.status_code == 201, response.content
    pay(client, response.json()["id"])
    return response.json()


def test_partner_ships_from_the_central_warehouse(partner, stocked):
    _key, client = partner
    order = ship_order(client, stocked)
    first_line = order["lines"][0]["id"]

    created = client.post(f"{ORDERS}{order['id']}/shipments/",
                          {"lines": [{"order_line": first_line, "qty": 2}]}, format="json", **idem())
    shipment = created.json()["id"]
    packed = client.post(f"/api/v1/shipments/{shipment}/pack/", format="json", **idem())
    no_tracking = client.post(f"/api/v1/shipments/{shipment}/ship/", {"carrier": "SF"}, format="json",
                              **idem())
    shipped = client.post(f"/api/v1/shipments/{shipment}/ship/", {"carrier": "SF", "tracking_number": "SF1"},
                          format="json", **idem())
    again = client.post(f"/api/v1/shipments/{shipment}/ship/", {"carrier": "SF", "tracking_number": "SF1"},
                        format="json", **idem())

    assert created.status_code == 201 and created.json()["status"] == "picking"
    assert packed.status_code == 200 and packed.json()["status"] == "packed"
    assert no_tracking.status_code == 400 and "tracking_number" in no_tracking.json()["fields"]
    assert shipped.status_code == 200 and shipped.json()["tracking_number"] == "SF1"
    assert again.status_code == 409
    assert client.get(f"{ORDERS}{order['id']}/").json()["status"] == "partially_shipped"
    rest = client.post(f"{ORDERS}{order['id']}/shipments/", {}, format="json", **idem())
    client.post(f"/api/v1/shipments/{rest.json()['id']}/ship/", {"carrier": "SF", "tracking_number": "SF2"},
                format="json", **idem())
    assert client.get(f"{ORDERS}{order['id']}/").json()["status"] == "shipped"
    listed = client.get("/api/v1/shipments/", {"order": order["id"]}).json()["results"]
    assert len(listed) == 2


def test_shipment_errors(partner, stocked, store_a):
    _key, client = partner
    pickup = placed(client, store_a, stocked)
    order = ship_order(client, stocked)

    wrong_kind = client.post(f"{ORDERS}{pickup['id']}/shipments/", {}, format="json", **idem())
    unknown_line = client.post(f"{ORDERS}{order['id']}/shipments/",
                               {"lines": [{"order_line": 999999, "qty": 1}]}, format="json", **idem())
    too_many = client.post(f"{ORDERS}{order['id']}/shipments/",
                           {"lines": [{"order_line": order["lines"][0]["id"],
                                       "qty": 3}]}, format="json", **idem())

    assert wrong_kind.status_code == 409 and wrong_kind.json()["code"] == "invalid_order_state"
    assert unknown_line.status_code == 422 and unknown_line.json()["code"] == "unknown_order_line"
    assert too_many.status_code == 422 and too_many.json()["code"] == "ship_exceeds_order"


def test_ship_from_store_is_for_that_stores_staff(partner, clerk_a, clerk_b, store_a, skus, central):
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(s.id, 5) for s in skus])
    _key, client = partner
    response = place(client, fulfillment="ship_store", ship_city=store_a.city_id, ship_address="2 Lake Road",
                     lines=[{"sku": skus[0].pk, "qty": 1}])
    order = response.json()
    pay(client, order["id"])
    _ua, staff_a = clerk_a
    _ub, staff_b = clerk_b

    by_partner = client.post(f"{ORDERS}{order['id']}/shipments/", {}, format="json", **idem())
    by_other_store = staff_b.post(f"{ORDERS}{order['id']}/shipments/", {}, format="json", **idem())
    by_store = staff_a.post(f"{ORDERS}{order['id']}/shipments/", {}, format="json", **idem())

    assert response.status_code == 201 and order["fulfillment"] == "ship_store"
    assert by_partner.status_code == 403 and by_partner.json()["code"] == "wrong_store"
    assert by_other_store.status_code == 404
    assert by_store.status_code == 201
    shipped = staff_a.post(f"/api/v1/shipments/{by_store.json()['id']}/ship/",
                           {"carrier": "SF", "tracking_number": "SF9"}, format="json", **idem())
    assert shipped.status_code == 200
    assert client.post(f"/api/v1/shipments/{by_store.json()['id']}/pack/", format="json",
                       **idem()).status_code == 403


# --- pickup and returns ------------------------------------------------------------------------------


def test_pickup_lookup_and_handover_by_store_staff(partner, clerk_a, clerk_b, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)
    pay(client, order["id"])
    _ua, staff_a = clerk_a
    _ub, staff_b = clerk_b
    code = order["pickup_code"]

    other_store = staff_b.post("/api/v1/pickups/lookup/", {"code": code}, format="json")
    unknown = staff_a.post("/api/v1/pickups/lookup/", {"code": "00000000"}, format="json")
    looked_up = staff_a.post("/api/v1/pickups/lookup/", {"code": code}, format="json")
    handed = staff_a.post("/api/v1/pickups/handover/", {"code": code}, format="json", **idem())
    twice = staff_a.post("/api/v1/pickups/handover/", {"code": code}, format="json", **idem())

    assert other_store.status_code == 403 and other_store.json()["code"] == "wrong_store"
    assert unknown.status_code == 422 and unknown.json()["code"] == "pickup_code_invalid"
    assert looked_up.status_code == 200 and looked_up.json()["id"] == order["id"]
    assert handed.status_code == 200 and handed.json()["status"] == "picked_up"
    assert twice.status_code == 409 and twice.json()["code"] == "invalid_order_state"


def test_partial_return_refunds_exactly(partner, clerk_a, stocked, store_a, store_b):
    _key, client = partner
    order = placed(client, store_a, stocked)
    pay(client, order["id"])
    _ua, staff_a = clerk_a
    staff_a.post("/api/v1/pickups/handover/", {"code": order["pickup_code"]}, format="json", **idem())
    line = order["lines"][0]["id"]

    too_many = client.post(f"{ORDERS}{order['id']}/returns/",
                           {"store": store_b.pk, "lines": [{"order_line": line,
                                                            "qty": 3}]}, format="json", **idem())
    no_store = client.post(f"{ORDERS}{order['id']}/returns/", {"lines": [{"order_line": line, "qty": 1}]},
                           format="json", **idem())
    returned = client.post(f"{ORDERS}{order['id']}/returns/",
                           {"store": store_b.pk, "reason": "too small",
                            "lines": [{"order_line": line, "qty": 1, "condition": "damaged"}]},
                           format="json", **idem())

    assert too_many.status_code == 422 and too_many.json()["code"] == "return_exceeds_purchase"
    assert no_store.status_code == 400 and no_store.json()["code"] == "store_required"
    assert returned.status_code == 201
    assert returned.json()["refund_total"] == "99.00"
    detail = client.get(f"{ORDERS}{order['id']}/").json()
    assert detail["refunded_total"] == "99.00" and detail["lines"][0]["qty_returned"] == 1
    assert [r["id"] for r in client.get("/api/v1/returns/").json()["results"]] == [returned.json()["id"]]
    assert client.get(f"/api/v1/returns/{returned.json()['id']}/").status_code == 200


def test_returning_an_unpaid_order_is_409(partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)

    response = client.post(f"{ORDERS}{order['id']}/returns/",
                           {"store": store_a.pk, "lines": [{"order_line": order["lines"][0]["id"],
                                                            "qty": 1}]},
                           format="json", **idem())

    assert response.status_code == 409 and response.json()["code"] == "order_not_returnable"


def test_write_scope_needed_for_order_actions(make_key, partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)
    _k, raw = make_key(scopes=[ORDERS_READ])
    reader = bearer(raw)

    assert reader.get(f"{ORDERS}{order['id']}/").status_code == 200
    for url in ["cancel/", "payments/", "shipments/", "returns/"]:
        response = reader.post(f"{ORDERS}{order['id']}/{url}", {}, format="json", **idem())
        assert response.status_code == 403 and response.json()["code"] == "insufficient_scope", url
    _k2, raw2 = make_key(scopes=[ORDERS_WRITE], name="writer")
    assert bearer(raw2).get(ORDERS).status_code == 403


def test_error_bodies_are_always_the_one_shape(partner):
    _key, client = partner
    responses = [client.get("/api/v1/orders/123456/"), client.post(ORDERS, {}, format="json"),
                 client.delete(ORDERS), APIClient().get(ORDERS),
                 client.post(ORDERS, data=b"{", content_type="application/json", **idem())]

    for response in responses:
        body = json.loads(response.content)
        assert response.status_code >= 400
        assert set(body) <= {"code", "message", "fields", "params"} and body["code"] and body["message"]


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00",
                                   "2026-13-01T00:00:00Z"])
def test_times_that_do_not_exist_in_utc_are_400(partner, value):
    _key, client = partner

    response = client.get(ORDERS, {"updated_since": value})

    assert response.status_code == 400 and "updated_since" in response.json()["fields"]
    assert client.get(ORDERS).status_code == 200  # and nothing is left broken


def test_an_offset_postgresql_refuses_is_normalised_to_utc(partner, stocked, store_a):
    _key, client = partner
    placed(client, store_a, stocked)

    future = client.get(ORDERS, {"updated_since": "7132-10-27T22:52:24+20:39"})
    past = client.get(ORDERS, {"updated_since": "2000-01-01T00:00:00+20:39"})

    assert future.status_code == 200 and future.json()["results"] == []
    assert past.status_code == 200 and len(past.json()["results"]) == 1


def test_a_cursor_with_an_impossible_time_is_400(partner):
    _key, client = partner
    cursor = base64.b64encode(b"p=2026-01-01T00:00:00+20:39").decode()

    response = client.get("/api/v1/catalog/skus/", {"cursor": cursor})

    assert response.status_code == 400 and "cursor" in response.json()["fields"]


def test_signed_notifications_are_not_limited_like_anonymous_traffic(partner, stocked, store_a, settings):
    # Given a per-address limit for anonymous calls, and more paid orders than it allows in a minute
    settings.API_RATE_LIMIT_ANONYMOUS_PER_MINUTE = 10
    _key, client = partner
    payments = []
    for i in range(settings.API_RATE_LIMIT_ANONYMOUS_PER_MINUTE + 2):
        order = place(client, store=store_a, lines=[{"sku": stocked[i % 5].pk, "qty": 1}])
        started = client.post(f"{ORDERS}{order.json()['id']}/payments/", {"tender": "sandbox"}, format="json",
                              **idem())
        payments.append(Payment.objects.get(pk=started.json()["id"]))

    # When the provider notifies every payment from one address
    provider = APIClient(REMOTE_ADDR="203.0.113.7")
    answers = [provider.post("/api/v1/payments/notify/sandbox/", data=body, **meta(headers)).status_code
               for headers, body in (sandbox_notification(p) for p in payments)]

    # Then every signed notification is applied, none refused with 429
    assert answers == [200] * len(payments)
    assert Payment.objects.filter(pk__in=[p.pk for p in payments], status="captured").count() == len(payments)

    # And unsigned junk from that address is still anonymous traffic: refused, then limited
    junk = [provider.post("/api/v1/payments/notify/sandbox/", data=b'{"out_trade_no": "x"}',
                          content_type="application/json").status_code
            for _ in range(settings.API_RATE_LIMIT_ANONYMOUS_PER_MINUTE + 1)]
    assert junk == [401] * settings.API_RATE_LIMIT_ANONYMOUS_PER_MINUTE + [429]


def test_a_notification_with_a_nul_byte_is_refused(db):
    response = APIClient().post("/api/v1/payments/notify/sandbox/", data=b'{"out_trade_no": "\x00"}',
                                content_type="application/json")

    assert response.status_code == 401 and response.json()["code"] == "invalid_signature"
    assert not PaymentNotification.objects.exists()
