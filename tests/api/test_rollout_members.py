"""The order API obeys the coupon-scopes and guide-commission switches: a pickup store where coupon
scopes are not launched refuses a coupon of wider scope with a stable code and places nothing; where
the guide capability is off, the order still names its guide but no commission accrues.  A store
override of the city's switch decides."""

from decimal import Decimal

import pytest

from members.models import CommissionEntry, CommissionRule
from members.models.coupons import CouponKind, CouponTemplate, CouponValidity
from members.services import coupons, members
from orders.models import Order
from stores.models import Capability, Role
from stores.services import capability_set
from stores.tests.factories import StaffFactory
from tests.api.conftest import idem, pay, place

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


def test_commission_on_an_api_order_accrues_only_where_the_guide_capability_is_on(partner, clerk_a, stocked,
                                                                                  store_a):
    _key, client = partner
    guide = StaffFactory(role=Role.GUIDE, store=store_a, guide_code="G-API-1")
    CommissionRule.objects.create(rate_percent=Decimal("10.00"))
    line = [{"sku": stocked[0].pk, "qty": 1}]

    def picked_up():
        order = place(client, store=store_a, lines=line, guide_code=guide.guide_code).json()
        pay(client, order["id"])
        handed = clerk_a[1].post("/api/v1/pickups/handover/", {"code": order["pickup_code"]}, format="json",
                                 **idem())
        assert handed.status_code == 200, handed.content
        return Order.objects.get(pk=order["id"])

    capability_set(capability=Capability.GUIDE, enabled=False, city=store_a.city)
    off = picked_up()
    capability_set(capability=Capability.GUIDE, enabled=True, store=store_a)
    on = picked_up()

    assert off.guide == guide and on.guide == guide
    assert not CommissionEntry.objects.filter(order_number=off.number).exists()
    assert CommissionEntry.objects.get(order_number=on.number, kind="accrual").frozen_delta == \
        (on.total * Decimal("0.10")).quantize(Decimal("0.01"))
