"""Postcode trade areas and four-party terms, through the order API and settlement.

An online order shipped to a postcode in a store's trade area credits that store even when the
central warehouse (or another store) ships it: the longest matching prefix decides, then the store
in the city shipped to, then the lowest id.  A rule's terms name four parties — the e-commerce
department, the fulfilling store, the trade-area store and the guide's store — and the trade-area
store gets its own share instead of taking the fulfilling store's."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from catalog.models import ProductLine
from catalog.tests.factories import ProductFactory, SkuFactory
from inventory import services as stock
from orders.models import Order
from settlement import services
from settlement.models import PartyShare, SplitLine, SplitRule
from settlement.simulation import split_simulate
from settlement.tests.scenario import complete_provider_refunds, end_of_today
from stores.models import Role, TradeAreaPostcode, Warehouse
from stores.selectors import trade_area_resolver
from stores.tests.factories import CityFactory, StaffFactory, StoreFactory, WarehouseFactory
from tests.api.conftest import idem, pay, place

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def area():
    hz, nb = CityFactory(code="HZ4", name="杭州"), CityFactory(code="NB4", name="宁波")
    central = WarehouseFactory(kind=Warehouse.Kind.CENTRAL, code="CW-4", city=hz)
    f = StoreFactory(code="F4", name="发货店", city=hz)
    a = StoreFactory(code="A4", name="西湖店", city=hz)
    b = StoreFactory(code="B4", name="文三店", city=hz)
    c = StoreFactory(code="C4", name="宁波店", city=nb)
    g = StoreFactory(code="G4", name="导购店", city=nb)
    for store, prefix in ((a, "3100"), (b, "310012"), (c, "3100")):
        TradeAreaPostcode.objects.create(store=store, prefix=prefix)
    coat = SkuFactory(product=ProductFactory(line=ProductLine.BULK), list_price=D("299.90"))
    tee = SkuFactory(product=ProductFactory(line=ProductLine.NEW), list_price=D("99.90"))
    stock.stock_receive(warehouse=f.warehouse, lines=[(coat.id, 5)])
    stock.stock_receive(warehouse=central, lines=[(tee.id, 10)])
    StaffFactory(role=Role.GUIDE, store=g, guide_code="G4-01")
    SplitRule.objects.create(name="大货 门店发货 四方", priority=10, product_line="bulk", fulfillment="ship_store",
                             ecommerce_percent=D("10.50"), guide_store_percent=D("5.00"),
                             trade_area_percent=D("20.00"))
    SplitRule.objects.create(name="总仓发货 商圈", priority=20, fulfillment="ship_warehouse",
                             ecommerce_percent=D("10.50"), trade_area_percent=D("20.00"))
    return {"hz": hz, "nb": nb, "f": f, "a": a, "b": b, "c": c, "g": g, "coat": coat, "tee": tee}


def settle_today():
    return services.settlement_run(until=services.business_day_of(end_of_today()) - timedelta(days=1),
                                   now=end_of_today())


def share(store):
    return sum(PartyShare.objects.filter(store=store).values_list("total", flat=True), D("0"))


def test_postcode_trade_areas_and_four_party_terms_to_the_fen(partner, area):
    _key, client = partner
    coat, tee = area["coat"].pk, area["tee"].pk
    ship = {"ship_address": "文三路 1 号"}
    orders = {
        # shipped from store F into 310012: B's six digits beat A's "3100"; the guide works at G
        "four": place(client, fulfillment="ship_store", ship_city=area["hz"].pk, ship_postcode="310012",
                      guide_code="G4-01", lines=[{"sku": coat, "qty": 1}], **ship),
        # from the central warehouse to 310099: A and C both list "3100"; A is in the city shipped to
        "a": place(client, fulfillment="ship_warehouse", ship_city=area["hz"].pk, ship_postcode="310099",
                   lines=[{"sku": tee, "qty": 1}], **ship),
        # the same postcode shipped to Ningbo: C is in the city shipped to
        "c": place(client, fulfillment="ship_warehouse", ship_city=area["nb"].pk, ship_postcode="310099",
                   lines=[{"sku": tee, "qty": 1}], **ship),
        # no postcode, and Hangzhou is no store's city trade area: nobody's
        "none": place(client, fulfillment="ship_warehouse", ship_city=area["hz"].pk,
                      lines=[{"sku": tee, "qty": 1}], **ship),
        # into A's area again, paid, then cancelled: the cancellation takes back exactly what the sale gave
        "gone": place(client, fulfillment="ship_warehouse", ship_city=area["hz"].pk, ship_postcode="310001",
                      lines=[{"sku": tee, "qty": 1}], **ship),
    }
    for response in orders.values():
        assert response.status_code == 201, response.content
        pay(client, response.json()["id"])
    gone = orders.pop("gone").json()["id"]
    assert client.post(f"/api/v1/orders/{gone}/cancel/", {}, format="json", **idem()).status_code == 200
    complete_provider_refunds()
    assert orders["four"].json()["ship_postcode"] == "310012"
    assert Order.objects.get(pk=orders["four"].json()["id"]).fulfillment == "ship_store"
    settle_today()

    line = {o: SplitLine.objects.get(order_id=r.json()["id"]) for o, r in orders.items()}
    # 299.90: e-commerce 10.5% = 31.4895 → 31.49; G 5% = 14.995 → 15.00; B 20% = 59.98; F keeps 193.43
    four = line["four"]
    assert (four.ecommerce_amount, four.store_id, four.store_amount, four.guide_store_id, four.guide_store_amount,
            four.trade_store_id, four.trade_store_amount) == (
        D("31.49"), area["f"].pk, D("193.43"), area["g"].pk, D("15.00"), area["b"].pk, D("59.98"))
    # 99.90 from the central warehouse: the trade-area store 20% = 19.98, e-commerce keeps 79.92
    for key, store in (("a", area["a"]), ("c", area["c"])):
        assert (line[key].trade_store_id, line[key].trade_store_amount, line[key].ecommerce_amount,
                line[key].store_id) == (store.pk, D("19.98"), D("79.92"), None)
    assert (line["none"].trade_store_id, line["none"].ecommerce_amount) == (None, D("99.90"))
    sold, cancelled = (SplitLine.objects.get(order_id=gone, kind=k) for k in ("sale", "cancel"))
    assert (sold.trade_store_id, sold.trade_store_amount, sold.ecommerce_amount) == (area["a"].pk, D("19.98"),
                                                                                      D("79.92"))
    assert (cancelled.trade_store_id, cancelled.trade_store_amount, cancelled.ecommerce_amount) == (
        area["a"].pk, D("-19.98"), D("-79.92"))

    assert share(None) == D("31.49") + D("79.92") + D("79.92") + D("99.90") == D("291.23")
    assert (share(area["f"]), share(area["g"]), share(area["b"]), share(area["a"]), share(area["c"])) == (
        D("193.43"), D("15.00"), D("59.98"), D("19.98"), D("19.98"))
    assert PartyShare.objects.get(store=area["b"]).trade_area_share == D("59.98")
    call_command("audit_ledgers", stdout=io.StringIO())

    # the simulation resolves trade areas the same way: the rules in force, as a draft, change nothing
    for rule in SplitRule.objects.filter(draft=""):
        rule.pk, rule.draft, rule.first_used_on = None, "same", None
        rule.save()
    day = services.business_day_of(end_of_today()) - timedelta(days=1)
    sim = split_simulate(draft="same", start=day, end=day)
    assert sim.lines == 6 and all(row.difference == 0 for row in sim.rows), sim.rows


def test_a_postcode_that_is_not_six_digits_is_refused(partner, area):
    _key, client = partner
    response = place(client, fulfillment="ship_warehouse", ship_city=area["hz"].pk, ship_postcode="31001",
                     ship_address="x", lines=[{"sku": area["tee"].pk, "qty": 1}])
    assert response.status_code == 400 and "ship_postcode" in response.content.decode()
    assert not Order.objects.exists()


def test_the_documented_tie_break_when_two_stores_list_the_same_prefix(area):
    resolve = trade_area_resolver()
    twin = StoreFactory(code="A4B", city=area["hz"])  # opened after A, same city, same prefix
    TradeAreaPostcode.objects.create(store=twin, prefix="3100")
    resolve = trade_area_resolver()
    assert resolve("310099", area["hz"].pk) == area["a"].pk  # same length, same city: the lowest id
    assert resolve("310012", area["hz"].pk) == area["b"].pk  # the longest prefix first
    assert resolve("310099", area["nb"].pk) == area["c"].pk  # then the city shipped to
    assert resolve("999999", area["hz"].pk) is None
