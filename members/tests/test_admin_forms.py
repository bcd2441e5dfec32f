"""Head office sets a coupon's channels by ticking boxes and picks a campaign's members from lists,
in Chinese, instead of typing channel codes and JSON."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from members.models import CouponCampaign, CouponTemplate, Tier
from members.services.members import member_register
from members.tests.test_coupons import make_template
from stores.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hq():
    client = Client()
    client.force_login(UserFactory(username="hq-forms", is_staff=True, is_superuser=True))
    return client


def test_coupon_channels_are_ticked_in_chinese(hq):
    url = reverse("admin:members_coupontemplate_add")
    page = hq.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'type="checkbox" name="channels" value="pos"' in page and "门店 POS" in page

    response = hq.post(url, {
        "code": "POS-20", "name": "门店20元券", "description": "", "is_active": "on", "kind": "fixed",
        "amount": "20.00", "threshold": "0.00", "channels": ["pos", "mini_program"], "validity": "days",
        "valid_days": "7", "per_member_limit": "1", "bearer": "store", "ecommerce_share_percent": "0",
    }, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 302, response.content.decode()[:2000]
    assert CouponTemplate.objects.get(code="POS-20").channels == ["pos", "mini_program"]

    refused = hq.post(url, {"code": "X", "name": "x", "kind": "fixed", "amount": "5", "threshold": "0",
                            "channels": ["fax"], "validity": "days", "valid_days": "7", "bearer": "store",
                            "ecommerce_share_percent": "0"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert refused.status_code == 200 and not CouponTemplate.objects.filter(code="X").exists()


def test_campaign_members_are_picked_not_typed(hq, store_a, store_b):
    template = make_template(amount=Decimal("10.00"))
    gold = Tier.objects.order_by("pk").first()
    url = reverse("admin:members_couponcampaign_add")
    page = hq.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'name="tier"' in page and 'name="store"' in page

    response = hq.post(url, {"template": template.pk, "name": "西湖店老客", "tier": gold.pk, "store": store_a.pk,
                             "city": "", "channel": "", "segment": "", "batch_size": "500"})
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = CouponCampaign.objects.get()
    assert campaign.segment == {"tier_id": gold.pk, "registration_store_id": store_a.pk}

    # the picked segment selects exactly those members
    from members.services.coupons import campaign_segment

    west = member_register(phone="13800000001", channel="pos", store_id=store_a.pk)
    member_register(phone="13800000002", channel="pos", store_id=store_b.pk)
    west.tier = gold
    west.save(update_fields=["tier"])
    assert list(campaign_segment(campaign.segment)) == [west]
