"""The counter obeys the roll-out switches of cross-store wallet spending, coupon scopes and guide
commission, switched at the city and overridden at the store."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from members.codes import member_code_mint
from members.models import CommissionEntry, CommissionRule, IssuedCoupon
from members.services import coupons
from members.tests.test_coupons import make_template
from orders.models import Order
from stores.models import Capability
from stores.services import capability_set

from .conftest import htmx

pytestmark = pytest.mark.django_db
D = Decimal


def sale_uuid(client) -> str:
    page = client.get(reverse("pos:sale")).content.decode()
    return re.search(r'name="client_uuid" value="([^"]+)"', page).group(1)


def wallet_sale(client, member, sku, amount="50.00"):
    uid = sale_uuid(client)
    htmx(client, reverse("pos:sale_scan"), {"code": sku.barcode})
    htmx(client, reverse("pos:sale_scan"), {"code": member_code_mint(member=member).code})
    response = htmx(client, reverse("pos:sale_complete"), {"client_uuid": uid, "wallet_amount": amount,
                                                           "cash_tendered": "200"})
    return uid, response


def test_wallet_money_recharged_elsewhere_is_refused_where_cross_store_spending_is_off(
        client_a, store_a, stocked, shift_a, member):
    shirt, _ = stocked  # the member's wallet was recharged online, not at store A
    capability_set(capability=Capability.WALLET_CROSS_STORE, enabled=False, city=store_a.city)

    uid, refused = wallet_sale(client_a, member, shirt)
    assert refused.status_code == 422
    assert store_a.name in refused.content.decode()  # "跨店储值消费 … 西湖店 …": the reason, in the clerk's language
    assert not Order.objects.filter(client_uuid=uid).exists()
    member.refresh_from_db()
    assert member.wallet_balance == D("110.00")

    # the store is switched on on its own: the city's switch no longer decides there
    capability_set(capability=Capability.WALLET_CROSS_STORE, enabled=True, store=store_a)
    uid, done = wallet_sale(client_a, member, shirt)
    assert done.status_code == 200 and "HX-Redirect" in done, done.content.decode()[:500]
    member.refresh_from_db()
    assert member.wallet_balance == D("60.00")


def test_a_wide_coupon_is_refused_where_coupon_scopes_are_off_and_a_store_coupon_is_not(
        client_a, store_a, stocked, shift_a, member, coupon):
    shirt, _ = stocked
    capability_set(capability=Capability.COUPON_SCOPES, enabled=False, city=store_a.city)
    htmx(client_a, reverse("pos:sale_scan"), {"code": shirt.barcode})

    refused = htmx(client_a, reverse("pos:sale_coupon"), {"coupon": coupon.code})
    assert refused.status_code == 422 and store_a.name in refused.content.decode()

    own = make_template(amount=D("10.00"))
    own.stores.add(store_a)  # made for this store: honoured even before coupon scopes are launched
    own_coupon = coupons.coupon_issue(template=own, member=member)
    accepted = htmx(client_a, reverse("pos:sale_coupon"), {"coupon": own_coupon.code})
    assert accepted.status_code == 200

    capability_set(capability=Capability.COUPON_SCOPES, enabled=True, store=store_a)
    wide = htmx(client_a, reverse("pos:sale_coupon"), {"coupon": coupon.code})
    assert wide.status_code == 200
    assert IssuedCoupon.objects.get(pk=coupon.pk).status == "issued"  # quoted, not yet redeemed


def test_guide_commission_accrues_only_where_the_guide_capability_is_on(client_a, store_a, stocked, shift_a,
                                                                        guide_a):
    shirt, _ = stocked
    CommissionRule.objects.create(rate_percent=D("5.00"))

    def sale_with_guide():
        uid = sale_uuid(client_a)
        htmx(client_a, reverse("pos:sale_scan"), {"code": shirt.barcode})
        htmx(client_a, reverse("pos:sale_guide"), {"guide": str(guide_a.pk)})
        response = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "200"})
        assert "HX-Redirect" in response, response.content.decode()[:500]
        return Order.objects.get(client_uuid=uid)

    capability_set(capability=Capability.GUIDE, enabled=False, city=store_a.city)
    off = sale_with_guide()
    capability_set(capability=Capability.GUIDE, enabled=True, store=store_a)
    on = sale_with_guide()

    assert off.guide == guide_a  # the sale still names who served; no commission is owed for it
    assert not CommissionEntry.objects.filter(order_number=off.number).exists()
    accrued = CommissionEntry.objects.get(order_number=on.number, kind="accrual")
    assert (accrued.guide, accrued.frozen_delta) == (guide_a, (on.total * D("0.05")).quantize(D("0.01")))
