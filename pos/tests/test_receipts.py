"""Receipts at the counter: frozen points and the approving manager printed, voided sales marked in
最近销售, any receipt found again by its number or by the day it was sold."""

import uuid
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from orders import services as order_services
from orders.services import LineIn, TenderIn

from .conftest import MANAGER_PIN, pos_sale

pytestmark = pytest.mark.django_db


def zh(client, url, **params):
    return client.get(url, params, HTTP_ACCEPT_LANGUAGE="zh-hans")


def test_receipt_says_the_points_are_frozen_until_the_window_ends(client_a, store_a, clerk_a, stocked, member,
                                                                  shift_a):
    shirt, _ = stocked
    order = order_services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(shirt.id, 1)],
                                           tenders=[TenderIn("cash", Decimal("99.00"))], actor=clerk_a,
                                           member=member).order
    page = zh(client_a, reverse("pos:receipt", args=[order.number])).content.decode()

    window_end = timezone.localtime(order_services.return_window_end(order)).date()
    assert f"本单积分冻结至 {window_end:%Y-%m-%d}（退货期结束）后可用" in page


def test_a_void_prints_the_manager_and_is_marked_in_recent_sales(client_a, store_a, clerk_a, manager_a, stocked,
                                                                 shift_a):
    shirt, _ = stocked
    kept = pos_sale(store_a, clerk_a, shirt)
    voided = pos_sale(store_a, clerk_a, shirt)
    response = client_a.post(reverse("pos:sale_void", args=[voided.pk]), {"pin": MANAGER_PIN, "reason": "顾客反悔"})
    assert response.status_code == 302

    receipt = zh(client_a, reverse("pos:receipt", args=[voided.number])).content.decode()
    assert 'data-testid="approved-by">李娜<' in receipt
    assert "李娜" not in zh(client_a, reverse("pos:receipt", args=[kept.number])).content.decode()

    sale = zh(client_a, reverse("pos:sale")).content.decode()
    assert sale.count('data-testid="recent-voided"') == 1
    assert f"<s>{voided.number}" in sale and f"<s>{kept.number}" not in sale and "已作废" in sale


def test_find_a_receipt_by_number_or_by_day(client_a, client_b, store_a, clerk_a, stocked, shift_a):
    shirt, _ = stocked
    order = pos_sale(store_a, clerk_a, shirt)
    url = reverse("pos:receipts")

    response = zh(client_a, url, number=order.number.lower())
    assert response.status_code == 302
    assert response["Location"] == reverse("pos:receipt", args=[order.number]) + "?reprint=1"
    assert "重打" in zh(client_a, response["Location"]).content.decode()

    today = timezone.localdate()
    listed = zh(client_a, url, day=f"{today:%Y-%m-%d}").content.decode()
    assert order.number in listed and f"{today.year}年{today.month}月{today.day}日" in listed
    yesterday = today - timezone.timedelta(days=1)
    assert order.number not in zh(client_a, url, day=f"{yesterday:%Y-%m-%d}").content.decode()

    # another store's clerk finds nothing: receipts stay in their store
    other = zh(client_b, url, number=order.number)
    assert other.status_code == 422 and "本店没有这个小票号" in other.content.decode()
    assert zh(client_a, url, day="2026-13-40").status_code == 422
