"""One customer across three stores and the mini-program, driven only through the faces.

A customer registers at store A's till with a guide (POS pages) and buys a shirt; the guide hands
them a coupon on the guide's page; later they order a shirt and a coat in the mini-program through
``POST /api/v1/orders/`` with the coupon and points, pay the rest at the provider, pick the parcel
up at store B (POS pickup page) and bring the shirt back at store C (POS returns page).  Points
(earned, frozen, reversed, the redeemed ones given back), the coupon (redeemed, kept by the policy
for a partial return), the guide's commission (accrued, clawed back) and the day's settlement all
add up, and ``audit_ledgers`` is clean.  The beat jobs (points release, settlement) run as the
scheduler runs them.
"""

import io
import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from members.models import CommissionEntry, CommissionRule, GuideBinding, IssuedCoupon, Member, PointsEntry
from members.services import guides, points
from members.tests.test_coupons import make_template
from o2o.apiauth import SCOPES, partner_key_create
from orders.models import Order, Return, Status
from payments.models import Payment, Refund
from payments.services import refund_process
from payments.providers.sandbox import sandbox_notification
from settlement import services as settlement
from settlement.models import SettlementStatement, StoreSettlement
from settlement.tests.scenario import end_of_today
from stores.models import Role, Warehouse
from stores.tests.factories import StaffFactory, StoreFactory, WarehouseFactory
from tests.api.conftest import meta

# Committed transactions, as in production: the provider refund is sent after the return commits.
pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal
PHONE = "13800138000"


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def htmx(client, url, data=None):
    return client.post(url, data or {}, HTTP_HX_REQUEST="true")


def page_uuid(html: str) -> str:
    return re.search(r'name="client_uuid" value="([^"]+)"', html).group(1)


def idem() -> dict:
    return {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex}


def open_shift(client) -> None:
    assert client.post(reverse("pos:shift_open"), {"opening_float": "200.00"}).status_code == 302


@pytest.fixture
def world():
    WarehouseFactory(kind=Warehouse.Kind.CENTRAL)
    a, b, c = StoreFactory(code="HZ001"), StoreFactory(code="HZ002"), StoreFactory(code="HZ003")
    shirt = SkuFactory(code="TS-001", list_price=D("100.00"))
    coat = SkuFactory(code="CT-001", list_price=D("300.00"))
    stock.stock_receive(warehouse=a.warehouse, lines=[(shirt.id, 5)])
    stock.stock_receive(warehouse=b.warehouse, lines=[(shirt.id, 5), (coat.id, 5)])
    CommissionRule.objects.create(rate_percent=D("5.00"))
    _key, raw = partner_key_create(name="mini program", channel="mini_program", scopes=SCOPES)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return {
        "a": a, "b": b, "c": c, "shirt": shirt, "coat": coat, "api": api,
        "guide": StaffFactory(role=Role.GUIDE, store=a, display_name="刘洋", guide_code="G-HZ001-01"),
        "till_a": login(StaffFactory(role=Role.CLERK, store=a).user),
        "till_b": login(StaffFactory(role=Role.CLERK, store=b).user),
        "till_c": login(StaffFactory(role=Role.CLERK, store=c).user),
        "template": make_template(name="导购专享20元", amount=D("20.00"), guide_can_issue=True),
    }


def test_a_customer_across_three_stores_and_the_mini_program(world):
    a, b, c, shirt, coat, api, guide = (world[k] for k in ("a", "b", "c", "shirt", "coat", "api", "guide"))
    for till in ("till_a", "till_b", "till_c"):
        open_shift(world[till])

    # --- Store A: registered at the till with the guide who served them, and a first shirt in cash.
    till = world["till_a"]
    uid = page_uuid(till.get(reverse("pos:sale")).content.decode())
    htmx(till, reverse("pos:sale_guide"), {"guide": str(guide.pk)})
    assert htmx(till, reverse("pos:sale_member"), {"phone": PHONE, "name": "王芳", "register": "1"}).status_code == 200
    htmx(till, reverse("pos:sale_scan"), {"code": shirt.barcode})
    sold = htmx(till, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "100"})
    assert sold.status_code == 200, sold.content.decode()[-500:]
    member = Member.objects.get(phone="+86" + PHONE)
    first = Order.objects.get(channel="pos", member=member)
    assert GuideBinding.objects.get(member=member, ended_reason="").guide_id == guide.pk
    assert (first.total, first.guide_id) == (D("100.00"), guide.pk)
    member.refresh_from_db()
    assert (member.points_frozen, member.points_available) == (100, 0)  # 1 point per yuan, frozen
    # The return window passes: the beat job releases the points.
    points.points_unfreeze(now=timezone.now() + timedelta(days=8))
    member.refresh_from_db()
    assert (member.points_frozen, member.points_available) == (0, 100)

    # --- The guide hands them a 20-off coupon on the guide's page.
    handed = login(guide.user).post(reverse("pos:guide_coupon"), {"phone": PHONE, "template": world["template"].pk})
    assert handed.status_code == 302
    coupon = IssuedCoupon.objects.get(member=member)

    # --- The mini-program: a shirt and a coat for pickup at store B, with the coupon and 100 points.
    placed = api.post("/api/v1/orders/", {
        "fulfillment": "pickup", "store": b.pk, "member": {"phone": PHONE}, "coupon_code": coupon.code,
        "points": 100, "lines": [{"sku": shirt.pk, "qty": 1}, {"sku": coat.pk, "qty": 1}]}, format="json", **idem())
    assert placed.status_code == 201, placed.content
    order = Order.objects.get(pk=placed.json()["id"])
    assert (order.subtotal, order.coupon_discount, order.total, order.paid_total) == (
        D("400.00"), D("20.00"), D("380.00"), D("1.00"))
    assert order.guide_id == guide.pk  # attributed online to the guide who served them in store A
    started = api.post(f"/api/v1/orders/{order.pk}/payments/", {"tender": "sandbox"}, format="json", **idem())
    assert started.status_code == 201 and D(started.json()["amount"]) == D("379.00")
    headers, body = sandbox_notification(Payment.objects.get(pk=started.json()["id"]))
    notified = APIClient().post("/api/v1/payments/notify/sandbox/", data=body, **meta(headers))
    assert notified.status_code == 200
    order.refresh_from_db()
    assert order.status == Status.READY_FOR_PICKUP
    coupon.refresh_from_db()
    assert coupon.status == "redeemed"
    member.refresh_from_db()
    assert member.points_available == 0  # the 100 points paid 1.00

    # --- Store B: the customer shows the pickup code and takes the goods.
    till = world["till_b"]
    assert order.pickup_code in till.post(reverse("pos:pickup"), {"code": order.pickup_code}).content.decode()
    assert till.post(reverse("pos:pickup_handover"), {"code": order.pickup_code}).status_code == 200
    order.refresh_from_db()
    assert order.status == Status.PICKED_UP
    member.refresh_from_db()
    assert member.points_frozen == 379  # earned on the money paid (points are not money), frozen
    earned = PointsEntry.objects.get(member=member, order_number=order.number, kind="earn")
    assert (earned.frozen_delta, earned.available_delta) == (379, 0)
    assert guides.commission_balance(guide) == (D("24.00"), D("0.00"))  # 5 % of 100.00 + 5 % of 380.00

    # --- Store C: the shirt comes back (found by its order number, the online receipt).
    till = world["till_c"]
    found = till.get(reverse("pos:returns"), {"q": order.number})
    assert found["Location"] == reverse("pos:return_detail", args=[order.pk])
    detail = till.get(found["Location"]).content.decode()
    shirt_line = order.lines.get(sku=shirt)
    assert shirt_line.line_total == D("95.00")  # 100.00 less its 5.00 share of the coupon
    form = {f"condition_{line.pk}": "sellable" for line in order.lines.all()}
    returned = till.post(found["Location"], {**form, "client_uuid": page_uuid(detail), f"qty_{shirt_line.pk}": "1",
                                              "reason": "尺码不合适"})
    assert returned.status_code == 302
    ret = Return.objects.get(order=order)
    assert (ret.store, ret.refund_total) == (c, D("95.00"))
    refunds = {r.payment.tender: r.amount for r in Refund.objects.filter(payment__reference=order.number)}
    # Back to the tenders in proportion: 95 × 1/380 to points, the rest to the customer's account.
    assert refunds == {"points": D("0.25"), "sandbox": D("94.75")}
    assert sum(refunds.values()) == ret.refund_total
    # The worker sends the provider refund (queued after commit); the sandbox completes it.
    for pending in Refund.objects.filter(payment__reference=order.number, status="pending"):
        refund_process(refund_id=pending.pk)  # what the queued task runs, outside any transaction
    assert set(Refund.objects.filter(payment__reference=order.number).values_list("status", flat=True)) == {
        "succeeded"}

    member.refresh_from_db()
    # Earned points reversed: ceil(379 × 94.75 / 379) = 95 of the 379; the 0.25 paid in points is 25 back.
    assert (member.points_frozen, member.points_available) == (379 - 95, 25)
    reversal = PointsEntry.objects.get(member=member, order_number=order.number, kind="reverse")
    assert (reversal.frozen_delta, reversal.reference) == (-95, ret.number)
    restored = PointsEntry.objects.get(member=member, order_number=order.number, kind="restore")
    assert restored.available_delta == 25
    # Commission clawed back in proportion: 19.00 × 95/380 = 4.75.
    entries = CommissionEntry.objects.filter(order_number=order.number)
    assert entries.filter(kind="accrual").aggregate(s=Sum("frozen_delta"))["s"] == D("19.00")
    assert entries.filter(kind="clawback").aggregate(s=Sum("frozen_delta"))["s"] == D("-4.75")
    assert guides.commission_balance(guide) == (D("19.25"), D("0.00"))
    coupon.refresh_from_db()
    assert coupon.status == "redeemed"  # the policy: a coupon comes back only when the whole order does

    # --- The day's settlement adds up.
    settlement.settlement_run(until=settlement.business_day_of(timezone.now()), now=end_of_today())
    statements = SettlementStatement.objects.all()
    captured = Payment.objects.filter(status="captured").aggregate(s=Sum("amount"))["s"]
    given_back = Refund.objects.filter(status="succeeded").aggregate(s=Sum("amount"))["s"]
    assert captured == D("480.00") and given_back == D("95.00")  # 100 + 1 + 379 taken, 95 given back
    assert sum(st.payments_total for st in statements) == captured
    assert sum(st.refunds_total for st in statements) == given_back
    assert sum(st.net for st in statements) == D("100.00") + D("380.00") - D("95.00")
    counter_a = statements.get(store=a, channel="pos")
    assert (counter_a.sales_net, counter_a.payments_total) == (D("100.00"), D("100.00"))
    picked_up = statements.get(store=b, channel="mini_program")  # revenue where the goods were handed over
    # The coupon's 20.00 on the sale, less the shirt's 5.00 share that went back with its refund.
    assert (picked_up.sales_net, picked_up.coupon_discount, picked_up.returns_net) == (
        D("380.00"), D("15.00"), D("95.00"))
    assert picked_up.net == D("285.00")
    assert not statements.filter(store=c).exclude(payments_total=0, refunds_total=0).exists()  # no money at C
    assert StoreSettlement.objects.filter(store=b).get().commission_released == 0  # still frozen

    out = io.StringIO()
    call_command("audit_ledgers", stdout=out)
    assert "all ledgers consistent" in out.getvalue()
