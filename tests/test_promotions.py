"""Promotions run the same in store and online (价格统一执行): the same basket priced on the POS page
and through ``POST /api/v1/orders/`` costs the same, line by line; the receipt says which promotion
took what off; returns give the promotion back with the line; coupons that do not stack are weighed
against the promotions; marketplace orders keep the marketplace's price."""

import re
import uuid
from io import StringIO
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from members.services import coupons
from members.tests.test_coupons import make_template
from o2o.apiauth import SCOPES, partner_key_create
from orders import pricing
from orders import services as order_services
from orders.models import Channel, Fulfillment, Order, OrderLinePromotion
from orders.services import LineIn, ReturnLineIn, TenderIn
from payments import shifts
from pos.tests.conftest import htmx, login
from promotions.models import Promotion
from promotions.tests.factories import promotion
from stores.models import Role
from stores.tests.factories import StaffFactory
from tests.api.conftest import bearer, place

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def goods(central, store_a):
    shirt = SkuFactory(code="TS-001", name="纯棉T恤", list_price=D("99.00"), cost_price=D("30.00"))
    jeans = SkuFactory(code="JN-001", name="直筒牛仔裤", list_price=D("249.00"), cost_price=D("90.00"))
    socks = SkuFactory(code="SK-001", name="棉袜", list_price=D("19.90"), cost_price=D("4.50"))
    for warehouse in (central, store_a.warehouse):
        stock.stock_receive(warehouse=warehouse, lines=[(shirt.id, 20), (jeans.id, 20), (socks.id, 20)])
    return shirt, jeans, socks


@pytest.fixture
def promotions(goods, store_a):
    """What HQ runs in store A's city: 第二件半价 on shirts, a gift pair of socks with two shirts,
    a 限时特价 on jeans, and 满减 300-30 / 600-80 in one group with 满折 10% over 500."""
    shirt, jeans, socks = goods
    return [
        promotion(code="SHIRT2", name="T恤第二件半价", kind="nth_item", nth=2, percent=D("50"), skus=[shirt],
                  priority=10),
        promotion(code="SOCKS", name="买二赠袜", kind="gift", buy_qty=2, gift_sku=socks, gift_qty=1, skus=[shirt],
                  bearer="supplier"),
        promotion(code="JEANS", name="牛仔裤限时特价", kind="special_price", price=D("199.00"), skus=[jeans],
                  cities=[store_a.city], bearer="store"),
        promotion(code="M300", name="满300减30", kind="threshold_off", steps="300:30, 600:80",
                  exclusive_group="basket", channels=["pos", "mini_program"]),
        promotion(code="Z500", name="满500享9折", kind="threshold_percent", threshold=D("500"), percent=D("10"),
                  exclusive_group="basket"),
    ]


@pytest.fixture
def clerk(store_a):
    user = StaffFactory(role=Role.CLERK, store=store_a, display_name="张伟").user
    shifts.shift_open(store=store_a, actor=user, opening_float=D("200.00"))
    return user


def pos_basket(client, skus_qty):
    page = client.get(reverse("pos:sale")).content.decode()
    uid = re.search(r'name="client_uuid" value="([^"]+)"', page).group(1)
    response = None
    for sku, qty in skus_qty:
        for _ in range(qty):
            response = htmx(client, reverse("pos:sale_scan"), {"code": sku.barcode})
    return uid, response.content.decode()


BASKETS = {
    "shirts, socks and jeans": lambda s, j, k: [(s, 3), (k, 1), (j, 1)],
    "two jeans": lambda s, j, k: [(j, 2)],
    "one shirt": lambda s, j, k: [(s, 1)],
}


@pytest.mark.parametrize("basket", BASKETS)
def test_the_same_basket_costs_the_same_at_the_counter_and_online(clerk, store_a, goods, promotions, basket):
    lines = BASKETS[basket](*goods)
    client = login(clerk)
    uid, page = pos_basket(client, lines)
    due = D(re.search(r'data-due="([^"]+)"', page).group(1))
    response = htmx(client, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "2000"})
    sale = Order.objects.get(client_uuid=uid)
    assert response["HX-Redirect"] == reverse("pos:receipt", args=[sale.number])

    _, raw = partner_key_create(name="mini program", channel="mini_program", scopes=SCOPES)
    online = place(bearer(raw), store=store_a, lines=[{"sku": sku.id, "qty": qty} for sku, qty in lines])
    assert online.status_code == 201, online.content
    body = online.json()

    assert sale.total == due == D(body["total"])
    assert sale.discount_total == D(body["discount_total"])
    counter = [(ln.sku_id, ln.qty, ln.unit_price, ln.discount, ln.line_total) for ln in sale.lines.all()]
    web = [(ln["sku"], ln["qty"], D(ln["unit_price"]), D(ln["discount"]), D(ln["line_total"]))
           for ln in body["lines"]]
    assert sorted(counter) == sorted(web)
    placed = Order.objects.get(pk=body["id"])
    assert (sorted(OrderLinePromotion.objects.filter(line__order=sale).values_list("code", "amount"))
            == sorted(OrderLinePromotion.objects.filter(line__order=placed).values_list("code", "amount")))


def test_the_counter_shows_each_promotion_and_the_receipt_explains_it(clerk, goods, promotions):
    shirt, jeans, socks = goods
    client = login(clerk)
    uid, page = pos_basket(client, [(shirt, 2), (socks, 1), (jeans, 1)])
    # shirts 198 - 49.50 (second half price); socks 19.90 free; jeans 249 → 199;
    # then 满减 on 347.50: 300-30 (满500 9折 not reached) → 317.50.
    assert "T恤第二件半价 −¥49.50" in page
    assert "买二赠袜 −¥19.90" in page
    assert "牛仔裤限时特价 −¥50.00" in page
    assert 'data-due="317.50"' in page
    htmx(client, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "400"})
    sale = Order.objects.get(client_uuid=uid)

    receipt = client.get(reverse("pos:receipt", args=[sale.number])).content.decode()

    assert receipt.count('data-testid="receipt-promotion"') == 5  # 满减 spreads over the three lines
    assert "买二赠袜 (赠品 1 件)" in receipt
    assert re.search(r'data-testid="receipt-promotions">−¥149.40<', receipt)
    gift = OrderLinePromotion.objects.get(line__order=sale, code="SOCKS")
    assert (gift.line.sku_id, gift.line.line_total, gift.gift_qty, gift.gift_cost, gift.bearer) == (
        socks.id, D("0.00"), 1, D("4.50"), "supplier")
    assert sale.total == D("317.50")


def test_returns_give_back_the_line_as_it_was_sold_promotion_included(clerk, store_a, goods, promotions):
    shirt, jeans, socks = goods
    sale = order_services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), actor=clerk,
                                          lines=[LineIn(shirt.id, 2), LineIn(socks.id, 1)],
                                          tenders=[TenderIn("cash", D("148.50"))]).order
    lines = {ln.sku_id: ln for ln in sale.lines.all()}
    assert (lines[shirt.id].line_total, lines[socks.id].line_total) == (D("148.50"), D("0.00"))

    gift_back = order_services.return_create(order=sale, store=store_a, actor=clerk,
                                             lines=[ReturnLineIn(lines[socks.id].pk, 1)])
    one_shirt = order_services.return_create(order=sale, store=store_a, actor=clerk,
                                             lines=[ReturnLineIn(lines[shirt.id].pk, 1)])
    other = order_services.return_create(order=sale, store=store_a, actor=clerk,
                                         lines=[ReturnLineIn(lines[shirt.id].pk, 1)])

    assert gift_back.refund_total == D("0.00")  # a gift brought back refunds nothing
    # The half-price unit is spread over the line: each shirt refunds half of 148.50.
    assert (one_shirt.refund_total, other.refund_total) == (D("74.25"), D("74.25"))
    sale.refresh_from_db()
    assert sale.refunded_total == sale.paid_total == D("148.50")


def test_a_coupon_that_does_not_stack_is_weighed_against_the_promotions(store_a, goods, promotions):
    from members.services import members

    shirt, jeans, _ = goods
    member = members.member_register(phone="13800138000", channel="pos", store_id=store_a.pk, name="王芳")
    small = coupons.coupon_issue(template=make_template(amount=D("20.00"), stacks_with_promotions=False),
                                 member=member).code
    big = coupons.coupon_issue(template=make_template(amount=D("200.00"), stacks_with_promotions=False),
                               member=member).code
    stacking = coupons.coupon_issue(template=make_template(amount=D("20.00")), member=member).code

    def price(code):
        return pricing.sale_price(demand={jeans.id: 1}, channel=Channel.POS, store_id=store_a.pk,
                                         member=member, coupon_code=code)

    kept = price(small)  # the special price saves 50, more than the coupon's 20: no coupon
    assert (kept.promotion_discount, kept.coupon_discount, kept.coupon_skipped) == (
        D("50.00"), D("0.00"), "coupon_not_stackable")
    coupon = price(big)  # the coupon saves 200, more than the promotions: no promotions
    assert (coupon.promotion_discount, coupon.coupon_discount, coupon.total) == (D("0.00"), D("200.00"), D("49.00"))
    both = price(stacking)
    assert (both.promotion_discount, both.coupon_discount, both.total) == (D("50.00"), D("20.00"), D("179.00"))


def test_marketplace_orders_keep_the_marketplace_price(store_a, goods, promotions):
    shirt, _, _ = goods
    order = order_services.order_place(channel=Channel.MARKETPLACE, partner="tmall", external_id="TM-1",
                                       fulfillment=Fulfillment.PICKUP, store=store_a,
                                       lines=[LineIn(shirt.id, 2)]).order
    assert order.total == D("198.00") and not OrderLinePromotion.objects.filter(line__order=order).exists()


def test_a_paused_promotion_stops_at_once_and_the_exchange_prices_the_new_goods_with_the_rest(
        clerk, store_a, goods, promotions):
    shirt, jeans, _ = goods
    Promotion.objects.filter(code="SHIRT2").update(status=Promotion.Status.PAUSED)
    priced = pricing.sale_price(demand={shirt.id: 2}, channel=Channel.POS, store_id=store_a.pk)
    assert priced.total == D("198.00")

    sale = order_services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), actor=clerk,
                                          lines=[LineIn(shirt.id, 1)], tenders=[TenderIn("cash", D("99.00"))]).order
    line = sale.lines.get()
    result = order_services.exchange_create(order=sale, store=store_a, actor=clerk, client_uuid=uuid.uuid4(),
                                            return_lines=[ReturnLineIn(line.pk, 1)], new_lines=[LineIn(jeans.id, 1)],
                                            tenders=[TenderIn("cash", D("100.00"))])
    assert result.order.total == D("199.00")  # jeans at the special price
    assert OrderLinePromotion.objects.get(line__order=result.order).code == "JEANS"
    assert Promotion.objects.get(code="JEANS").used_count == 1


def test_returning_the_goods_without_the_gift_takes_the_gifts_value_back(clerk, store_a, goods, promotions):
    shirt, _, socks = goods
    sale = order_services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), actor=clerk,
                                          lines=[LineIn(shirt.id, 2), LineIn(socks.id, 1)],
                                          tenders=[TenderIn("cash", D("148.50"))]).order
    lines = {ln.sku_id: ln for ln in sale.lines.all()}
    gift = OrderLinePromotion.objects.get(line__order=sale, code="SOCKS")
    assert (gift.buy_qty, gift.earned_by) == (2, [shirt.id])

    # One shirt back, the socks kept: one shirt no longer earns them; their 19.90 comes off the refund.
    first = order_services.return_create(order=sale, store=store_a, actor=clerk,
                                         lines=[ReturnLineIn(lines[shirt.id].pk, 1)])
    assert first.refund_total == D("74.25") - D("19.90")
    # The rest back, gift included: nothing more is taken, and the 19.90 withheld for the gift comes back
    # with it (on the gift's return line; the shirts' line counts it refunded).
    rest = order_services.return_create(order=sale, store=store_a, actor=clerk,
                                        lines=[ReturnLineIn(lines[shirt.id].pk, 1), ReturnLineIn(lines[socks.id].pk, 1)])
    assert rest.refund_total == D("74.25") + D("19.90")
    gift.refresh_from_db()
    assert (gift.gift_taken_back, gift.gift_value_taken_back) == (0, D("0.00"))
    line = sale.lines.get(sku=shirt)
    assert sum(rl.refund_amount for rl in line.return_lines.all()) == D("128.60")
    assert line.refunded_amount == D("148.50")
    sale.refresh_from_db()
    assert sale.refunded_total == sale.paid_total == D("148.50")
    call_command("audit_ledgers", stdout=StringIO())


def test_returning_the_goods_with_the_gift_refunds_them_in_full(clerk, store_a, goods, promotions):
    shirt, _, socks = goods
    sale = order_services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), actor=clerk,
                                          lines=[LineIn(shirt.id, 3), LineIn(socks.id, 1)],
                                          tenders=[TenderIn("cash", D("247.50"))]).order
    lines = {ln.sku_id: ln for ln in sale.lines.all()}
    # Three shirts, one back: the two kept still earn the socks.
    one = order_services.return_create(order=sale, store=store_a, actor=clerk,
                                       lines=[ReturnLineIn(lines[shirt.id].pk, 1)])
    assert one.refund_total == D("82.50")
    both = order_services.return_create(order=sale, store=store_a, actor=clerk,
                                        lines=[ReturnLineIn(lines[shirt.id].pk, 2), ReturnLineIn(lines[socks.id].pk, 1)])
    assert both.refund_total == D("165.00")
    sale.refresh_from_db()
    assert sale.refunded_total == sale.paid_total


def test_the_counter_says_when_a_coupon_is_left_for_the_promotions(clerk, store_a, goods, promotions):
    from members.services import members

    _, jeans, _ = goods
    member = members.member_register(phone="13800138000", channel="pos", store_id=store_a.pk, name="王芳")
    code = coupons.coupon_issue(template=make_template(amount=D("20.00"), stacks_with_promotions=False),
                                member=member).code
    client = login(clerk)
    uid, _ = pos_basket(client, [(jeans, 1)])

    page = htmx(client, reverse("pos:sale_coupon"), {"coupon": code}).content.decode()

    assert 'data-testid="coupon-skipped"' in page and 'data-due="199.00"' in page
    htmx(client, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "200"})
    sale = Order.objects.get(client_uuid=uid)
    assert (sale.total, sale.coupon_code, sale.coupon_discount) == (D("199.00"), "", D("0.00"))
    assert coupons.IssuedCoupon.objects.get(code=code).status == "issued"


def test_a_managers_price_override_is_the_price_no_promotion_on_top(clerk, store_a, goods, promotions):
    from payments import approvals

    _, jeans, _ = goods
    manager = StaffFactory(role=Role.STORE_MANAGER, store=store_a).user
    approvals.manager_pin_set(user=manager, pin="4321")
    client = login(clerk)
    uid, page = pos_basket(client, [(jeans, 1)])
    assert 'data-due="199.00"' in page  # the special price

    page = htmx(client, reverse("pos:sale_price", args=[0]), {"price": "220", "pin": "4321"}).content.decode()

    assert 'data-due="220.00"' in page and "牛仔裤限时特价" not in page
    htmx(client, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "220"})
    sale = Order.objects.get(client_uuid=uid)
    assert sale.total == D("220.00") and not OrderLinePromotion.objects.filter(line__order=sale).exists()
