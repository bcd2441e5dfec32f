"""Each dashboard figure equals a hand computation on the fixture day (see conftest)."""

from decimal import Decimal

import pytest

from inventory import services as stock
from inventory.models import Bucket
from members.services.members import member_register
from members.services.points import points_adjust
from members.services.wallet import wallet_recharge
from orders import services
from orders.dashboard import rollups, selectors
from orders.dashboard.models import DailySalesRollup
from orders.models import Channel

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


def test_member_liabilities(db):
    first = member_register(phone="+8613800000011", channel=Channel.WEB)
    second = member_register(phone="+8613800000012", channel=Channel.WEB)
    points_adjust(member=first, points=1000, reason="welcome")
    points_adjust(member=second, points=250, reason="welcome")
    wallet_recharge(member=first, reference="RC-1", principal=Decimal("1000.00"), bonus=Decimal("100.00"))

    figures = selectors.member_metrics()
    assert figures["members"] == 2
    assert figures["points_outstanding"] == 1250
    assert figures["points_liability"] == Decimal("12.50")  # 100 points pay 1.00 CNY
    assert (figures["wallet_principal"], figures["wallet_bonus"]) == (Decimal("1000.00"), Decimal("100.00"))
    assert figures["wallet_liability"] == Decimal("1100.00")
