"""One priced sale at the counter: the basket is priced once per complete, and the order's coupon
discount is the redemption's, to the fen, with a clerk's discount beside the coupon."""

import re
import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from members.models import CouponRedemption
from members.services import coupons
from members.tests.test_coupons import make_template
from orders import pricing
from orders import services as order_services
from orders.models import Order
from orders.services import LineIn

from .conftest import htmx

pytestmark = pytest.mark.django_db

COUPONS = {
    # kind: (template fields, coupon discount on 348.00 less the clerk's 10% = 313.20)
    "percent": ({"kind": "percent", "percent": Decimal("10"), "amount": None}, Decimal("31.32")),
    "fixed": ({"kind": "fixed", "amount": Decimal("20.00")}, Decimal("20.00")),
}


@pytest.fixture
def count_pricing(monkeypatch):
    calls = []
    real = pricing.sale_price

    def counted(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    # Every caller imports it by name: count it wherever it is called from.
    for module in ("pos.basket", "orders.services.placement", "orders.services.returns", "orders.pricing"):
        monkeypatch.setattr(f"{module}.sale_price", counted)
    return calls


@pytest.mark.parametrize("kind", COUPONS)
def test_the_counter_prices_once_and_the_redemption_is_the_orders_coupon_discount(
        client_a, stocked, shift_a, member, kind, count_pricing):
    fields, expected = COUPONS[kind]
    code = coupons.coupon_issue(template=make_template(**fields), member=member).code
    shirt, jeans = stocked
    page = client_a.get(reverse("pos:sale")).content.decode()
    uid = re.search(r'name="client_uuid" value="([^"]+)"', page).group(1)
    for sku in (jeans, shirt):
        htmx(client_a, reverse("pos:sale_scan"), {"code": sku.barcode})
    htmx(client_a, reverse("pos:sale_discount"), {"discount": "10%"})  # 34.80 off 348.00
    response = htmx(client_a, reverse("pos:sale_coupon"), {"coupon": code})
    due = money_text(Decimal("313.20") - expected)
    assert f'data-due="{due}"' in response.content.decode()

    count_pricing.clear()
    response = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "400"})

    order = Order.objects.get(client_uuid=uid)
    assert response["HX-Redirect"] == reverse("pos:receipt", args=[order.number])
    assert len(count_pricing) == 1  # the complete request priced the basket once
    redemption = CouponRedemption.objects.get(order_number=order.number)
    assert order.coupon_discount == redemption.discount == expected
    assert order.discount_total == Decimal("34.80") + expected
    assert order.total == Decimal(due)
    lines = list(order.lines.all())
    assert sum(ln.coupon_discount for ln in lines) == expected
    assert sum(ln.line_total for ln in lines) == order.total


@pytest.mark.parametrize("kind", COUPONS)
def test_an_order_placed_with_a_discount_redeems_what_it_was_priced_with(store_a, stocked, member, kind):
    fields, expected = COUPONS[kind]
    code = coupons.coupon_issue(template=make_template(**fields), member=member).code
    shirt, jeans = stocked

    placed = order_services.order_place(channel="web", fulfillment="pickup", store=store_a, member=member,
                                        coupon_code=code, discount=Decimal("34.80"),
                                        lines=[LineIn(jeans.id, 1), LineIn(shirt.id, 1)])

    redemption = CouponRedemption.objects.get(order_number=placed.order.number)
    assert placed.order.coupon_discount == redemption.discount == expected
    assert placed.order.total == Decimal("313.20") - expected


def test_a_sale_rung_up_without_a_priced_basket_is_priced_once_by_the_sale(store_a, stocked, count_pricing):
    shirt, _ = stocked

    order_services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(shirt.id, 2)],
                                   tenders=[order_services.TenderIn("cash", Decimal("198.00"))])

    assert len(count_pricing) == 1


def money_text(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'))}"
