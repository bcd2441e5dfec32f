"""The guide who serves a member at the counter binds them: at registration and at a sale with a chosen guide."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import GuideBinding, Member
from orders.models import Order
from stores.models import Role
from stores.tests.factories import StaffFactory

from .conftest import htmx, login

pytestmark = pytest.mark.django_db


def sale_uuid(client) -> str:
    page = client.get(reverse("pos:sale")).content.decode()
    return re.search(r'name="client_uuid" value="([^"]+)"', page).group(1)


def test_registering_with_a_chosen_guide_binds_the_new_member(client_a, stocked, shift_a, guide_a):
    htmx(client_a, reverse("pos:sale_guide"), {"guide": str(guide_a.pk)})

    response = htmx(client_a, reverse("pos:sale_member"), {"phone": "13700137000", "name": "赵敏", "register": "1"})

    assert response.status_code == 200
    new = Member.objects.get(phone="+8613700137000")
    binding = GuideBinding.objects.get(member=new, ended_reason="")
    assert binding.guide_id == guide_a.pk and binding.source == GuideBinding.Source.POS


def test_a_guide_at_the_till_binds_whom_they_register(store_a, stocked):
    guide = StaffFactory(role=Role.GUIDE, store=store_a, display_name="陈静", guide_code="G-HZ001-02")
    client = login(guide.user)

    htmx(client, reverse("pos:sale_member"), {"phone": "13700137001", "register": "1"})

    new = Member.objects.get(phone="+8613700137001")
    assert GuideBinding.objects.get(member=new).guide_id == guide.pk


def test_a_clerk_registering_without_a_guide_binds_nobody(client_a, stocked, shift_a):
    htmx(client_a, reverse("pos:sale_member"), {"phone": "13700137002", "register": "1"})

    assert Member.objects.filter(phone="+8613700137002").exists()
    assert GuideBinding.objects.count() == 0


def test_a_sale_with_a_chosen_guide_binds_the_member_for_later_orders(client_a, stocked, shift_a, member, guide_a):
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    htmx(client_a, reverse("pos:sale_scan"), {"code": shirt.barcode})
    htmx(client_a, reverse("pos:sale_member"), {"phone": member.phone})
    htmx(client_a, reverse("pos:sale_guide"), {"guide": str(guide_a.pk)})

    response = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "100"})

    assert "HX-Redirect" in response, response.content.decode()[:500]
    assert Order.objects.get(client_uuid=uid).guide_id == guide_a.pk
    binding = GuideBinding.objects.get(member=member, ended_reason="")
    assert binding.guide_id == guide_a.pk and binding.source == GuideBinding.Source.POS


def test_the_guides_page_shows_qr_customers_sales_commission_and_hands_out_coupons(store_a, stocked, member,
                                                                                    client_a):
    from members.models import CouponEvent, IssuedCoupon
    from members.services import guides
    from members.tests.test_coupons import make_template

    guide = StaffFactory(role=Role.GUIDE, store=store_a, display_name="陈静", guide_code="G-HZ001-09")
    guides.guide_bind(member=member, guide_code=guide.guide_code, source="pos")
    guides.commission_accrue(guide=guide, order_number="PS-TEST-1", channel="pos", store_id=store_a.pk,
                             frozen_until=timezone.now() + timedelta(days=7), lines=[(stocked[0].pk, None, Decimal("100.00"))])
    template = make_template(name="导购专享10元", amount=Decimal("10.00"), guide_can_issue=True)
    client = login(guide.user)

    page = client.get(reverse("pos:guide"))
    given = client.post(reverse("pos:guide_coupon"), {"phone": member.phone, "template": template.pk})
    nobody = client.post(reverse("pos:guide_coupon"), {"phone": "13999999999", "template": template.pk})
    not_a_guide = client_a.get(reverse("pos:guide"))

    html = page.content.decode()
    assert page.status_code == 200
    assert "G-HZ001-09" in html and "/g/G-HZ001-09" in html and "<svg" in html
    customers = re.search(r'data-testid="guide-customers">(.*?)</table>', html, re.S).group(1)
    assert member.phone in customers
    assert "导购专享10元" in html and 'data-testid="guide-commission"' in html
    assert given.status_code == 302
    coupon = IssuedCoupon.objects.get(member=member, template=template)
    assert coupon.source == IssuedCoupon.Source.GUIDE
    assert CouponEvent.objects.filter(coupon=coupon).exists()
    assert nobody.status_code == 422
    assert not_a_guide.status_code == 403
