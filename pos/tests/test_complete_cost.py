"""What the sale page's complete request costs in SQL: a 5-line sale with a member (points earned)
paid by card and cash, the basket filled through the page's own scan and member requests."""

import os
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.tests.factories import SkuFactory
from inventory import services as stock

from .conftest import htmx

pytestmark = pytest.mark.django_db


@pytest.fixture
def five_skus(store_a):
    skus = [SkuFactory(list_price=Decimal("49.90")) for _ in range(5)]
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(s.id, 10) for s in skus])
    return skus


def fill(client, skus, member) -> str:
    for sku in skus:
        assert htmx(client, reverse("pos:sale_scan"), {"code": sku.barcode}).status_code == 200
    page = htmx(client, reverse("pos:sale_member"), {"phone": member.phone})
    assert page.status_code == 200
    return re.search(r'name="client_uuid" value="([^"]+)"', page.content.decode()).group(1)


def complete(client, uid):
    return htmx(client, reverse("pos:sale_complete"), {"client_uuid": uid, "card_amount": "49.50",
                                                       "card_reference": f"slip-{uid}", "cash_tendered": "200"})


def test_complete_statements(client_a, five_skus, shift_a, member):
    uid = fill(client_a, five_skus, member)
    with CaptureQueriesContext(connection) as ctx:
        response = complete(client_a, uid)
    assert response.status_code == 200, response.content[-800:]
    if os.environ.get("SHOW_SQL"):
        for n, q in enumerate(ctx.captured_queries, 1):
            print(n, q["sql"][:400])
    print("TOTAL", len(ctx.captured_queries))
