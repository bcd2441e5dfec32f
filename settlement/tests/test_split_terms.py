"""Split rules that say what the retailer means (the 361° case): e-commerce takes 10.5% of bulk
lines (大货), new lines (N品) are organised apart, and an online order shipped from the central
warehouse to a customer in a store's trade area credits that store.  Then a draft rule set is
simulated on the same days, side by side, without posting anything."""

import csv
import io
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from catalog.models import ProductLine
from catalog.tests.factories import ProductFactory, SkuFactory
from inventory import services as stock
from orders import services as order_services
from orders.models import Channel, Fulfillment
from orders.services import LineIn, TenderIn
from settlement import services
from settlement.models import PartyShare, SplitLine, SplitRule
from settlement.simulation import split_simulate
from settlement.tests.scenario import end_of_today, pay_online, shift_days
from stores.models import Role, TradeArea, Warehouse
from stores.tests.factories import CityFactory, StaffFactory, StoreFactory, UserFactory, WarehouseFactory

pytestmark = pytest.mark.django_db
D = Decimal


def sku(line, price):
    return SkuFactory(product=ProductFactory(line=line), list_price=D(price))


@pytest.fixture
def month():
    """Two business days of a shop with a store in Hangzhou whose trade area is Hangzhou; Ningbo has none."""
    central = WarehouseFactory(kind=Warehouse.Kind.CENTRAL, code="CW-361")
    hz, nb = CityFactory(code="HZ", name="杭州"), CityFactory(code="NB", name="宁波")
    a = StoreFactory(code="HZ361", name="西湖店", city=hz)
    TradeArea.objects.create(store=a, city=hz)
    coat, tee, cap = sku(ProductLine.BULK, "299.90"), sku(ProductLine.NEW, "99.90"), \
        sku(ProductLine.ONLINE_ONLY, "33.33")
    for warehouse in (central, a.warehouse):
        stock.stock_receive(warehouse=warehouse, lines=[(coat.id, 20), (tee.id, 20), (cap.id, 20)])
    clerk = StaffFactory(role=Role.CLERK, store=a).user
    rules = {
        "bulk_trade": SplitRule.objects.create(
            name="大货 商圈", priority=10, product_line="bulk", fulfillment="ship_warehouse",
            territory="trade_area", ecommerce_percent=D("10.50"), credit_trade_area=True),
        "bulk_store": SplitRule.objects.create(name="大货 门店自提", priority=20, product_line="bulk",
                                               fulfillment="pickup", ecommerce_percent=D("10.50")),
        "new": SplitRule.objects.create(name="N品", priority=30, product_line="new"),
    }

    # Day one: a web order shipped from the central warehouse into A's trade area (a bulk coat and
    # an N品 tee), and a mini-program order picked up at A (two bulk coats and an online-only cap).
    web = order_services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_WAREHOUSE,
                                     external_id="W-361-1", ship_city_id=hz.pk, ship_address="文三路 1 号",
                                     lines=[LineIn(coat.id, 1), LineIn(tee.id, 1)]).order
    pay_online(web)
    pickup = order_services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP, store=a,
                                        external_id="M-361-1", lines=[LineIn(coat.id, 2), LineIn(cap.id, 1)]).order
    pay_online(pickup)
    shift_days(1)
    # Day two: a counter sale at A (a coat and a tee) and a web order shipped to Ningbo (no trade area).
    order_services.pos_sale_create(store=a, client_uuid=uuid.uuid4(), actor=clerk,
                                   lines=[LineIn(coat.id, 1), LineIn(tee.id, 1)],
                                   tenders=[TenderIn("cash", D("399.80"))])
    far = order_services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_WAREHOUSE,
                                     external_id="W-361-2", ship_city_id=nb.pk, ship_address="中山路 9 号",
                                     lines=[LineIn(coat.id, 1)]).order
    pay_online(far)
    today = services.business_day_of(end_of_today()) - timedelta(days=1)
    services.settlement_run(until=today - timedelta(days=1), now=end_of_today())
    services.settlement_run(until=today, now=end_of_today())
    return {"a": a, "coat": coat, "tee": tee, "cap": cap, "rules": rules, "start": today - timedelta(days=1),
            "end": today, "web": web, "pickup": pickup}


def shares(party):
    return sum(PartyShare.objects.filter(store=party).values_list("total", flat=True), D("0"))


def test_the_361_split_equals_the_hand_computation_to_the_fen(month):
    a, rules = month["a"], month["rules"]
    lines = {(ln.order_id, ln.order_line.sku_id): ln for ln in SplitLine.objects.select_related("order_line")}
    coat, tee, cap = month["coat"].id, month["tee"].id, month["cap"].id

    # the web coat shipped into A's trade area: 10.5% of 299.90 = 31.4895 → 31.49 to e-commerce, A the rest
    web_coat = lines[(month["web"].pk, coat)]
    assert (web_coat.rule, web_coat.store, web_coat.ecommerce_amount, web_coat.store_amount) == (
        rules["bulk_trade"], a, D("31.49"), D("268.41"))
    # the N品 tee of the same order: organised apart, nothing for a store, all to e-commerce
    web_tee = lines[(month["web"].pk, tee)]
    assert (web_tee.rule, web_tee.store, web_tee.ecommerce_amount) == (rules["new"], None, D("99.90"))
    # picked up at A: 10.5% of 599.80 = 62.979 → 62.98; the online-only cap has no rule: all to A
    picked = lines[(month["pickup"].pk, coat)]
    assert (picked.rule, picked.ecommerce_amount, picked.store_amount) == (rules["bulk_store"], D("62.98"),
                                                                            D("536.82"))
    assert (lines[(month["pickup"].pk, cap)].rule, lines[(month["pickup"].pk, cap)].store_amount) == (None,
                                                                                                        D("33.33"))

    # e-commerce: 31.49 + 99.90 + 62.98 + 299.90 (the Ningbo coat: no trade area, no rule)
    assert shares(None) == D("494.27")
    # A: 268.41 + 536.82 + 33.33 + 299.90 + 99.90 (its own counter: the coat has no rule, the N品 tee 0%)
    assert shares(a) == D("1238.36")
    assert shares(None) + shares(a) == D("1732.63") == sum(SplitLine.objects.values_list("net", flat=True),
                                                             D("0"))


def draft_set():
    """HQ's draft: e-commerce takes 12% of bulk everywhere, still crediting the trade-area store."""
    SplitRule.objects.create(name="草案 大货 商圈", priority=10, draft="2027", product_line="bulk",
                             fulfillment="ship_warehouse", territory="trade_area", ecommerce_percent=D("12.00"),
                             credit_trade_area=True)
    SplitRule.objects.create(name="草案 大货", priority=20, draft="2027", product_line="bulk",
                             ecommerce_percent=D("12.00"))


def test_a_draft_set_is_simulated_side_by_side_and_posts_nothing(month):
    a = month["a"]
    draft_set()
    posted = list(SplitLine.objects.order_by("pk").values())
    sim = split_simulate(draft="2027", start=month["start"], end=month["end"])

    rows = {row.party_id: row for row in sim.rows}
    assert sim.lines == 7 and set(rows) == {None, a.pk}
    assert (rows[None].in_force, rows[a.pk].in_force) == (D("494.27"), D("1238.36"))
    # draft, by hand: web coat 12% of 299.90 = 35.988 → 35.99 (A 263.91); web tee all to e-commerce 99.90;
    # picked-up coats 12% of 599.80 = 71.976 → 71.98 (A 527.82); cap: A 33.33; counter coat 12% → 35.99
    # (A 263.91); counter tee: A 99.90; Ningbo coat: no store to credit, all 299.90 to e-commerce.
    assert rows[None].draft == D("35.99") + D("99.90") + D("71.98") + D("35.99") + D("299.90") == D("543.76")
    assert rows[a.pk].draft == D("263.91") + D("527.82") + D("33.33") + D("263.91") + D("99.90") == D("1188.87")
    assert (rows[None].difference, rows[a.pk].difference) == (D("49.49"), D("-49.49"))
    assert list(SplitLine.objects.order_by("pk").values()) == posted  # nothing posted


def test_the_rules_in_force_simulated_as_a_draft_reproduce_the_posted_split(month):
    for rule in SplitRule.objects.filter(draft=""):
        rule.pk, rule.draft, rule.first_used_on = None, "same", None
        rule.save()
    sim = split_simulate(draft="same", start=month["start"], end=month["end"])
    assert all(row.difference == 0 for row in sim.rows) and sim.lines == 7


def test_draft_rules_are_never_applied_by_settlement(month):
    draft_set()
    assert all(rule.draft == "" for rule in services.rules_in_force(month["end"]))


def test_the_admin_simulates_a_month_and_exports_csv(client, month):
    draft_set()
    hq = UserFactory(username="hq-361", is_staff=True, is_superuser=True)
    client.force_login(hq)
    url = reverse("admin:settlement_splitrule_changelist")
    base = {"action": "simulate", helpers.ACTION_CHECKBOX_NAME: list(SplitRule.objects.values_list("pk", flat=True)),
            "apply": "1", "draft": "2027", "start": month["start"].isoformat(), "end": month["end"].isoformat()}

    page = client.post(url, base, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    html = page.content.decode()
    assert "543.76" in html and "1188.87" in html and "-49.49" in html

    export = client.post(url, {**base, "csv": "1"}, HTTP_ACCEPT_LANGUAGE="en")
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0] == ["party", "rules in force", "draft 2027", "difference"]
    assert ["E-commerce department", "494.27", "543.76", "49.49"] in rows
    assert [str(month["a"]), "1238.36", "1188.87", "-49.49"] in rows
