"""The return page of an online order shows the customer's phone masked, unless the clerk is serving
that member at the till right now (PIPL: minimum necessary)."""

import pytest
from django.urls import reverse

from members.services import members as member_services
from orders import services as order_services

from .conftest import htmx, online_pickup_order

pytestmark = pytest.mark.django_db


def test_the_return_page_masks_the_phone_unless_the_clerk_serves_that_member(client_a, store_a, stocked,
                                                                            shirt, clerk_a):
    member_services.member_register(phone="13800138000", channel="mini_program", name="王芳")
    order = online_pickup_order(store_a, shirt, phone="+8613800138000")
    order_services.pickup_handover(code=order.pickup_code, store=store_a, actor=clerk_a)
    url = reverse("pos:return_detail", args=[order.pk])

    page = client_a.get(url).content.decode()

    assert "+86138****8000" in page and "+8613800138000" not in page

    # When the clerk has the member at the till (their number typed or code scanned), the page shows it.
    assert htmx(client_a, reverse("pos:sale_member"), {"phone": "13800138000"}).status_code == 200
    serving = client_a.get(url).content.decode()
    assert "+8613800138000" in serving
