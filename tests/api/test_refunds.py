"""Refunds as a resource: per order and for the whole key, with status, tender, incremental sync;
the order's payment state (partially_refunded / refunded), late payments given back included."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from o2o.models import OutboxMessage
from o2o.outbox import outbox_dispatch
from payments import services as pay_services
from payments.models import Payment, Refund
from tests.api.conftest import idem, notify
from tests.api.test_order_versions import handed_over, return_one
from tests.api.test_orders import ORDERS, placed

pytestmark = pytest.mark.django_db


def dispatch_outbox():
    for message_id in OutboxMessage.objects.order_by("id").values_list("id", flat=True):
        outbox_dispatch(message_id=message_id)


def test_a_return_shows_as_a_refund_of_the_order_until_the_provider_confirms_it(partner, clerk_a, stocked,
                                                                               store_a):
    _key, client = partner
    order = handed_over(client, clerk_a, store_a, stocked)
    assert return_one(client, order, store_a).status_code == 201
    before = client.get(f"{ORDERS}{order['id']}/")

    listed = client.get(f"{ORDERS}{order['id']}/refunds/")

    assert listed.status_code == 200
    [refund] = listed.json()["results"]
    assert refund["order"] == order["id"] and refund["order_number"] == order["number"]
    assert refund["tender"] == "sandbox" and refund["amount"] == "99.00" and refund["currency"] == "CNY"
    assert refund["status"] == "pending" and refund["method"] == "original" and not refund["overpayment"]
    assert before.json()["payment_status"] == "partially_refunded"
    assert before.json()["refunded_total"] == "99.00"

    # When the provider confirms it, the refund succeeds and the order's version moves
    mark = timezone.now()
    pay_services.refund_complete(refund=refund["id"], provider_refund_id="SBR-1", success=True)
    dispatch_outbox()

    detail = client.get(f"/api/v1/refunds/{refund['id']}/")
    assert detail.status_code == 200 and detail.json()["status"] == "succeeded"
    assert detail.json()["completed_at"] is not None
    after = client.get(f"{ORDERS}{order['id']}/")
    assert after.json()["version"] > before.json()["version"]
    since = client.get("/api/v1/refunds/", {"updated_since": mark.isoformat()}).json()["results"]
    later = client.get("/api/v1/refunds/",
                       {"updated_since": (timezone.now() + timedelta(seconds=1)).isoformat()}).json()["results"]
    assert [r["id"] for r in since] == [refund["id"]] and later == []

    # Returning the rest refunds everything
    assert return_one(client, order, store_a).status_code == 201
    assert client.get(f"{ORDERS}{order['id']}/").json()["payment_status"] == "refunded"
    assert len(client.get(f"{ORDERS}{order['id']}/refunds/").json()["results"]) == 2


def test_a_late_payment_that_was_given_back_shows_as_refunded(partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)
    started = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": "sandbox"}, format="json", **idem())
    client.post(f"{ORDERS}{order['id']}/cancel/", {}, format="json", **idem())
    assert client.get(f"{ORDERS}{order['id']}/").json()["payment_status"] == "unpaid"

    assert notify(APIClient(), Payment.objects.get(pk=started.json()["id"])).status_code == 200

    detail = client.get(f"{ORDERS}{order['id']}/").json()
    assert detail["status"] == "cancelled" and detail["payment_status"] == "refunded"
    assert detail["overpayment_refunded"] == "198.00" and detail["refunded_total"] == "0.00"
    listed = client.get(f"{ORDERS}{order['id']}/refunds/").json()["results"]
    assert [(r["amount"], r["overpayment"], r["tender"]) for r in listed] == [("198.00", True, "sandbox")]
    assert client.get(ORDERS).json()["results"][0]["payment_status"] == "refunded"


def test_payment_states_of_unpaid_and_paid_orders(partner, clerk_a, stocked, store_a):
    _key, client = partner
    unpaid = placed(client, store_a, stocked)
    paid = handed_over(client, clerk_a, store_a, stocked)

    states = {o["id"]: o["payment_status"] for o in client.get(ORDERS).json()["results"]}

    assert states == {unpaid["id"]: "unpaid", paid["id"]: "paid"}


def test_refunds_of_another_partners_orders_are_not_found(partner, other_partner, clerk_a, stocked, store_a):
    _key, client = partner
    _other, other = other_partner
    order = handed_over(client, clerk_a, store_a, stocked)
    return_one(client, order, store_a)
    refund = Refund.objects.get()

    assert other.get(f"/api/v1/refunds/{refund.pk}/").status_code == 404
    assert other.get(f"{ORDERS}{order['id']}/refunds/").json()["code"] == "not_found"
    assert other.get("/api/v1/refunds/").json()["results"] == []
    assert client.get(f"/api/v1/refunds/{refund.pk}/").status_code == 200


def test_refund_lists_page_in_a_stable_order_and_refuse_bad_filters(partner, clerk_a, stocked, store_a):
    _key, client = partner
    for _ in range(2):
        order = handed_over(client, clerk_a, store_a, stocked)
        return_one(client, order, store_a)
        return_one(client, order, store_a)
    expected = list(Refund.objects.order_by("updated_at", "id").values_list("id", flat=True))

    seen, url, params = [], "/api/v1/refunds/", {"limit": 1}
    while url:
        page = client.get(url, params).json()
        seen += [r["id"] for r in page["results"]]
        url, params = page["next"], None

    assert seen == expected and len(seen) == 4
    bad = client.get("/api/v1/refunds/", {"updated_since": "yesterday"})
    assert bad.status_code == 400 and "updated_since" in bad.json()["fields"]
    assert client.get("/api/v1/refunds/", {"status": "lost"}).status_code == 400
