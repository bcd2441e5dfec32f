"""The order API obeys the coupon-scopes switch: a pickup store where coupon scopes are not launched
refuses a coupon of wider scope with a stable code, and places nothing; a store override decides."""

from decimal import Decimal

import pytest

from members.models.coupons import CouponKind, CouponTemplate, CouponValidity
from members.services import coupons, members
from orders.models import Order
from stores.models import Capability
from stores.services import capability_set
from tests.api.conftest import place

pytestmark = pytest.mark.django_db


def test_a_wide_coupon_at_a_pickup_store_without_coupon_scopes_is_409(partner, stocked, store_a):
    _key, client = partner
    member = members.member_register(phone="13800138077", channel="mini_program")
    template = CouponTemplate.objects.create(code="ALL10", name="10 off", kind=CouponKind.FIXED,
                                             amount=Decimal("10.00"), validity=CouponValidity.DAYS_AFTER_ISSUE,
                                             valid_days=30)
    code = coupons.coupon_issue(template=template, member=member).code
    line = [{"sku": stocked[0].pk, "qty": 1}]
    capability_set(capability=Capability.COUPON_SCOPES, enabled=False, city=store_a.city)

    refused = place(client, store=store_a, lines=line, member={"phone": "13800138077"}, coupon_code=code)
    assert refused.status_code == 409, refused.content
    assert refused.json()["code"] == "coupon_scopes_not_launched"
    assert refused.json()["params"] == {"capability": "coupon_scopes", "store": store_a.code}
    assert not Order.objects.exists()

    capability_set(capability=Capability.COUPON_SCOPES, enabled=True, store=store_a)
    placed = place(client, store=store_a, lines=line, member={"phone": "13800138077"}, coupon_code=code)
    assert placed.status_code == 201, placed.content
    assert Order.objects.get().coupon_discount == Decimal("10.00")
