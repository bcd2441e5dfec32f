"""Each dashboard figure equals a hand computation on the fixture day (see conftest)."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Avg, DurationField, ExpressionWrapper, F, Sum
from django.utils import timezone

from inventory import services as stock
from members.models import CouponRedemption, CouponTemplate, IssuedCoupon, Member, Tier
from members.services.coupons import coupon_issue
from members.services.members import member_register
from members.services.points import points_adjust
from members.services.wallet import wallet_recharge
from orders import services
from reporting import rollups, selectors
from reporting.models import (
    DailyCommissionRollup,
    DailyMemberChannels,
    DailySalesRollup,
    DailyStockSoldRollup,
    MemberActivityCount,
    MemberActivityDay,
    MemberActivityScope,
    MemberTierRollup,
)
from orders.models import Channel, Fulfillment, Order, Return, Status
from orders.services import LineIn, ReturnLineIn, TenderIn
from stores.models import StaffProfile

pytestmark = pytest.mark.django_db


def hq_scope(user, day, **filters):
    return selectors.scope_for(user, start=day, end=day, **filters)


def rollup_rows():
    return {(r.store_id, r.channel): (r.orders, r.units, r.gross, r.discounts, r.returns, r.returned_orders, r.net)
            for r in DailySalesRollup.objects.all()}


def test_the_rollup_holds_each_store_and_channel_of_the_day_net_of_returns(fixture_day, store_a):
    assert rollup_rows() == {
        # 198 + 99 gross, 9 discount, one unit of sale 1 returned
        (store_a.pk, Channel.POS): (2, 3, Decimal("297.00"), Decimal("9.00"), Decimal("99.00"), 1, Decimal("189.00")),
        # the pickup order, returned in full at store B: counted against the store that sold it
        (store_a.pk, Channel.WEB): (1, 1, Decimal("99.00"), Decimal("0.00"), Decimal("99.00"), 1, Decimal("0.00")),
        # shipped from central: no store
        (None, Channel.MINI_PROGRAM): (1, 1, Decimal("99.00"), Decimal("0.00"), Decimal("0.00"), 0,
                                       Decimal("99.00")),
    }


def test_refreshing_again_changes_nothing_and_a_cancelled_order_drops_out(fixture_day):
    day = fixture_day["day"]
    before = rollup_rows()
    rollups.sales_rollup_refresh(first=day, last=day)
    assert rollup_rows() == before

    services.order_cancel(order=fixture_day["shipped"], reason="customer changed their mind")
    rollups.sales_rollup_refresh(first=day, last=day)
    assert (None, Channel.MINI_PROGRAM) not in rollup_rows()
    assert DailySalesRollup.objects.count() == 2


def stock_sold_rows():
    return {(r.day, r.warehouse_id, r.sku_id): r.units for r in DailyStockSoldRollup.objects.all()}


def test_the_stock_sold_rollup_holds_units_per_warehouse_and_sku(fixture_day, store_a):
    day, skus, warehouse = fixture_day["day"], fixture_day["skus"], store_a.warehouse_id
    # POS sale 1 (2 units), POS sale 2 (1) and the pickup (1) left store A; returns are not sales,
    # and the web shipment has not left the central warehouse yet
    assert stock_sold_rows() == {(day, warehouse, skus[0].id): 2, (day, warehouse, skus[1].id): 1,
                                 (day, warehouse, skus[2].id): 1}
    rollups.sales_rollup_refresh(first=day, last=day)
    assert stock_sold_rows() == {(day, warehouse, skus[0].id): 2, (day, warehouse, skus[1].id): 1,
                                 (day, warehouse, skus[2].id): 1}


def test_the_stock_sold_rollup_is_recomputed_and_drops_rows_without_sales(fixture_day, store_a):
    day = fixture_day["day"]
    # a row the ledger no longer backs (yesterday has no sale moves) and a row gone stale
    DailyStockSoldRollup.objects.update(units=99)
    DailyStockSoldRollup.objects.create(day=day - timedelta(days=1), warehouse=store_a.warehouse,
                                        sku=fixture_day["skus"][0], units=5,
                                        refreshed_at=timezone.now() - timedelta(hours=1))
    rollups.sales_rollup_refresh(first=day - timedelta(days=1), last=day)
    assert {(d, units) for (d, _, _), units in stock_sold_rows().items()} == {(day, 2), (day, 1)}
    assert len(stock_sold_rows()) == 3


def test_sales_summary_totals_and_breakdowns(fixture_day, hq_user, store_a):
    day = fixture_day["day"]
    sales = selectors.sales_summary(hq_scope(hq_user, day))
    assert sales["totals"] == {"orders": 4, "units": 5, "gross": Decimal("495.00"), "discounts": Decimal("9.00"),
                               "returns": Decimal("198.00"), "returned_orders": 2, "net": Decimal("288.00")}
    assert [(d["day"], d["net"]) for d in sales["by_day"]] == [(day, Decimal("288.00"))]
    assert {c["channel"]: c["net"] for c in sales["by_channel"]} == {
        Channel.POS: Decimal("189.00"), Channel.WEB: Decimal("0.00"), Channel.MINI_PROGRAM: Decimal("99.00")}
    assert [(s["store_id"], s["net"]) for s in sales["by_store"]] == [(store_a.pk, Decimal("189.00")),
                                                                       (None, Decimal("99.00"))]


def test_store_filter_keeps_only_that_store(fixture_day, hq_user, store_a, store_b):
    day = fixture_day["day"]
    assert selectors.sales_summary(hq_scope(hq_user, day, store_id=store_a.pk))["totals"]["net"] == Decimal("189.00")
    assert selectors.sales_summary(hq_scope(hq_user, day, store_id=store_b.pk))["totals"]["net"] == Decimal("0.00")


def test_o2o_metrics(fixture_day, hq_user):
    o2o = selectors.o2o_metrics(hq_scope(hq_user, fixture_day["day"]))
    # two online orders paid: the pickup (fulfilled by a store) and the central shipment
    assert (o2o["orders"], o2o["by_store"], o2o["pickup"], o2o["ship_store"]) == (2, 1, 1, 0)
    assert o2o["store_share"] == Decimal("50.0")
    assert (o2o["picked_up"], o2o["pickup_rate"]) == (1, Decimal("100.0"))
    assert o2o["pickup_hours"] == Decimal("0.0")  # handed over right after payment
    assert (o2o["online_returns_in_store"], o2o["online_returns_in_store_amount"]) == (1, Decimal("99.00"))
    # member M bought at the POS and on the web shop
    assert (o2o["active_members"], o2o["omni_members"], o2o["omni_share"]) == (1, 1, Decimal("100.0"))


def test_guide_leaderboard(fixture_day, hq_user, guide_a):
    (row,) = selectors.guide_leaderboard(hq_scope(hq_user, fixture_day["day"]))
    # sale 1: 198.00 less the 99.00 refunded; 5 % commission on 198.00 accrued, 4.95 clawed back
    assert row == {"guide": "刘洋", "orders": 1, "sales": Decimal("99.00"), "commission": Decimal("4.95"),
                   "bound_members": 0}


def test_the_commission_rollup_nets_accruals_and_clawbacks_per_guide_and_day(fixture_day, guide_a):
    day = fixture_day["day"]
    # 5 % of sale 1's 198.00 accrued, the half returned clawed back the same day
    assert {(r.day, r.guide_id): r.amount for r in DailyCommissionRollup.objects.all()} == {
        (day, guide_a.pk): Decimal("4.95")}
    DailyCommissionRollup.objects.update(amount=Decimal("1.00"))
    rollups.sales_rollup_refresh(first=day, last=day)
    assert list(DailyCommissionRollup.objects.values_list("amount", flat=True)) == [Decimal("4.95")]


def test_stock_metrics(fixture_day, hq_user, central, store_a, store_b):
    skus = fixture_day["skus"]
    for sku in skus:
        sku.cost_price = Decimal("40.00")
        sku.save(update_fields=["cost_price"])
    stock.stock_quarantine(warehouse=store_a.warehouse, sku_id=skus[1].id, qty=2, actor=None)
    transfer = stock.transfer_create(source=central, destination=store_b.warehouse, lines=[(skus[0].id, 3)])
    stock.transfer_ship(transfer=transfer)

    figures = selectors.stock_metrics(hq_scope(hq_user, fixture_day["day"]))
    assert figures["damaged"] == {"units": 2, "value": Decimal("80.00")}
    assert figures["in_transit"] == {"transfers": 1, "units": 3, "value": Decimal("120.00")}
    by_wh = {r["label"]: r for r in figures["by_warehouse"]}
    # store A sold 2 + 1 units at the POS and 1 by pickup; 1 + 1 came back; its sellable stock is
    # 25 − 4 + 1 (sellable return) − 2 quarantined = 20 units; the pickup return went to store B
    row = by_wh[store_a.warehouse.name]
    assert (row["units"], row["sold"]) == (20, 4)
    assert row["value"] == Decimal("800.00") and row["cogs"] == Decimal("160.00")
    assert row["turnover"] == Decimal("0.20")
    assert row["days_cover"] == Decimal("5.0")  # 20 units / 4 a day
    # Rules below their minimum: the list is cut at the limit, the count is not.
    from inventory.models import ReplenishmentRule

    for sku in skus[:3]:
        ReplenishmentRule.objects.create(warehouse=store_a.warehouse, sku=sku, min_qty=100, max_qty=200)
    ReplenishmentRule.objects.create(warehouse=store_b.warehouse, sku=skus[0], min_qty=0, max_qty=10)
    cut = selectors.stock_metrics(hq_scope(hq_user, fixture_day["day"]), limit=2)
    assert cut["low_stock_count"] == 3 and len(cut["low_stock"]) == 2
    assert cut["low_stock"][0]["available"] <= cut["low_stock"][1]["available"]
    assert selectors.stock_metrics(hq_scope(hq_user, fixture_day["day"], store_id=store_b.pk))["low_stock_count"] == 0


def test_member_liabilities(db):
    first = member_register(phone="+8613800000011", channel=Channel.WEB)
    second = member_register(phone="+8613800000012", channel=Channel.WEB)
    points_adjust(member=first, points=1000, reason="welcome")
    points_adjust(member=second, points=250, reason="welcome")
    wallet_recharge(member=first, reference="RC-1", principal=Decimal("1000.00"), bonus=Decimal("100.00"))
    today = rollups.business_today()
    rollups.sales_rollup_refresh(first=today, last=today)

    figures = selectors.member_metrics()
    assert figures["members"] == 2
    assert figures["points_outstanding"] == 1250
    assert figures["points_liability"] == Decimal("12.50")  # 100 points pay 1.00 CNY
    assert (figures["wallet_principal"], figures["wallet_bonus"]) == (Decimal("1000.00"), Decimal("100.00"))
    assert figures["wallet_liability"] == Decimal("1100.00")


# --- the roll-ups equal the order book, also after late changes to older days ---------------------


def live_figures(scope):
    """The O2O, guide and coupon figures aggregated straight from the order book and coupon tables."""
    paid = (Order.objects.filter(scope.stores_q(), paid_at__gte=scope.since, paid_at__lt=scope.until)
            .exclude(status=Status.CANCELLED))
    online = paid.filter(channel__in=selectors.ONLINE)
    picked = online.filter(fulfillment=Fulfillment.PICKUP, handed_over_at__isnull=False)
    wait = picked.aggregate(w=Avg(ExpressionWrapper(F("handed_over_at") - F("paid_at"),
                                                    output_field=DurationField())))["w"]
    returns = Return.objects.filter(scope.stores_q(), created_at__gte=scope.since, created_at__lt=scope.until,
                                    order__channel__in=selectors.ONLINE)
    channels_by_member = {}
    for member_id, channel in paid.filter(member__isnull=False).values_list("member_id", "channel"):
        channels_by_member.setdefault(member_id, set()).add(channel)
    o2o = {"orders": online.count(),
           "by_store": online.filter(fulfillment__in=[Fulfillment.PICKUP, Fulfillment.SHIP_STORE]).count(),
           "pickup": online.filter(fulfillment=Fulfillment.PICKUP).count(),
           "ship_store": online.filter(fulfillment=Fulfillment.SHIP_STORE).count(),
           "picked_up": picked.count(),
           "pickup_hours": (Decimal(wait.total_seconds()) / 3600).quantize(Decimal("0.1")) if wait else None,
           "online_returns_in_store": returns.count(),
           "online_returns_in_store_amount": returns.aggregate(s=Sum("refund_total"))["s"] or Decimal("0.00"),
           "active_members": len(channels_by_member),
           "omni_members": sum(1 for c in channels_by_member.values() if len(c) > 1)}
    guides = {}
    for order in paid.filter(guide__isnull=False):
        row = guides.setdefault(order.guide_id, [0, Decimal("0.00")])
        row[0] += 1
        row[1] += order.total - order.refunded_total
    issued = IssuedCoupon.objects.filter(issued_at__gte=scope.since, issued_at__lt=scope.until)
    if scope.store_ids is not None:
        issued = issued.filter(events__kind="issued", events__store__in=scope.store_ids).distinct()
    redeemed = CouponRedemption.objects.filter(scope.stores_q(), redeemed_at__gte=scope.since,
                                               redeemed_at__lt=scope.until, restored_at__isnull=True)
    by_channel = {}
    for r in redeemed:
        row = by_channel.setdefault(r.channel, [0, Decimal("0.00"), Decimal("0.00"), Decimal("0.00")])
        row[0] += 1
        row[1] += r.discount
        row[2] += r.ecommerce_amount
        row[3] += r.store_amount
    coupons = {"issued": issued.count(), "redeemed": redeemed.count(),
               "discount": sum((r.discount for r in redeemed), Decimal("0.00")),
               "cost_ecommerce": sum((r.ecommerce_amount for r in redeemed), Decimal("0.00")),
               "cost_store": sum((r.store_amount for r in redeemed), Decimal("0.00")),
               "by_channel": {c: tuple(v) for c, v in by_channel.items()}}
    return {"o2o": o2o, "guides": {gid: tuple(v) for gid, v in guides.items()}, "coupons": coupons}


def rolled_up_figures(scope):
    o2o = selectors.o2o_metrics(scope)
    names = dict(StaffProfile.objects.values_list("display_name", "pk"))
    coupons = selectors.coupon_funnel(scope)
    labels = {str(label): value for value, label in Channel.choices}
    return {"o2o": {k: o2o[k] for k in ("orders", "by_store", "pickup", "ship_store", "picked_up", "pickup_hours",
                                        "online_returns_in_store", "online_returns_in_store_amount",
                                        "active_members", "omni_members")},
            "guides": {names[r["guide"]]: (r["orders"], r["sales"]) for r in selectors.guide_leaderboard(scope)},
            "coupons": {**{k: coupons[k] for k in ("issued", "redeemed", "discount", "cost_ecommerce",
                                                   "cost_store")},
                        "by_channel": {labels[r["label"]]: (r["count"], r["discount"], r["ecommerce"], r["store"])
                                       for r in coupons["by_channel"]}}}


@pytest.fixture
def older_day(fixture_day, central, store_a, clerk_a, guide_a):
    """Orders paid six days before the fixture day (outside the beat task's window), rolled up then.

    Member N buys at the POS (guide G), orders a web pickup at store A, and a mini-program
    shipment with a coupon borne by e-commerce; member P buys at the POS that day and on the web
    shop on the fixture day.
    """
    skus, today = fixture_day["skus"], fixture_day["day"]
    day = today - timedelta(days=6)
    paid_at = rollups._day_start(day) + timedelta(hours=10)
    n = member_register(phone="+8613800000021", channel=Channel.POS, store_id=store_a.pk)
    p = member_register(phone="+8613800000022", channel=Channel.POS, store_id=store_a.pk)
    template = CouponTemplate.objects.create(code="EC10", name="电商券", kind="fixed", amount=Decimal("10.00"),
                                             validity="days", valid_days=30, bearer="ecommerce")
    coupon = coupon_issue(template=template, member=n, at=paid_at - timedelta(hours=1))
    pos = services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(skus[1].id, 2)],
                                   tenders=[TenderIn("cash", Decimal("198.00"))], actor=clerk_a, member=n,
                                   guide_id=guide_a.pk).order
    pickup = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store_a,
                                  lines=[LineIn(skus[3].id, 1)], member=n).order
    services.order_pay(order=pickup, tenders=[TenderIn("cash", pickup.total)], store=store_a)
    shipped = services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.SHIP_WAREHOUSE,
                                   lines=[LineIn(skus[0].id, 1)], member=n, coupon_code=coupon.code).order
    services.order_pay(order=shipped, tenders=[TenderIn("cash", shipped.total)])
    p_pos = services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(skus[1].id, 1)],
                                     tenders=[TenderIn("cash", Decimal("99.00"))], actor=clerk_a, member=p).order
    # Move that day's facts back to it, as if they had happened then.
    numbers = [pos.number, pickup.number, shipped.number, p_pos.number]
    Order.objects.filter(number__in=numbers).update(paid_at=paid_at, created_at=paid_at, updated_at=paid_at)
    CouponRedemption.objects.filter(order_number__in=numbers).update(redeemed_at=paid_at)
    p_web = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_WAREHOUSE,
                                 lines=[LineIn(skus[2].id, 1)], member=p).order
    services.order_pay(order=p_web, tenders=[TenderIn("cash", p_web.total)])
    rollups.sales_rollup_refresh(first=day, last=today)
    return {"day": day, "today": today, "pos": pos, "pickup": pickup, "shipped": shipped}


def test_the_rollups_equal_the_order_book_over_several_days_and_stores(older_day, hq_user, store_a, store_b):
    day, today = older_day["day"], older_day["today"]
    for start, end in [(day, today), (day, day), (today, today), (day + timedelta(days=1), today)]:
        for store in (None, store_a.pk, store_b.pk):
            scope = selectors.scope_for(hq_user, start=start, end=end, store_id=store)
            assert rolled_up_figures(scope) == live_figures(scope), (start, end, store)
    # M bought at the POS and on the web that day; P at the POS six days earlier and on the web
    # today, so P counts as omni-channel only over a range holding both days; N bought in three
    # channels six days earlier
    counts = {(s, e): selectors.o2o_metrics(selectors.scope_for(hq_user, start=s, end=e))
              for s, e in [(day, today), (day, day), (today, today)]}
    assert {k: (v["active_members"], v["omni_members"]) for k, v in counts.items()} == {
        (day, today): (3, 3), (day, day): (2, 1), (today, today): (2, 1)}
    coupons = selectors.coupon_funnel(selectors.scope_for(hq_user, start=day, end=day))
    assert (coupons["issued"], coupons["redeemed"], coupons["cost_ecommerce"]) == (1, 1, Decimal("10.00"))


def test_late_pickups_returns_and_cancellations_of_older_orders_reach_their_day(older_day, hq_user, store_a,
                                                                               store_b, clerk_a, clerk_b):
    day, today = older_day["day"], older_day["today"]
    whole = selectors.scope_for(hq_user, start=day, end=today)
    before = selectors.o2o_metrics(selectors.scope_for(hq_user, start=day, end=day))
    assert (before["pickup"], before["picked_up"], before["orders"]) == (1, 0, 2)

    # today, six days after payment: the pickup is collected, half of the POS sale comes back at
    # store B and the coupon order is cancelled (its coupon given back)
    services.pickup_handover(code=older_day["pickup"].pickup_code, store=store_a, actor=clerk_a)
    pos = older_day["pos"]
    services.return_create(order=pos, store=store_b, lines=[ReturnLineIn(pos.lines.get().id, 1)], actor=clerk_b)
    services.order_cancel(order=older_day["shipped"], reason="customer changed their mind")
    assert rolled_up_figures(whole) != live_figures(whole)  # the rows of that day are stale

    # the beat task's window (today and three days before) does not hold that day
    assert rollups.rollup_changed_days(since=rollups._day_start(today - timedelta(days=3))) == [day]
    rollups.sales_rollup_refresh_recent(days=3)
    for start, end in [(day, today), (day, day), (today, today)]:
        for store in (None, store_a.pk, store_b.pk):
            scope = selectors.scope_for(hq_user, start=start, end=end, store_id=store)
            assert rolled_up_figures(scope) == live_figures(scope), (start, end, store)
    after = selectors.o2o_metrics(selectors.scope_for(hq_user, start=day, end=day))
    # the cancelled shipment drops out; the pickup waited from 10:00 six days earlier until now
    assert (after["orders"], after["pickup"], after["picked_up"], after["pickup_rate"]) == (1, 1, 1, Decimal("100.0"))
    assert after["pickup_hours"] >= Decimal("134.0")
    (guide,) = selectors.guide_leaderboard(selectors.scope_for(hq_user, start=day, end=day))
    assert (guide["orders"], guide["sales"]) == (1, Decimal("99.00"))  # 198.00 less the 99.00 returned
    coupons = selectors.coupon_funnel(selectors.scope_for(hq_user, start=day, end=day))
    assert (coupons["issued"], coupons["redeemed"]) == (1, 0)


def test_the_member_channel_rows_keep_one_bit_per_channel_and_drop_cancelled_orders(older_day, store_a):
    day = older_day["day"]
    n = older_day["pos"].member_id
    bits = rollups.CHANNEL_BITS
    assert dict(DailyMemberChannels.objects.filter(member_id=n).values_list("store_id", "channels")) == {
        store_a.pk: bits[Channel.POS] | bits[Channel.WEB], None: bits[Channel.MINI_PROGRAM]}
    services.order_cancel(order=older_day["shipped"], reason="customer changed their mind")
    rollups.sales_rollup_refresh(first=day, last=day)
    assert dict(DailyMemberChannels.objects.filter(member_id=n).values_list("store_id", "channels")) == {
        store_a.pk: bits[Channel.POS] | bits[Channel.WEB]}


def test_each_member_day_knows_the_next_day_and_the_last_day_of_each_channel(older_day):
    day, today = older_day["day"], older_day["today"]
    p = Order.objects.get(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_WAREHOUSE, paid_at__isnull=False,
                          member__phone="+8613800000022").member_id
    rows = {r.day: (r.next_day, r.last_web, r.last_mini_program, r.last_marketplace, r.last_pos)
            for r in MemberActivityDay.objects.filter(member_id=p)}
    assert rows == {day: (today, None, None, None, day), today: (None, today, None, None, day)}
    # refreshing only the earlier day after its POS sale is cancelled recomputes the later day too
    pos = Order.objects.filter(member_id=p, channel=Channel.POS)
    status = pos.get().status
    pos.update(status=Status.CANCELLED)
    rollups.sales_rollup_refresh(first=day, last=day)
    assert {r.day: (r.next_day, r.last_web, r.last_pos) for r in MemberActivityDay.objects.filter(member_id=p)} == {
        today: (None, today, None)}
    pos.update(status=status)
    rollups.sales_rollup_refresh(first=day, last=day)
    assert rows == {r.day: (r.next_day, r.last_web, r.last_mini_program, r.last_marketplace, r.last_pos)
                    for r in MemberActivityDay.objects.filter(member_id=p)}
    # a day that loses its orders disappears and its neighbour no longer points at it
    Order.objects.filter(member_id=p, paid_at__gte=rollups._day_start(today)).update(status=Status.CANCELLED)
    rollups.sales_rollup_refresh(first=today, last=today)
    assert {r.day: (r.next_day, r.last_web, r.last_pos) for r in MemberActivityDay.objects.filter(member_id=p)} == {
        day: (None, None, day)}


def test_coupons_issued_are_counted_by_the_channel_they_were_issued_through(fixture_day, hq_user, store_a):
    from django.utils import translation

    from members.services.coupons import coupon_claim

    today = fixture_day["day"]
    at = rollups._day_start(today) + timedelta(hours=9)
    template = CouponTemplate.objects.create(code="MP5", name="小程序券", kind="fixed", amount=Decimal("5.00"),
                                             validity="days", valid_days=30, claimable_online=True)
    members = [member_register(phone=f"+86138000000{n}", channel=Channel.POS, store_id=store_a.pk)
               for n in (31, 32, 33)]
    coupon_claim(template=template, member=members[0], channel=Channel.MINI_PROGRAM, at=at)
    coupon_claim(template=template, member=members[1], channel=Channel.MINI_PROGRAM, at=at)
    coupon_issue(template=template, member=members[2], at=at)  # head office, no channel
    rollups.sales_rollup_refresh(first=today, last=today)

    with translation.override("en"):
        coupons = selectors.coupon_funnel(selectors.scope_for(hq_user, start=today, end=today))
    issued = {r["label"]: r["count"] for r in coupons["issued_by_channel"]}
    assert issued == {"WeChat mini-program": 2, "Head-office campaigns": 1}
    assert coupons["issued"] == 3 == IssuedCoupon.objects.count()


def test_the_member_tier_rollup_equals_the_members_as_of_its_refresh(db):
    silver = Tier.objects.create(code="T-S", name="银卡", min_spend=Decimal("0"))
    gold = Tier.objects.create(code="T-G", name="金卡", min_spend=Decimal("2000"))
    members = [member_register(phone=f"+86138000001{n:02d}", channel=Channel.WEB) for n in range(5)]
    Member.objects.filter(pk__in=[m.pk for m in members[:2]]).update(tier=silver)
    Member.objects.filter(pk=members[2].pk).update(tier=gold)
    for n, member in enumerate(members):
        points_adjust(member=member, points=100 * (n + 1), reason="welcome")
    wallet_recharge(member=members[2], reference="RC-2", principal=Decimal("300.00"), bonus=Decimal("30.00"))
    Member.objects.filter(pk=members[4].pk).update(merged_into=members[3])  # merged: counted in its survivor
    today = rollups.business_today()
    rollups.sales_rollup_refresh(first=today, last=today)

    live = {}
    for m in Member.objects.filter(merged_into__isnull=True):
        row = live.setdefault(m.tier_id, [0, 0, 0, Decimal("0.00"), Decimal("0.00")])
        for i, v in enumerate((1, m.points_available, m.points_frozen, m.wallet_principal, m.wallet_bonus)):
            row[i] += v
    rolled = {r.tier_id: [r.members, r.points_available, r.points_frozen, r.wallet_principal, r.wallet_bonus]
              for r in MemberTierRollup.objects.all()}
    assert rolled == live
    assert rolled[silver.pk][:2] == [2, 300] and rolled[gold.pk][0] == 1 and rolled[None][0] == 1
    figures = selectors.member_metrics()
    assert [t["count"] for t in figures["tiers"]] == [2, 1, 1]  # by the tier's minimum spend, no tier last
    assert figures["members"] == 4 and figures["points_outstanding"] == 1000
    assert figures["as_of"] is not None
    # A balance that moves after the refresh shows with the next one.
    points_adjust(member=members[0], points=50, reason="goodwill")
    assert selectors.member_metrics()["points_outstanding"] == 1000
    rollups.sales_rollup_refresh(first=today, last=today)
    assert selectors.member_metrics()["points_outstanding"] == 1050


def activity_counts_from_days(start, end):
    """Members who bought in [start, end] and those of them in more than one channel, read from the
    member activity days one by one (the definition the counted rows must keep)."""
    active = omni = 0
    for r in MemberActivityDay.objects.filter(day__gte=start, day__lte=end):
        if r.next_day is not None and r.next_day <= end:
            continue
        active += 1
        used = [d for d in (r.last_web, r.last_mini_program, r.last_marketplace, r.last_pos) if d and d >= start]
        omni += len(used) > 1
    return active, omni


def test_the_member_activity_counts_equal_the_activity_days_over_every_range(older_day, hq_user, store_a, store_b,
                                                                             clerk_a):
    day, today = older_day["day"], older_day["today"]
    # Member N also bought at the POS 400 days before: further back than any range reaches.
    n = older_day["pos"].member
    old = services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(older_day["pos"].lines
                                   .get().sku_id, 1)], tenders=[TenderIn("cash", Decimal("99.00"))],
                                   actor=clerk_a, member=n).order
    long_ago = today - timedelta(days=400)
    Order.objects.filter(pk=old.pk).update(paid_at=rollups._day_start(long_ago) + timedelta(hours=10))
    rollups.sales_rollup_refresh(first=long_ago, last=long_ago)
    assert MemberActivityDay.objects.filter(member_id=n.pk, day=long_ago).get().next_day == day
    # stored as "no next day within reach" and "never two channels within reach"
    assert MemberActivityCount.objects.filter(scope="", day=long_ago).get().next_day is None

    days = [long_ago - timedelta(days=1), long_ago, long_ago + timedelta(days=1), day - timedelta(days=365),
            day - timedelta(days=1), day, day + timedelta(days=1), today - timedelta(days=1), today]
    checked = 0
    for start in days:
        for end in days:
            if start > end or (end - start).days >= MemberActivityCount.MAX_SPAN_DAYS:
                continue
            counts = selectors.omni_member_counts(selectors.scope_for(hq_user, start=start, end=end))
            assert (counts["active"], counts["omni"]) == activity_counts_from_days(start, end), (start, end)
            # each region's, city's and store's stores: the same counts as grouping their daily rows
            for filters in ({"store_id": store_a.pk}, {"store_id": store_b.pk}, {"city_id": store_a.city_id},
                            {"region_id": store_a.city.region_id}):
                scope = selectors.scope_for(hq_user, start=start, end=end, **filters)
                assert MemberActivityScope.objects.filter(
                    scope=",".join(map(str, sorted(scope.store_ids)))).exists()
                assert selectors.omni_member_counts(scope) == selectors.omni_member_counts_from_days(scope), (
                    start, end, filters)
            checked += 1
    assert checked > 20
    # At store A: N (POS and web pickup) and M (POS and web pickup today) in two channels, P at the POS
    # only (P's web order today shipped from the warehouse).
    assert selectors.omni_member_counts(selectors.scope_for(hq_user, start=day, end=today,
                                                            store_id=store_a.pk)) == {"active": 3, "omni": 2}
    # N bought in three channels six days ago; P at the POS then and on the web today.
    assert activity_counts_from_days(day, today) == (3, 3)
    # Refreshing again rebuilds the same rows (not added to the previous ones).
    def counted():
        return list(MemberActivityCount.objects.order_by("scope", "day", "next_day", "omni_since")
                    .values_list("scope", "day", "next_day", "omni_since", "members"))

    rows = counted()
    rollups.sales_rollup_refresh_recent(days=1)
    assert counted() == rows and len(rows) > 5
    # A range longer than the counted rows cover reads the activity days themselves.
    wide = selectors.scope_for(hq_user, start=long_ago, end=today)
    assert selectors.omni_member_counts(wide) == dict(zip(("active", "omni"), activity_counts_from_days(long_ago,
                                                                                                          today)))
