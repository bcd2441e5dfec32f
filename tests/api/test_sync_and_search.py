"""Incremental sync of returns and shipments (updated_since, stable (updated_at, id) order) and text
search of products and SKUs (Chinese names, codes, barcodes)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.tests.factories import ProductFactory, SkuFactory
from orders.models import Return, Shipment
from tests.api.conftest import idem
from tests.api.test_order_versions import handed_over, return_one
from tests.api.test_orders import ORDERS, ship_order

pytestmark = pytest.mark.django_db


def all_pages(client, url, params):
    seen = []
    while url:
        page = client.get(url, params)
        assert page.status_code == 200, page.content
        seen += [row["id"] for row in page.json()["results"]]
        url, params = page.json()["next"], None
    return seen


def test_returns_sync_by_updated_since_in_a_stable_order(partner, clerk_a, stocked, store_a):
    _key, client = partner
    order = handed_over(client, clerk_a, store_a, stocked)
    first = return_one(client, order, store_a).json()["id"]
    mark = timezone.now()
    second = return_one(client, order, store_a).json()["id"]
    Return.objects.filter(pk=first).update(updated_at=mark - timedelta(minutes=1))

    since = all_pages(client, "/api/v1/returns/", {"updated_since": mark.isoformat(), "limit": 1})
    everything = all_pages(client, "/api/v1/returns/", {"limit": 1})

    assert since == [second]
    assert everything == [first, second]
    assert client.get("/api/v1/returns/", {"updated_since": "not a time"}).status_code == 400


def test_shipments_sync_by_updated_since_and_a_shipped_one_comes_back(partner, stocked):
    _key, client = partner
    order = ship_order(client, stocked)
    lines = order["lines"]
    a = client.post(f"{ORDERS}{order['id']}/shipments/", {"lines": [{"order_line": lines[0]["id"], "qty": 2}]},
                    format="json", **idem()).json()["id"]
    b = client.post(f"{ORDERS}{order['id']}/shipments/", {"lines": [{"order_line": lines[1]["id"], "qty": 1}]},
                    format="json", **idem()).json()["id"]
    Shipment.objects.update(updated_at=timezone.now() - timedelta(minutes=5))
    mark = timezone.now()

    assert all_pages(client, "/api/v1/shipments/", {"updated_since": mark.isoformat()}) == []
    shipped = client.post(f"/api/v1/shipments/{a}/ship/", {"carrier": "SF", "tracking_number": "SF3"},
                          format="json", **idem())
    assert shipped.status_code == 200

    assert all_pages(client, "/api/v1/shipments/", {"updated_since": mark.isoformat()}) == [a]
    assert all_pages(client, "/api/v1/shipments/", {"limit": 1}) == [b, a]
    assert shipped.json()["updated_at"] >= shipped.json()["created_at"]


def test_product_and_sku_text_search(partner):
    _key, client = partner
    shirt = SkuFactory(product=ProductFactory(name="纯棉衬衫", code="SPU-SHIRT"), name="纯棉衬衫 白色 L",
                       code="SH-001")
    SkuFactory(product=ProductFactory(name="牛仔裤", code="SPU-JEANS"), name="牛仔裤 蓝色 32", code="JN-001")

    by_chinese = client.get("/api/v1/catalog/skus/", {"q": "衬衫"}).json()["results"]
    by_code = client.get("/api/v1/catalog/skus/", {"q": "sh-0"}).json()["results"]
    by_barcode = client.get("/api/v1/catalog/skus/", {"q": shirt.barcode}).json()["results"]
    two_words = client.get("/api/v1/catalog/skus/", {"q": "纯棉 白色"}).json()["results"]
    none = client.get("/api/v1/catalog/skus/", {"q": "纯棉 蓝色"}).json()["results"]
    products = client.get("/api/v1/catalog/products/", {"q": "SH-001"}).json()["results"]
    too_long = client.get("/api/v1/catalog/skus/", {"q": "衬" * 101})

    assert [s["id"] for s in by_chinese] == [shirt.pk]
    assert [s["id"] for s in by_code] == [shirt.pk]
    assert [s["id"] for s in by_barcode] == [shirt.pk]
    assert [s["id"] for s in two_words] == [shirt.pk]
    assert none == []
    assert [p["id"] for p in products] == [shirt.product_id]
    assert too_long.status_code == 400 and "q" in too_long.json()["fields"]
