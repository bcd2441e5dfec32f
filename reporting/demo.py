"""Weeks of believable trading for the demo, made through the real order services.

Each past day gets POS sales in every store, online pickup orders paid and handed
over, online orders shipped from central and a few returns (some of online orders,
taken back in a store).  Orders are created now and then moved back to the day they
stand for with one UPDATE per table and day, so the services stay the only writers
of business rows.  Made once: the online orders carry ``DEMO-H-`` external ids, POS
sales and returns deterministic UUIDs, and a second run finds the history and stops.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, time as dtime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import F, Max

from catalog.models import Category
from inventory.models import Bucket, StockLevel
from members.models import (
    CommissionEntry,
    CommissionRule,
    CouponCampaign,
    CouponTemplate,
    IssuedCoupon,
    Member,
    PointsConfig,
    PointsEntry,
    PointsRule,
    RechargePackage,
)
from members.services import coupons, guides, points, wallet
from members.services.members import member_register
from orders import services
from reporting import rollups
from orders.pricing import sale_price
from orders.models import Channel, Fulfillment, Order
from orders.services import LineIn, ReturnLineIn, TenderIn
from payments import approvals
from payments.models import ManagerPin

EXTERNAL_PREFIX = "DEMO-H-"
NAMESPACE = uuid.UUID("6f1c2a52-8d7e-4a8e-9a57-3b1f0c7d2e10")
TENDERS = ["cash", "unionpay_card"]

SHIFT_SQL = {
    "orders_order": "UPDATE orders_order SET created_at = created_at - %(delta)s, paid_at = paid_at - %(delta)s, "
                    "handed_over_at = handed_over_at - %(delta)s, updated_at = updated_at - %(delta)s, "
                    "expires_at = expires_at - %(delta)s WHERE id = ANY(%(orders)s)",
    "orders_orderevent": "UPDATE orders_orderevent SET created_at = created_at - %(delta)s "
                         "WHERE order_id = ANY(%(orders)s)",
    "orders_return": "UPDATE orders_return SET created_at = created_at - %(delta)s WHERE order_id = ANY(%(orders)s)",
    "inventory_stockmove": "UPDATE inventory_stockmove SET created_at = created_at - %(delta)s "
                           "WHERE reference = ANY(%(numbers)s)",
    "payments_payment": "UPDATE payments_payment SET created_at = created_at - %(delta)s, "
                        "captured_at = captured_at - %(delta)s, closed_at = closed_at - %(delta)s "
                        "WHERE reference = ANY(%(numbers)s)",
    "payments_refund": "UPDATE payments_refund SET created_at = created_at - %(delta)s, "
                       "completed_at = completed_at - %(delta)s "
                       "WHERE payment_id IN (SELECT id FROM payments_payment WHERE reference = ANY(%(numbers)s))",
    # Points earned on the day stay frozen for the return window counted from that day, not from
    # today: the unfreeze job then frees what is past its window.
    "members_pointslot": "UPDATE members_pointslot SET created_at = created_at - %(delta)s, "
                         "frozen_until = frozen_until - %(delta)s WHERE order_number = ANY(%(numbers)s)",
    "members_pointsentry": "UPDATE members_pointsentry SET created_at = created_at - %(delta)s "
                           "WHERE order_number = ANY(%(numbers)s)",
}


def _tender(kind: str, amount: Decimal) -> TenderIn:
    # A card payment's reference is the terminal's transaction id, unique per payment.
    return TenderIn(kind, amount, card_reference=uuid.uuid4().hex[:20] if kind == "unionpay_card" else "")


def history_create(*, days: int, seed: int, stores, central, skus, guide=None) -> str:
    """Create ``days`` days of orders before today.  Returns a one-line summary."""
    if Order.objects.filter(external_id__startswith=EXTERNAL_PREFIX).exists():
        return "history already there"
    rng = random.Random(f"{seed}:history")
    members = [member_register(phone=f"+86138{seed % 1000:03d}{n:05d}", channel=Channel.POS,
                               store_id=stores[n % len(stores)].pk, name=f"会员{n:03d}") for n in range(80)]
    store_stock = {s.pk: dict(StockLevel.objects.filter(warehouse=s.warehouse, bucket=Bucket.SELLABLE)
                              .values_list("sku_id", "on_hand")) for s in stores}
    prices = {s.id: s.list_price for s in skus}
    central_skus = [s.id for s in skus]
    tz = ZoneInfo(settings.TIME_ZONE)
    today = rollups.business_today()
    made = {"orders": 0, "returns": 0}
    numbers: list[str] = []
    now = datetime.now(tz)

    def take(store, n):
        """Up to n SKUs the store still has (one unit each), updating what it has left."""
        left = store_stock[store.pk]
        choice = [sku for sku, qty in left.items() if qty > 0]
        picked = rng.sample(choice, k=min(n, len(choice)))
        for sku in picked:
            left[sku] -= 1
        return picked

    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        weekend = day.weekday() >= 5
        orders: list[Order] = []
        for store in stores:
            for k in range(rng.randint(3, 6) + (3 if weekend else 0)):
                picked = take(store, rng.choice([1, 1, 2]))
                if not picked:
                    break
                total = sum(prices[s] for s in picked)
                member = rng.choice(members) if rng.random() < 0.4 else None
                result = services.pos_sale_create(
                    store=store, client_uuid=uuid.uuid5(NAMESPACE, f"{seed}:{day}:{store.code}:{k}"),
                    lines=[LineIn(s, 1) for s in picked], tenders=[_tender(rng.choice(TENDERS), total)],
                    member=member, guide_id=guide.pk if guide and store.pk == stores[0].pk and k % 2 else None)
                orders.append(result.order)
            for k in range(rng.randint(0, 2) + (1 if weekend else 0)):
                picked = take(store, 1)
                if not picked:
                    break
                placed = services.order_place(
                    channel=rng.choice([Channel.WEB, Channel.MINI_PROGRAM]), fulfillment=Fulfillment.PICKUP,
                    store=store, lines=[LineIn(picked[0], 1)], member=rng.choice(members),
                    external_id=f"{EXTERNAL_PREFIX}{day:%Y%m%d}-{store.code}-P{k}").order
                services.order_pay(order=placed, tenders=[TenderIn("cash", placed.total)], store=store)
                if rng.random() < 0.9:
                    services.pickup_handover(code=placed.pickup_code, store=store)
                orders.append(placed)
        for k in range(rng.randint(4, 9)):
            placed = services.order_place(
                channel=rng.choice([Channel.WEB, Channel.MINI_PROGRAM, Channel.MARKETPLACE]),
                fulfillment=Fulfillment.SHIP_WAREHOUSE, lines=[LineIn(rng.choice(central_skus), 1)],
                member=rng.choice(members) if rng.random() < 0.5 else None,
                external_id=f"{EXTERNAL_PREFIX}{day:%Y%m%d}-S{k}", ship_city_id=stores[0].city_id).order
            services.order_pay(order=placed, tenders=[TenderIn("cash", placed.total)])
            orders.append(placed)
        for n, order in enumerate(rng.sample(orders, k=max(1, len(orders) // 15))):
            order.refresh_from_db()
            if not order.handed_over_at:
                continue
            line = order.lines.first()
            services.return_create(order=order, store=order.store or stores[n % len(stores)],
                                   lines=[ReturnLineIn(line.id, 1)], reason="demo",
                                   client_uuid=uuid.uuid5(NAMESPACE, f"{seed}:{day}:return:{n}"))
            made["returns"] += 1
        made["orders"] += len(orders)
        numbers.extend(o.number for o in orders)
        # Move the day's rows back to a trading hour of that day.
        target = datetime.combine(day, dtime(10, 0), tzinfo=tz) + timedelta(minutes=rng.randint(0, 600))
        params = {"delta": now - target, "orders": [o.pk for o in orders], "numbers": [o.number for o in orders]}
        with connection.cursor() as cursor:
            for sql in SHIFT_SQL.values():
                cursor.execute(sql, params)
    if days:
        rollups.sales_rollup_refresh(first=today - timedelta(days=days), last=today)
    # What the beat jobs would have done on those days: points past their return window unfreeze.
    # Commission entries are append-only (their times cannot be moved back), so the history's
    # accruals — all made in this run — are released at the end of the last one's window.
    points.points_unfreeze()
    last = CommissionEntry.objects.filter(kind=CommissionEntry.Kind.ACCRUAL, order_number__in=numbers) \
        .aggregate(last=Max("frozen_until"))["last"]
    if last is not None:
        guides.commission_release(at=last)
    return f"{made['orders']} orders and {made['returns']} returns over {days} days"


# --- the programme and the showcase: what a first click should find ------------------------------

SHOWCASE_PHONE = "13800138000"
SHOWCASE_NAME = "王芳"
MANAGER_PIN = "2580"
WELCOME_CAMPAIGN = "新会员见面礼"
GUIDE_CODE = "G-HZ001-01"
# code, name, fields
COUPON_TEMPLATES = [
    ("DEMO-300-50", "满300减50", {"kind": "threshold", "threshold": Decimal("300.00"), "amount": Decimal("50.00"),
                                 "valid_days": 30, "claimable_online": True, "guide_can_issue": True,
                                 "per_member_limit": 2}),
    ("DEMO-10OFF", "全场9折（最多减100）", {"kind": "percent", "percent": Decimal("10.00"),
                                         "max_discount": Decimal("100.00"), "valid_days": 14,
                                         "bearer": "split", "ecommerce_share_percent": Decimal("50.00")}),
    ("DEMO-SHOES-80", "鞋靴满500减80", {"kind": "threshold", "threshold": Decimal("500.00"),
                                     "amount": Decimal("80.00"), "valid_days": 30, "bearer": "store"}),
    ("DEMO-20", "20元无门槛券", {"kind": "fixed", "amount": Decimal("20.00"), "valid_days": 7,
                              "channels": ["pos"], "guide_can_issue": True}),
]


def programme_create(*, stores) -> str:
    """Points settings, earning rules, commission rules, recharge packages and coupon templates:
    the set-up head office would otherwise do in the admin before a clerk can try points or coupons.
    These are settings rows (the admin writes them the same way); found by their natural keys."""
    PointsConfig.objects.get_or_create(pk=1, defaults={
        "points_per_yuan_redeemed": 100, "default_points_per_yuan": Decimal("1.00"),
        "redeem_max_share": Decimal("0.50")})
    footwear = Category.objects.filter(code="footwear").first()
    PointsRule.objects.get_or_create(channel="mini_program", category=None, defaults={
        "points_per_yuan": Decimal("2.00"), "note": "小程序下单双倍积分"})
    if footwear:
        PointsRule.objects.get_or_create(channel="", category=footwear, defaults={
            "points_per_yuan": Decimal("1.50"), "note": "鞋靴 1.5 倍积分"})
    CommissionRule.objects.get_or_create(store=None, category=None, sku=None, defaults={"rate_percent": Decimal("3.00")})
    accessories = Category.objects.filter(code="accessories").first()
    if accessories:
        CommissionRule.objects.get_or_create(store=None, category=accessories, sku=None,
                                             defaults={"rate_percent": Decimal("5.00")})
    for name, pay, bonus, order in [("充500送50", "500.00", "50.00", 10), ("充1000送120", "1000.00", "120.00", 20)]:
        RechargePackage.objects.get_or_create(name=name, defaults={
            "pay_amount": Decimal(pay), "bonus_amount": Decimal(bonus), "sort_order": order})
    made = 0
    for code, name, fields in COUPON_TEMPLATES:
        template, created = CouponTemplate.objects.get_or_create(
            code=code, defaults={"name": name, "validity": "days", **fields})
        made += created
        if created and code == "DEMO-SHOES-80" and footwear:
            template.categories.set([footwear])
    return f"points settings, earning, commission and recharge rules, {made} new coupon templates"


def _sku_in_stock(store, rng: random.Random, *, at_least: int = 1, exclude=()):
    level = (StockLevel.objects.filter(warehouse=store.warehouse, bucket=Bucket.SELLABLE,
                                       on_hand__gte=F("reserved") + at_least)
             .exclude(sku_id__in=list(exclude)).order_by("sku_id").values_list("sku_id", flat=True))
    ids = list(level[:200])
    return rng.choice(ids) if ids else None


def showcase_create(*, seed: int, stores, manager=None, guide=None) -> str:
    """Members with available and frozen points and wallet money, coupons in their hands, a guide
    with bound customers and commission frozen, released and clawed back, a manager PIN, and
    online orders waiting at every store: made through the services, once a day at most."""
    rng = random.Random(f"{seed}:showcase:{rollups.business_today()}")
    today = rollups.business_today()
    done = []
    wang = member_register(phone=SHOWCASE_PHONE, channel=Channel.POS, store_id=stores[0].pk, name=SHOWCASE_NAME)
    others = list(Member.objects.filter(merged_into__isnull=True).exclude(pk=wang.pk).order_by("pk")[:12])

    if manager is not None and not ManagerPin.objects.filter(staff__user=manager).exists():
        approvals.manager_pin_set(user=manager, pin=MANAGER_PIN)
        done.append("manager PIN")

    # points: a welcome bonus that is available now (sales below add frozen points)
    if not PointsEntry.objects.filter(member=wang, kind="adjust", reason="开卡礼").exists():
        points.points_adjust(member=wang, points=5000, reason="开卡礼")
    # wallet money: 王芳 and a dozen others, one recharge each (the reference makes it once)
    for n, person in enumerate([wang, *others]):
        wallet.wallet_recharge(member=person, reference=f"DEMO-W-{person.pk}", principal=Decimal("500.00"),
                               bonus=Decimal("50.00") if n % 2 == 0 else Decimal("0.00"), store_id=stores[0].pk)

    # coupons: a campaign to every member, and 王芳 holds one of each template
    if not CouponCampaign.objects.filter(name=WELCOME_CAMPAIGN).exists():
        campaign = coupons.coupon_campaign_create(template=CouponTemplate.objects.get(code="DEMO-300-50"),
                                                  name=WELCOME_CAMPAIGN, segment={})
        coupons.coupon_campaign_start(campaign_id=campaign.pk)
        coupons.coupon_campaign_run(campaign_id=campaign.pk)
    for template in CouponTemplate.objects.filter(code__in=["DEMO-10OFF", "DEMO-SHOES-80", "DEMO-20"]):
        if not IssuedCoupon.objects.filter(template=template, issued_to=wang).exists():
            coupons.coupon_issue(template=template, member=wang, note="demo")

    # the guide: customers bound by scanning the guide's code; sales today with frozen commission,
    # one of them partly returned (a clawback); older guided sales in the history are released
    if guide is not None:
        for person in [wang, *others[:8]]:
            guides.guide_bind(member=person, guide_code=GUIDE_CODE, source="qr")

    # today's sales at the first store: 王芳 earns frozen points, the guide frozen commission
    store = stores[0]
    sale_uuid = uuid.uuid5(NAMESPACE, f"{seed}:{today}:showcase:sale")
    first = _sku_in_stock(store, rng, at_least=2)
    picked = [s for s in (first, _sku_in_stock(store, rng, at_least=2, exclude=[first])) if s]
    if picked and not Order.objects.filter(client_uuid=sale_uuid).exists():
        picked = list(dict.fromkeys(picked))
        # Priced as the till prices it (the demo's promotions may be live on a later run).
        priced = sale_price(demand={s: 1 for s in picked}, channel=Channel.POS, store_id=store.pk, member=wang)
        sale = services.pos_sale_create(
            store=store, client_uuid=sale_uuid, priced=priced, tenders=[_tender("cash", priced.total)],
            guide_id=guide.pk if guide else None).order
        if len(picked) > 1 and guide is not None:
            line = sale.lines.order_by("line_no").last()
            services.return_create(order=sale, store=store, lines=[ReturnLineIn(line.id, 1)], reason="尺码不合适",
                                   client_uuid=uuid.uuid5(NAMESPACE, f"{seed}:{today}:showcase:return"))
    done.append(_online_orders(stores=stores, rng=rng, today=today, member=wang))
    return ", ".join(["points, wallet, coupons and guide bindings", *done])


def _online_orders(*, stores, rng: random.Random, today, member) -> str:
    """At every store: a paid pickup order waiting for the customer, an online order handed over
    that can be brought back (线上买线下退), and where the store holds the goods, one to ship."""
    waiting = {"pickup": 0, "return": 0, "ship": 0}
    for store in stores:
        base = f"DEMO-S-{today:%Y%m%d}-{store.code}"
        if Order.objects.filter(external_id__startswith=base).exists():
            continue  # made today already
        sku = _sku_in_stock(store, rng)
        if sku is not None:
            order = services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP, store=store,
                                         lines=[LineIn(sku, 1)], member=member, customer_phone=SHOWCASE_PHONE,
                                         customer_name=SHOWCASE_NAME, external_id=f"{base}-P").order
            if order.status == "pending_payment":
                services.order_pay(order=order, tenders=[TenderIn("cash", order.total)], store=store)
            waiting["pickup"] += 1
        sku = _sku_in_stock(store, rng, exclude=[sku] if sku else ())
        if sku is not None:
            order = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store,
                                         lines=[LineIn(sku, 1)], member=member, customer_phone=SHOWCASE_PHONE,
                                         customer_name=SHOWCASE_NAME, external_id=f"{base}-R").order
            if order.status == "pending_payment":
                services.order_pay(order=order, tenders=[TenderIn("cash", order.total)], store=store)
                order.refresh_from_db()
            if not order.handed_over_at:
                services.pickup_handover(code=order.pickup_code, store=store)
            waiting["return"] += 1
        # ship from store: a SKU this store holds and no store before it in the city (allocation
        # takes the first city store that has it)
        earlier = [s.warehouse_id for s in stores if s.pk < store.pk]
        held_before = set(StockLevel.objects.filter(warehouse_id__in=earlier, bucket=Bucket.SELLABLE,
                                                    on_hand__gt=F("reserved")).values_list("sku_id", flat=True))
        sku = _sku_in_stock(store, rng, exclude=held_before)
        if sku is not None:
            order = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_STORE,
                                         ship_city_id=store.city_id, ship_address="西湖区文三路 1 号",
                                         lines=[LineIn(sku, 1)], customer_phone="13900139000",
                                         customer_name="陈晨", external_id=f"{base}-S").order
            if order.status == "pending_payment":
                services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
            waiting["ship"] += 1
    return (f"online orders waiting: {waiting['pickup']} for pickup, {waiting['return']} returnable, "
            f"{waiting['ship']} to ship from a store")
