"""The till's JSON through its face: POST /pos/till/price/ (reads only, no session write) and
POST /pos/till/complete/ (the sale from a basket the till holds, exactly once by its client UUID)."""

import json
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory.models import StockLevel, StockMove
from members.codes import member_code_mint
from members.models import Member
from orders.models import Order
from payments.models import Payment
from pos.models import OfflineSale

from .conftest import login

D = Decimal
PRICE, COMPLETE = "/pos/till/price/", "/pos/till/complete/"
WRITES = ("INSERT", "UPDATE", "DELETE")

pytestmark = pytest.mark.django_db


def post(client, url, body):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data, content_type="application/json")


def writes(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)]


def level(store, sku) -> int:
    return StockLevel.objects.get(warehouse=store.warehouse, sku=sku, bucket="sellable").on_hand


def sale_body(shirt, jeans, **extra):
    body = {"client_uuid": str(uuid.uuid4()), "lines": [{"sku": shirt.pk, "qty": 2}, {"sku": jeans.pk, "qty": 1}],
            "payment": {"cash_tendered": "400", "card_amount": "50.00", "card_reference": "SLIP-0001"}}
    body.update(extra)
    return body


# --- price -----------------------------------------------------------------------------------------


def test_price_with_the_member_reads_only_and_writes_no_session(client_a, store_a, stocked, member, shift_a):
    shirt, jeans = stocked
    body = {"lines": [{"sku": shirt.pk, "qty": 2}, {"sku": jeans.pk, "qty": 1}], "member": "13800138000"}
    post(client_a, PRICE, body)  # the first call of a fresh sign-in stamps the clerk's last-seen time
    with CaptureQueriesContext(connection) as ctx:
        resp = post(client_a, PRICE, body)
    assert resp.status_code == 200, resp.content
    assert writes(ctx) == []
    # clerk, staff profile, stores with the store, SKUs, stock, promotions, member (its tier joined),
    # points settings (read once): no per-line queries
    assert len(ctx.captured_queries) <= 8, [q["sql"][:90] for q in ctx.captured_queries]
    data = resp.json()
    assert (data["subtotal"], data["total"], data["currency"]) == ("447.00", "447.00", "CNY")
    assert [(ln["code"], ln["qty"], ln["unit_price"], ln["amount"], ln["available"]) for ln in data["lines"]] == [
        ("TS-001", 2, "99.00", "198.00", 5), ("JN-001", 1, "249.00", "249.00", 3)]
    assert data["member"]["name"] == "王芳" and data["member"]["points_available"] == 5000
    assert data["member"]["phone"] == "+86138****8000" and data["member"]["proved"] is False
    assert 0 < data["member"]["points_cap"] <= 5000
    assert data["coupon"] is None and data["coupon_error"] is None and data["errors"] == []


def test_price_with_a_coupon_takes_its_owner_as_the_member_and_reports_a_bad_coupon(
        client_a, store_a, stocked, member, coupon, shift_a):
    shirt, _ = stocked
    resp = post(client_a, PRICE, {"lines": [{"sku": shirt.pk, "qty": 1}], "coupon": coupon.code})
    data = resp.json()
    assert resp.status_code == 200
    assert (data["coupon_discount"], data["total"], data["member"]["id"]) == ("20.00", "79.00", member.pk)
    resp = post(client_a, PRICE, {"lines": [{"sku": shirt.pk, "qty": 1}], "coupon": "NOPE-0000", "member": member.phone})
    data = resp.json()
    assert resp.status_code == 200
    assert data["coupon_error"]["code"] == "coupon_not_found" and data["total"] == "99.00"


def test_price_says_when_a_discount_needs_a_manager_and_refuses_an_unknown_member(
        client_a, store_a, stocked, shift_a):
    shirt, _ = stocked
    lines = [{"sku": shirt.pk, "qty": 2}]
    data = post(client_a, PRICE, {"lines": lines, "discount": "5%"}).json()
    assert (data["manual_discount"], data["total"], data["discount_needs_approval"]) == ("9.90", "188.10", False)
    data = post(client_a, PRICE, {"lines": lines, "discount": "50"}).json()
    assert (data["total"], data["discount_needs_approval"]) == ("148.00", True)
    resp = post(client_a, PRICE, {"lines": lines, "member": "13900139999"})
    assert resp.status_code == 422
    assert resp.json()["code"] == "member_not_found" and resp.json()["field"] == "member"


# --- complete --------------------------------------------------------------------------------------


def test_complete_makes_the_sale_once_and_a_retry_answers_the_same_sale(
        client_a, store_a, stocked, member, guide_a, shift_a):
    shirt, jeans = stocked
    body = sale_body(shirt, jeans, member="13800138000", guide=guide_a.pk)
    resp = post(client_a, COMPLETE, body)
    assert resp.status_code == 201, resp.content
    data = resp.json()
    order = Order.objects.get()
    assert data == {"number": order.number, "total": "447.00", "change": "3.00",
                    "receipt_url": reverse("pos:receipt", args=[order.number])}
    assert (order.channel, order.member_id, order.guide_id, str(order.client_uuid)) == (
        "pos", member.pk, guide_a.pk, body["client_uuid"])
    assert sorted((p.tender, p.amount) for p in Payment.objects.filter(reference=order.number)) == [
        ("cash", D("397.00")), ("unionpay_card", D("50.00"))]
    assert (level(store_a, shirt), level(store_a, jeans)) == (3, 2)
    assert client_a.get(data["receipt_url"]).status_code == 200

    again = post(client_a, COMPLETE, body)
    assert again.status_code == 200 and again.json() == data
    assert Order.objects.count() == 1 and StockMove.objects.filter(reference=order.number).count() == 2


def test_complete_with_the_dynamic_member_code_may_pay_with_points(client_a, store_a, stocked, member, shift_a):
    shirt, _ = stocked
    body = {"client_uuid": str(uuid.uuid4()), "lines": [{"sku": shirt.pk, "qty": 1}],
            "member": member_code_mint(member=member).code, "payment": {"points": 100, "cash_tendered": "100"}}
    resp = post(client_a, COMPLETE, body)
    assert resp.status_code == 201, resp.content
    order = Order.objects.get()
    assert Payment.objects.filter(reference=order.number, tender="points").exists()
    assert Member.objects.get(pk=member.pk).points_available < member.points_available
    # Points without the member's proof are refused.
    body = {"client_uuid": str(uuid.uuid4()), "lines": [{"sku": shirt.pk, "qty": 1}], "member": member.phone,
            "payment": {"points": 100, "cash_tendered": "100"}}
    resp = post(client_a, COMPLETE, body)
    assert resp.status_code == 400 and resp.json()["code"] == "member_proof_required"


def test_complete_of_a_sold_out_sku_is_refused_before_any_lock(client_a, store_a, stocked, shift_a):
    """Another channel took the last jeans and a refusal armed the sold-out gate: the till's complete
    answers 409 from the gate, with no row locked and nothing written."""
    from inventory import services as stock
    from inventory.exceptions import InsufficientStock

    shirt, jeans = stocked
    stock.stock_sell(warehouse=store_a.warehouse, lines=[(jeans.pk, level(store_a, jeans))], reference="ONLINE")
    with pytest.raises(InsufficientStock):
        stock.stock_sell(warehouse=store_a.warehouse, lines=[(jeans.pk, 1)], reference="ONLINE-2")
    body = sale_body(shirt, jeans)
    post(client_a, PRICE, {"lines": body["lines"]})  # the first call of a fresh sign-in stamps last-seen
    with CaptureQueriesContext(connection) as ctx:
        resp = post(client_a, COMPLETE, body)
    assert resp.status_code == 409 and resp.json()["code"] == "insufficient_stock"
    assert resp.json()["params"]["skus"] == [jeans.code]
    assert writes(ctx) == [] and not any("FOR UPDATE" in q["sql"] for q in ctx.captured_queries)
    assert not Order.objects.filter(client_uuid=body["client_uuid"]).exists() and level(store_a, shirt) == 5


def test_complete_refuses_a_basket_short_of_stock_and_sells_nothing(client_a, store_a, stocked, shift_a):
    shirt, jeans = stocked
    body = sale_body(shirt, jeans, lines=[{"sku": shirt.pk, "qty": 6}],
                     payment={"cash_tendered": "600"})
    resp = post(client_a, COMPLETE, body)
    assert resp.status_code == 409
    assert resp.json()["code"] == "insufficient_stock" and resp.json()["message"]
    assert not Order.objects.exists() and level(store_a, shirt) == 5
    body["lines"] = [{"sku": shirt.pk, "qty": 5}]  # the clerk fixes the basket: the same sale goes through
    assert post(client_a, COMPLETE, body).status_code == 201
    assert level(store_a, shirt) == 0


@pytest.mark.parametrize(("mutate", "code", "field"), [
    (lambda b: b.update(extra=1), "unknown_field", "extra"),
    (lambda b: b["payment"].update(wallet="1"), "unknown_field", "payment.wallet"),
    (lambda b: b["lines"][0].update(price="1.00"), "unknown_field", "lines.price"),
    (lambda b: b.update(client_uuid="not-a-uuid"), "invalid_field", "client_uuid"),
    (lambda b: b.update(lines="TS-001"), "invalid_field", "lines"),
    (lambda b: b["lines"][0].update(qty="2"), "invalid_field", "lines"),
    (lambda b: b["lines"][0].update(qty=1000), "invalid_field", "lines"),
    (lambda b: b["payment"].update(cash_tendered=400.5), "invalid_field", "payment.cash_tendered"),
    (lambda b: b["payment"].update(card_amount="-5"), "invalid_field", "payment.card_amount"),
    (lambda b: b.update(discount="lots"), "invalid_discount_input", "discount"),
    (lambda b: b.update(lines=[]), "basket_empty", "scan"),
    (lambda b: b.update(payment={"cash_tendered": "1"}), "cash_tendered_too_low", "cash_tendered"),
])
def test_complete_answers_unusable_input_with_400_and_a_stable_code(
        client_a, store_a, stocked, shift_a, mutate, code, field):
    shirt, jeans = stocked
    body = sale_body(shirt, jeans)
    mutate(body)
    resp = post(client_a, COMPLETE, body)
    assert resp.status_code == 400, resp.content
    assert (resp.json()["code"], resp.json().get("field")) == (code, field)
    assert not Order.objects.exists()


def test_complete_refusals_with_their_domain_codes(client_a, store_a, stocked, shift_a):
    shirt, jeans = stocked
    cases = [
        (b"{not json", 400, "invalid_json"),
        (json.dumps([1, 2]), 400, "invalid_field"),
        (sale_body(shirt, jeans, lines=[{"sku": 999999, "qty": 1}]), 422, "unknown_sku"),
        (sale_body(shirt, jeans, member="13900139999"), 422, "member_not_found"),
        (sale_body(shirt, jeans, member="o2o:mc:forged"), 422, "member_code_invalid"),
        (sale_body(shirt, jeans, discount="100"), 422, "approval_required"),
        (sale_body(shirt, jeans, guide=424242), 422, None),
    ]
    for body, status, code in cases:
        resp = post(client_a, COMPLETE, body)
        assert resp.status_code == status, (body, resp.content)
        assert resp.json()["code"] == code if code else resp.json()["code"]
    assert not Order.objects.exists()


def test_complete_needs_an_open_shift(client_a, store_a, stocked):
    shirt, jeans = stocked
    resp = post(client_a, COMPLETE, sale_body(shirt, jeans))
    assert resp.status_code == 409 and resp.json()["code"] == "shift_not_open"


def test_signed_out_gets_401_json_and_other_methods_405(store_a, stocked, shift_a):
    shirt, jeans = stocked
    anonymous = Client()
    for url, body in ((PRICE, {"lines": [{"sku": shirt.pk, "qty": 1}]}), (COMPLETE, sale_body(shirt, jeans))):
        resp = post(anonymous, url, body)
        assert resp.status_code == 401 and resp.json()["code"] == "not_signed_in"
        assert anonymous.get(url).status_code == 405
    assert not Order.objects.exists()


def test_another_stores_clerk_sells_from_their_own_store_only(client_b, store_a, store_b, stocked, shift_b):
    shirt, jeans = stocked
    resp = post(client_b, COMPLETE, sale_body(shirt, jeans, lines=[{"sku": jeans.pk, "qty": 1}],
                                              payment={"cash_tendered": "249"}))
    assert resp.status_code == 409 and resp.json()["code"] == "insufficient_stock"  # store B has no jeans
    resp = post(client_b, COMPLETE, sale_body(shirt, jeans, lines=[{"sku": shirt.pk, "qty": 1}],
                                              payment={"cash_tendered": "99"}))
    assert resp.status_code == 201
    assert Order.objects.get().store_id == store_b.pk


def test_a_complete_writes_no_session_row(clerk_a, store_a, stocked, shift_a):
    shirt, jeans = stocked
    client = login(clerk_a)
    post(client, PRICE, {"lines": [{"sku": shirt.pk, "qty": 1}]})  # stamps the last-seen time once
    with CaptureQueriesContext(connection) as ctx:
        resp = post(client, COMPLETE, sale_body(shirt, jeans))
    assert resp.status_code == 201
    assert not [sql for sql in writes(ctx) if "django_session" in sql]


def test_a_complete_looks_its_client_uuid_up_once_and_a_retry_answers_the_same_sale(
        client_a, stocked, shift_a):
    shirt, jeans = stocked
    body = sale_body(shirt, jeans)
    with CaptureQueriesContext(connection) as ctx:
        resp = post(client_a, COMPLETE, body)
    assert resp.status_code == 201
    assert sum(q["sql"].startswith('SELECT "orders_order"') for q in ctx.captured_queries) == 1
    again = post(client_a, COMPLETE, body)
    assert again.status_code == 200 and again.json()["number"] == resp.json()["number"]
    assert Order.objects.count() == 1


def test_a_sale_made_online_and_queued_again_after_a_lost_answer_is_recorded_once(
        client_a, store_a, stocked, shift_a):
    """The till's complete reached the server, its answer did not: the till queued the same sale
    (same client UUID) for /pos/sync/, which answers it as already recorded."""
    shirt, jeans = stocked
    body = sale_body(shirt, jeans, lines=[{"sku": shirt.pk, "qty": 1}], payment={"cash_tendered": "100"})
    assert post(client_a, COMPLETE, body).status_code == 201
    queued = {"client_uuid": body["client_uuid"], "till": "T1", "sequence": 1,
              "receipt_number": f"{store_a.code}-T1-000001", "sold_at": "2026-12-04T10:15:00+08:00",
              "lines": [{"sku_id": shirt.pk, "qty": 1, "unit_price": "99.00"}],
              "tenders": [{"tender": "cash", "amount": "99.00", "tendered": "100.00"}]}
    resp = client_a.post("/pos/sync/", json.dumps({"sales": [queued]}), content_type="application/json")
    order = Order.objects.get()
    assert resp.json()["results"] == [{"client_uuid": body["client_uuid"], "status": "already_recorded",
                                       "order_number": order.number}]
    assert level(store_a, shirt) == 4 and StockMove.objects.filter(reference=order.number).count() == 1
    assert OfflineSale.objects.get(client_uuid=body["client_uuid"]).order_id == order.pk


def test_price_skips_a_group_promotion_that_would_cost_the_customer_a_stacking_one(client_a, store_a, stocked,
                                                                                   shift_a):
    """满300打8折 always stacks; the weekend group's special price of 199 on the jeans would pull the
    348.00 basket under 300 (50.00 off instead of 69.60), so the counter prices it without the group."""
    from promotions.tests.factories import promotion

    shirt, jeans = stocked
    promotion(code="M300", name="满300打8折", kind="threshold_percent", threshold=D("300.00"), percent=D("20"))
    promotion(code="WKND", name="周末特价", kind="special_price", price=D("199.00"), exclusive_group="weekend",
              skus=[jeans])
    resp = post(client_a, PRICE, {"lines": [{"sku": shirt.pk, "qty": 1}, {"sku": jeans.pk, "qty": 1}]})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert (body["subtotal"], body["promotion_discount"], body["total"]) == ("348.00", "69.60", "278.40")
