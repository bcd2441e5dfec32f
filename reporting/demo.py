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

from inventory.models import Bucket, StockLevel
from members.services.members import member_register
from orders import services
from reporting import rollups
from orders.models import Channel, Fulfillment, Order
from orders.services import LineIn, ReturnLineIn, TenderIn

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
        # Move the day's rows back to a trading hour of that day.
        target = datetime.combine(day, dtime(10, 0), tzinfo=tz) + timedelta(minutes=rng.randint(0, 600))
        params = {"delta": now - target, "orders": [o.pk for o in orders], "numbers": [o.number for o in orders]}
        with connection.cursor() as cursor:
            for sql in SHIFT_SQL.values():
                cursor.execute(sql, params)
    if days:
        rollups.sales_rollup_refresh(first=today - timedelta(days=days), last=today)
    return f"{made['orders']} orders and {made['returns']} returns over {days} days"
