"""A multi-store business day built with the real order, payment and member services.

Three stores in one city.  During the day:

* store A sells at the counter for cash, and later takes one unit back for cash;
* a member orders on the mini-program for pickup at A with a coupon borne by e-commerce, pays
  online, picks up at A and returns one line at store B (refunded online);
* a web order ships from the central warehouse;
* a member bound to a guide of store C buys at store B, partly with wallet money recharged at C,
  and partly with points;
* an online pickup order at C is paid and cancelled (refunded online);
* at B, a sale is exchanged for dearer goods, the customer paying the difference by card.

Provider refunds are completed the way the provider's answer would (``refund_complete``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from members.models import CommissionRule, CouponTemplate
from members.services import coupons, guides, members, points, wallet
from orders import services
from orders.models import Channel, Fulfillment
from orders.services import LineIn, ReturnLineIn, TenderIn
from settlement.models import SplitRule
from payments import services as pay
from payments.models import Payment, Refund
from payments.providers.sandbox import sandbox_notification
from stores.models import Role, Warehouse
from stores.tests.factories import StaffFactory, StoreFactory, WarehouseFactory

D = Decimal


def shop() -> dict:
    """Stores A, B, C with stock, a guide at C, a clerk at B, and the two split rules HQ set up."""
    central = WarehouseFactory(kind=Warehouse.Kind.CENTRAL, code="CW-S")
    a, b, c = StoreFactory(code="SA", name="西湖店"), StoreFactory(code="SB", name="滨江店"), \
        StoreFactory(code="SC", name="萧山店")
    shirt, coat, cap = (SkuFactory(list_price=D("100.00")), SkuFactory(list_price=D("300.00")),
                        SkuFactory(list_price=D("33.33")))
    for warehouse in (central, a.warehouse, b.warehouse, c.warehouse):
        stock.stock_receive(warehouse=warehouse, lines=[(shirt.id, 20), (coat.id, 20), (cap.id, 20)])
    guide = StaffFactory(role=Role.GUIDE, store=c, guide_code="G-SC-01")
    clerk_a = StaffFactory(role=Role.CLERK, store=a).user
    clerk_b = StaffFactory(role=Role.CLERK, store=b).user
    CommissionRule.objects.create(rate_percent=D("5.00"))
    online = SplitRule.objects.create(name="线上订单门店履约", priority=10, channel="", fulfillment="pickup",
                                      ecommerce_percent=D("10.50"))
    shipped = SplitRule.objects.create(name="门店发货", priority=20, fulfillment="ship_store",
                                       ecommerce_percent=D("10.50"))
    guided = SplitRule.objects.create(name="跨店导购", priority=30, channel="pos",
                                      guide_condition=SplitRule.GuideCondition.OTHER_STORE,
                                      guide_store_percent=D("5.00"))
    return {"central": central, "a": a, "b": b, "c": c, "shirt": shirt, "coat": coat, "cap": cap,
            "guide": guide, "clerk_a": clerk_a, "clerk_b": clerk_b,
            "rules": {"online": online, "shipped": shipped, "guided": guided}}


def pay_online(order) -> Payment:
    payment = services.order_payment_start(order=order, tender="sandbox")
    headers, body = sandbox_notification(payment)
    services.order_payment_notify(provider="sandbox", headers=headers, body=body)
    payment.refresh_from_db()
    return payment


def complete_provider_refunds() -> None:
    for refund in Refund.objects.filter(status=Refund.Status.PENDING).order_by("pk"):
        pay.refund_complete(refund=refund, provider_refund_id=f"SBXR{refund.number}", success=True)


def build_day(s: dict) -> dict:
    """Run the day described in the module docstring.  Returns the documents created."""
    a, b, c = s["a"], s["b"], s["c"]
    out = {}
    # Counter sale at A for cash; one shirt comes back later for cash.
    out["pos_a"] = services.pos_sale_create(store=a, client_uuid=uuid.uuid4(), actor=s["clerk_a"],
                                            lines=[LineIn(s["shirt"].id, 2), LineIn(s["cap"].id, 3)],
                                            tenders=[TenderIn("cash", D("299.99"))]).order

    # Mini-program pickup at A with a 20.00 coupon borne by e-commerce, returned in part at B.
    m1 = members.member_register(phone="13800138001", channel="mini_program")
    template = CouponTemplate.objects.create(code="EC20", name="电商券", kind="fixed", amount=D("20.00"),
                                             validity="days", valid_days=30, bearer="ecommerce")
    coupon = coupons.coupon_issue(template=template, member=m1)
    pickup = services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP, store=a,
                                  external_id="MP-1", member=m1, coupon_code=coupon.code,
                                  lines=[LineIn(s["shirt"].id, 1), LineIn(s["coat"].id, 1),
                                         LineIn(s["cap"].id, 1)]).order
    pay_online(pickup)
    services.pickup_handover(code=pickup.pickup_code, store=a)
    out["pickup_a"] = pickup
    out["pickup_return"] = services.return_create(
        order=pickup, store=b, actor=s["clerk_b"], lines=[ReturnLineIn(pickup.lines.get(sku=s["coat"]).pk, 1)])

    # Web order shipped from the central warehouse.
    shipped = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_WAREHOUSE, external_id="W-1",
                                   lines=[LineIn(s["coat"].id, 1)], ship_city_id=a.city_id).order
    pay_online(shipped)
    out["shipped"] = shipped

    # A member of C's guide buys at B with wallet money recharged at C, and points.
    m2 = members.member_register(phone="13800138002", channel="pos", store_id=c.pk)
    guides.guide_bind(member=m2, guide_code="G-SC-01", source="pos")
    wallet.wallet_recharge(member=m2, reference="RC-C-1", principal=D("500.00"), bonus=D("50.00"), store_id=c.pk)
    points.points_adjust(member=m2, points=1000, reason="welcome")
    out["guided_b"] = services.pos_sale_create(
        store=b, client_uuid=uuid.uuid4(), actor=s["clerk_b"], member=m2,
        lines=[LineIn(s["coat"].id, 1), LineIn(s["shirt"].id, 1)],
        tenders=[TenderIn("wallet", D("390.00")), TenderIn("points", D("10.00"))]).order

    # An online pickup at C, paid, then cancelled before pickup.
    cancelled = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=c,
                                     external_id="W-2", lines=[LineIn(s["shirt"].id, 2)]).order
    pay_online(cancelled)
    services.order_cancel(order=cancelled, reason="customer changed their mind")
    out["cancelled"] = cancelled

    # Exchange at B: a cap sold for cash, swapped for a shirt; the difference paid by card.
    sale = services.pos_sale_create(store=b, client_uuid=uuid.uuid4(), actor=s["clerk_b"],
                                    lines=[LineIn(s["cap"].id, 1)], tenders=[TenderIn("cash", D("33.33"))]).order
    out["exchange"] = services.exchange_create(
        order=sale, store=b, actor=s["clerk_b"], client_uuid=uuid.uuid4(),
        return_lines=[ReturnLineIn(sale.lines.get().pk, 1)], new_lines=[LineIn(s["shirt"].id, 1)],
        tenders=[TenderIn("unionpay_card", D("66.67"), card_reference="CARD-0001")])

    # A takes one shirt of its counter sale back, for cash.
    out["pos_a_return"] = services.return_create(
        order=out["pos_a"], store=a, actor=s["clerk_a"],
        lines=[ReturnLineIn(out["pos_a"].lines.get(sku=s["shirt"]).pk, 1)])
    complete_provider_refunds()
    out["members"] = (m1, m2)
    return out


def shift_days(days: int = 1) -> None:
    """Move every recorded event ``days`` back in time, as if it had happened then (tests only)."""
    moves = {
        "orders_order": ["created_at", "updated_at", "paid_at", "handed_over_at", "expires_at"],
        "orders_orderevent": ["created_at"],
        "orders_return": ["created_at"],
        "payments_payment": ["created_at", "captured_at", "closed_at"],
        "payments_refund": ["created_at", "completed_at"],
        "payments_posshift": ["opened_at", "closed_at"],
        "members_pointsentry": ["created_at"],
        "members_pointslot": ["created_at"],
        "members_walletentry": ["created_at"],
        "members_walletrecharge": ["created_at"],
        "members_walletspendallocation": ["created_at"],
        "members_couponredemption": ["redeemed_at"],
    }
    with connection.cursor() as cur:
        for table, columns in moves.items():
            sets = ", ".join(f"{c} = {c} - make_interval(days => %s)" for c in columns)
            cur.execute(f"UPDATE {table} SET {sets}", [days] * len(columns))


def end_of_today() -> datetime:
    """An instant just after today's business day ends (what "now" is when its settlement runs)."""
    from settlement.services import business_day_of, day_start

    return day_start(business_day_of(timezone.now()) + timedelta(days=1)) + timedelta(seconds=1)
