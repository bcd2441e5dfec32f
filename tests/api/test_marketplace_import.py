"""Marketplace order import through the adapter, against a fake marketplace on loopback."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from inventory.models import StockLevel
from members.services import members
from integrations.marketplaces import HttpJsonMarketplace, MarketplaceError, remote_order_parse
from o2o.ratelimit import redis_client
from orders import services
from integrations.imports import marketplace_orders_import, marketplace_orders_import_task
from orders.models import Order
from payments.exceptions import DuplicateTransaction, InvalidPaymentInput
from payments.models import Payment
from tests.api.conftest import FakeMarketplace, bearer

# The import calls the network, so it refuses to run inside a transaction: these tests commit.
committed = pytest.mark.django_db(transaction=True)


def remote(order_id, sku, qty=1, **extra):
    return {"id": order_id, "lines": [{"sku_code": sku.code, "qty": qty}], "fulfillment": "ship_warehouse",
            "ship_city_code": "HZ", "ship_address": "88 Market St", "customer_name": "Wang", "paid": True,
            **extra}


@pytest.fixture
def market_code(isolated_redis_keys):
    """A marketplace code of this test only (the import cursor lives in Redis under it)."""
    code = f"tm{isolated_redis_keys[:8]}"
    yield code
    redis_client().delete(f"o2o:marketplace:{code}:cursor")


@committed
def test_import_is_idempotent_on_the_marketplace_order_id(stocked, settings, market_code, make_key):
    a, b = stocked[0], stocked[1]
    pages = {
        None: {"orders": [remote("T-1", a, 2),
                          {"id": "T-2", "lines": [{"sku_code": "NOPE", "qty": 1}]},
                          {"id": "T-3", "lines": [{"sku_code": a.code, "qty": -4}]},
                          "not an order"],
               "cursor": "c1"},
        "c1": {"orders": [remote("T-1", a, 2), remote("T-4", b, 1)], "cursor": "c2"},
    }
    with FakeMarketplace(pages) as market:
        settings.MARKETPLACES = {market_code: market.settings_entry()}

        first = marketplace_orders_import(code=market_code)
        second = marketplace_orders_import(code=market_code)

    assert len(first.created) == 1 and first.existing == []
    assert sorted(first.failed) == sorted([("T-2", "unknown_sku"), ("T-3", "unreadable_order"),
                                           ("?", "unreadable_order")])
    assert second.existing == first.created and len(second.created) == 1
    orders = Order.objects.order_by("id")
    assert [(o.channel, o.partner, o.external_id) for o in orders] == [
        ("marketplace", market_code, "T-1"), ("marketplace", market_code, "T-4")]
    assert orders[0].total == a.list_price * 2
    assert set(market.seen_auth) == {"Bearer mk-token"}
    assert redis_client().get(f"o2o:marketplace:{market_code}:cursor") == b"c2"

    # The marketplace's own key sees exactly these orders; another marketplace's key sees none.
    _key, raw = make_key(channel="marketplace", partner=market_code, name=market_code)
    _other, other_raw = make_key(channel="marketplace", partner="jd", name="jd")
    assert len(bearer(raw).get("/api/v1/orders/").json()["results"]) == 2
    assert bearer(other_raw).get("/api/v1/orders/").json()["results"] == []


@committed
def test_the_beat_task_imports_every_marketplace_and_survives_one_down(stocked, settings, market_code):
    with FakeMarketplace({None: {"orders": [remote("X-1", stocked[0])], "cursor": None}}) as market:
        settings.MARKETPLACES = {market_code: market.settings_entry(),
                                 "down": {"base_url": "http://127.0.0.1:9", "timeout": 1}}

        summary = marketplace_orders_import_task()

    assert summary == {market_code: {"created": 1, "existing": 0, "failed": 0}}
    assert Order.objects.get().external_id == "X-1"


@committed
def test_an_unreachable_marketplace_raises_and_imports_nothing(db):
    adapter = HttpJsonMarketplace("gone", base_url="http://127.0.0.1:9", timeout=1)

    with pytest.raises(MarketplaceError):
        adapter.orders_fetch(cursor=None)
    with pytest.raises(MarketplaceError):
        marketplace_orders_import(code="gone", adapter=adapter)
    assert not Order.objects.exists()


@pytest.mark.parametrize("data", [None, [], {"id": ""}, {"id": "1", "lines": []},
                                  {"id": "1", "lines": [{"sku_code": "A", "qty": True}]},
                                  {"id": "1", "lines": [{"sku_code": "A", "qty": 10**6}]},
                                  {"id": {"x": 1}, "lines": [{"sku_code": "A", "qty": 1}]}])
def test_unreadable_orders_are_refused(data):
    with pytest.raises(ValueError):
        remote_order_parse(data)


@committed
def test_a_paid_marketplace_order_is_paid_once_with_the_marketplace_tender(stocked, settings, market_code):
    a, b = stocked[0], stocked[1]
    pages = {None: {"orders": [remote("P-1", a, 2), remote("P-2", b, 1, paid=False)], "cursor": "c1"},
             # P-1 again (paid, nothing to do) and P-2, paid on the marketplace since.
             "c1": {"orders": [remote("P-1", a, 2), remote("P-2", b, 1)], "cursor": "c2"}}
    with FakeMarketplace(pages) as market:
        settings.MARKETPLACES = {market_code: market.settings_entry()}
        marketplace_orders_import(code=market_code)
        first = {o.external_id: o.status for o in Order.objects.all()}
        marketplace_orders_import(code=market_code)

    assert first == {"P-1": "paid", "P-2": "pending_payment"}
    orders = {o.external_id: o for o in Order.objects.all()}
    assert {k: o.status for k, o in orders.items()} == {"P-1": "paid", "P-2": "paid"}
    for ident, order in orders.items():
        assert order.paid_total == order.total
        payment = Payment.objects.get(reference=order.number)
        assert (payment.tender, payment.status, payment.amount) == ("marketplace", "captured", order.total)
        assert payment.provider_txn_id == f"{market_code}:{ident}"
    # Paid orders never expire: the sweep a week later leaves them and their reserved stock alone.
    assert services.orders_expire(now=timezone.now() + timedelta(days=7)) == 0
    assert StockLevel.objects.get(warehouse__kind="central", sku=a).reserved == 2
    out = io.StringIO()
    call_command("audit_ledgers", stdout=out)
    assert "all ledgers consistent" in out.getvalue()


@committed
def test_a_marketplace_payment_reference_pays_one_order_only(stocked):
    from orders.models import Channel
    from orders.services import LineIn, TenderIn

    def place(ident):
        return services.order_place(channel=Channel.MARKETPLACE, partner="tm", external_id=ident,
                                    fulfillment="ship_warehouse", ship_address="1 Road",
                                    lines=[LineIn(sku_id=stocked[0].pk, qty=1)]).order

    first, second = place("R-1"), place("R-2")
    services.order_pay(order=first, tenders=[TenderIn("marketplace", first.total, card_reference="tm:R-1")])
    with pytest.raises(DuplicateTransaction):
        services.order_pay(order=second, tenders=[TenderIn("marketplace", second.total,
                                                           card_reference="tm:R-1")])
    with pytest.raises(InvalidPaymentInput) as missing:
        services.order_pay(order=second, tenders=[TenderIn("marketplace", second.total)])
    assert missing.value.code == "marketplace_reference_required"
    second.refresh_from_db()
    assert second.status == "pending_payment" and not Payment.objects.filter(reference=second.number).exists()


@committed
def test_the_buyer_is_linked_by_phone_and_the_order_booked_at_the_marketplace_price(stocked, settings, market_code):
    a, b = stocked[0], stocked[1]
    buyer = members.member_register(phone="13800138000", channel="web")
    sold = {"id": "P-1", "fulfillment": "ship_warehouse", "ship_city_code": "HZ", "ship_address": "1 Lake Rd",
            "customer_phone": "138 0013 8000", "paid": True,
            "lines": [{"sku_code": a.code, "qty": 2, "price": str(a.list_price - 10)},
                      {"sku_code": b.code, "qty": 1, "price": str(b.list_price - 5)}]}
    stranger = {**remote("P-2", a, 1), "customer_phone": "13900139000"}
    float_price = {**remote("P-3", a, 1), "lines": [{"sku_code": a.code, "qty": 1, "price": 9.9}]}
    with FakeMarketplace({None: {"orders": [sold, stranger, float_price], "cursor": "c1"}}) as market:
        settings.MARKETPLACES = {market_code: market.settings_entry()}
        result = marketplace_orders_import(code=market_code)

    assert len(result.created) == 2 and result.failed == [("P-3", "unreadable_order")]
    order = Order.objects.get(external_id="P-1")
    assert order.member_id == buyer.pk
    assert order.subtotal == a.list_price * 2 + b.list_price
    assert order.total == (a.list_price - 10) * 2 + (b.list_price - 5)
    assert order.discount_total == 25
    assert [line.unit_price for line in order.lines.order_by("line_no")] == [a.list_price, b.list_price]
    assert sum(line.line_total for line in order.lines.all()) == order.total
    assert Payment.objects.get(reference=order.number).amount == order.total
    assert Order.objects.get(external_id="P-2").member_id is None  # not a member: not registered


@committed
def test_each_line_keeps_the_marketplaces_own_price(stocked, settings, market_code):
    # Given a marketplace that sold SKU a far below list and SKU b at list (the same order total would
    # be spread over both lines by list value; the marketplace's own line prices say otherwise).
    a, b = stocked[0], stocked[1]
    cheap, full = a.list_price - 30, b.list_price
    sold = {"id": "L-1", "fulfillment": "ship_warehouse", "ship_city_code": "HZ", "ship_address": "1 Lake Rd",
            "paid": True, "lines": [{"sku_code": a.code, "qty": 2, "price": str(cheap)},
                                    {"sku_code": b.code, "qty": 1, "price": str(full)}]}
    above = {"id": "L-2", "fulfillment": "ship_warehouse", "ship_city_code": "HZ", "ship_address": "1 Lake Rd",
             "paid": True, "lines": [{"sku_code": a.code, "qty": 1, "price": str(a.list_price - 10)},
                                     {"sku_code": b.code, "qty": 1, "price": str(b.list_price + 4)}]}
    with FakeMarketplace({None: {"orders": [sold, above], "cursor": "c1"}}) as market:
        settings.MARKETPLACES = {market_code: market.settings_entry()}
        result = marketplace_orders_import(code=market_code)

    assert len(result.created) == 2 and result.failed == []
    order = Order.objects.get(external_id="L-1")
    by_sku = {line.sku_id: line for line in order.lines.all()}
    assert (by_sku[a.pk].unit_price, by_sku[a.pk].discount, by_sku[a.pk].line_total) == (a.list_price, 60, cheap * 2)
    assert (by_sku[b.pk].discount, by_sku[b.pk].line_total) == (0, full)
    assert order.total == cheap * 2 + full and Payment.objects.get(reference=order.number).amount == order.total
    # Charged above list on one line: only the net discount is kept, spread by value, as before.
    mixed = Order.objects.get(external_id="L-2")
    assert mixed.discount_total == 6 and mixed.total == a.list_price + b.list_price - 6
    assert sum(line.line_total for line in mixed.lines.all()) == mixed.total
    call_command("audit_ledgers", stdout=io.StringIO())
