"""The main partner flow over plain HTTP (httpx through the WSGI app), with committed transactions:
a mini-program places a pickup order, pays through the sandbox provider, the store hands it over,
and one unit comes back at another store."""

import secrets
import string
import uuid

import httpx
import pytest
from django.test import Client

from inventory.models import Bucket, StockLevel
from o2o.models import OutboxMessage
from o2o.outbox import outbox_dispatch
from o2o.wsgi import application
from payments.models import Payment, Refund
from payments.providers.sandbox import sandbox_notification
from payments.services import refund_process
from stores.models import Role
from stores.tests.factories import StaffFactory

pytestmark = pytest.mark.django_db(transaction=True)


def on_hand(warehouse, sku, bucket=Bucket.SELLABLE) -> int:
    level = StockLevel.objects.filter(warehouse=warehouse, sku=sku, bucket=bucket).first()
    return level.on_hand if level else 0


def http(**headers) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=application), base_url="http://localhost",
                        headers=headers)


def staff_http(user) -> httpx.Client:
    """A store app: the POS session cookie, and the CSRF token it sends with every change."""
    browser = Client()
    browser.force_login(user)
    client = http()
    client.cookies.set("sessionid", browser.cookies["sessionid"].value)
    # Double-submit CSRF as a page of the store app does: the csrftoken cookie and the same value in
    # the X-CSRFToken header (any 32-character alphanumeric secret is a well-formed token).
    token = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    client.cookies.set("csrftoken", token)
    client.headers["X-CSRFToken"] = token
    return client


def post(client, path, body):
    return client.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


def test_pickup_order_paid_handed_over_and_partly_returned(make_key, stocked, store_a, store_b):
    _key, raw = make_key(name="mini-program backend")
    partner = http(Authorization=f"Bearer {raw}")
    clerk = StaffFactory(role=Role.CLERK, store=store_a).user
    store = staff_http(clerk)
    shirt, socks = stocked[0], stocked[1]

    # Given a pickup order at store A, priced by the server.
    placed = post(partner, "/api/v1/orders/", {
        "external_id": "MP-7", "fulfillment": "pickup", "store": store_a.pk,
        "customer_phone": "+8613800000000",
        "lines": [{"sku": shirt.pk, "qty": 2}, {"sku": socks.pk, "qty": 1}]})
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["total"] == "297.00" and order["status"] == "pending_payment"

    # When the customer pays through the provider and its signed notification arrives.
    started = post(partner, f"/api/v1/orders/{order['id']}/payments/", {"tender": "sandbox"})
    assert started.status_code == 201 and started.json()["payment_code"]
    headers, body = sandbox_notification(Payment.objects.get(pk=started.json()["id"]))
    ack = http().post("/api/v1/payments/notify/sandbox/", content=body, headers=headers)
    assert ack.status_code == 200 and ack.json()["code"] == "SUCCESS"
    ready = partner.get(f"/api/v1/orders/{order['id']}/")
    assert ready.json()["status"] == "ready_for_pickup" and ready.json()["paid_total"] == "297.00"

    # Then the clerk of store A hands it over with the code the customer shows.
    handed = post(store, "/api/v1/pickups/handover/", {"code": order["pickup_code"]})
    assert handed.status_code == 200, handed.text
    assert handed.json()["status"] == "picked_up"
    assert on_hand(store_a.warehouse, shirt) == 3 and on_hand(store_a.warehouse, socks) == 4
    without_csrf = http(Cookie=f"sessionid={store.cookies['sessionid']}").post(
        "/api/v1/pickups/handover/", json={"code": order["pickup_code"]}, headers={"Idempotency-Key": "x"})
    assert without_csrf.status_code == 403

    # And one shirt comes back at store B, refunded exactly, back to the provider account.
    shirt_line = next(line for line in order["lines"] if line["sku"] == shirt.pk)
    returned = post(partner, f"/api/v1/orders/{order['id']}/returns/", {
        "store": store_b.pk, "reason": "too small", "lines": [{"order_line": shirt_line["id"], "qty": 1}]})
    assert returned.status_code == 201, returned.text
    assert returned.json()["refund_total"] == "99.00"
    assert "original account" in returned.json()["refund_policy"]
    assert on_hand(store_b.warehouse, shirt) == 1

    final = partner.get(f"/api/v1/orders/{order['id']}/").json()
    assert final["refunded_total"] == "99.00"
    assert [(r["number"], r["refund_total"]) for r in final["returns"]] == [
        (returned.json()["number"], "99.00")]
    assert partner.get("/api/v1/returns/").json()["results"][0]["id"] == returned.json()["id"]

    # The provider refund goes out after commit, through the outbox (what the worker does).
    refund = Refund.objects.get()
    for message in OutboxMessage.objects.filter(topic="payments.refund_requested"):
        outbox_dispatch(message_id=message.pk)
    refund_process(refund_id=refund.pk)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED and str(refund.amount) == "99.00"
