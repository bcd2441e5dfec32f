"""Catalog, stores, stock levels and availability: filters, cursor pagination, visibility, query counts."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Sku
from catalog.tests.factories import CategoryFactory, ProductFactory, SkuFactory
from inventory import services as stock
from o2o.apiauth import CATALOG_READ, STOCK_READ
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


def results(response):
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_sku_lookup_by_barcode(partner, skus):
    _key, client = partner

    found = results(client.get("/api/v1/catalog/skus/", {"barcode": skus[2].barcode}))

    assert [s["id"] for s in found] == [skus[2].pk]
    assert found[0]["list_price"] == "99.00" and found[0]["currency"] == "CNY"
    assert "cost_price" not in found[0]


def test_category_filter_covers_the_subtree(partner):
    _key, client = partner
    apparel = CategoryFactory(code="apparel", path="apparel")
    tops = CategoryFactory(code="tops", path="apparel/tops", parent=apparel)
    shoes = CategoryFactory(code="shoes", path="shoes")
    shirt = SkuFactory(product=ProductFactory(category=tops))
    SkuFactory(product=ProductFactory(category=shoes))
    CategoryFactory(code="apparel2", path="apparel2")

    found = results(client.get("/api/v1/catalog/skus/", {"category": apparel.pk}))
    products = results(client.get("/api/v1/catalog/products/", {"category": apparel.pk}))

    assert [s["id"] for s in found] == [shirt.pk]
    assert [p["id"] for p in products] == [shirt.product_id]
    assert products[0]["skus"][0]["code"] == shirt.code


def test_updated_since_returns_only_changes(partner, skus):
    _key, client = partner
    cutoff = timezone.now()
    Sku.objects.filter(pk=skus[1].pk).update(updated_at=cutoff + timedelta(seconds=1))
    Sku.objects.exclude(pk=skus[1].pk).update(updated_at=cutoff - timedelta(days=1))

    found = results(client.get("/api/v1/catalog/skus/", {"updated_since": cutoff.isoformat()}))

    assert [s["id"] for s in found] == [skus[1].pk]


def test_cursor_pagination_walks_everything_once(partner):
    _key, client = partner
    made = SkuFactory.create_batch(7)
    Sku.objects.update(updated_at=timezone.now())  # ties on the first ordering field

    seen, url = [], "/api/v1/catalog/skus/?limit=3"
    while url:
        page = client.get(url).json()
        seen += [s["id"] for s in page["results"]]
        url = page["next"]

    assert sorted(seen) == sorted(s.pk for s in made)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("params, field, code", [
    ({"updated_since": "yesterday"}, "updated_since", "invalid_input"),
    ({"category": "abc"}, "category", "invalid_input"),
    ({"category": str(2**70)}, "category", "invalid_input"),
    ({"cursor": "garbage"}, "cursor", "invalid_cursor"),
    ({"cursor": "cD1hYmM="}, "cursor", "invalid_cursor"),  # "p=abc": a position that is not a time
    ({"is_active": "maybe"}, "is_active", "invalid_input"),
])
def test_bad_filters_are_400_with_the_field(partner, skus, params, field, code):
    _key, client = partner

    response = client.get("/api/v1/catalog/skus/", params)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code and field in body["fields"]


def test_unknown_ids_are_404(partner, skus):
    _key, client = partner

    for url in ["/api/v1/catalog/skus/999999/", f"/api/v1/catalog/skus/{2**70}/", "/api/v1/catalog/skus/abc/",
                "/api/v1/nowhere/"]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["code"] == "not_found"


def test_sku_list_query_count_does_not_grow_with_the_page(partner):
    _key, client = partner
    SkuFactory.create_batch(3)
    client.get("/api/v1/catalog/skus/")  # the key's first use of the minute also stamps last_used_at
    with CaptureQueriesContext(connection) as small:
        assert client.get("/api/v1/catalog/skus/").status_code == 200
    SkuFactory.create_batch(20)
    with CaptureQueriesContext(connection) as large:
        assert client.get("/api/v1/catalog/skus/").status_code == 200

    assert len(large) == len(small)
    with CaptureQueriesContext(connection) as products:
        assert client.get("/api/v1/catalog/products/").status_code == 200
    assert len(products) <= len(small) + 1


def test_a_store_restricted_key_lists_only_its_stores(make_key, store_a, store_b):
    _key, raw = make_key(scopes=[CATALOG_READ], stores=[store_a])
    client = bearer(raw)

    listed = results(client.get("/api/v1/stores/"))

    assert [s["id"] for s in listed] == [store_a.pk]
    assert client.get(f"/api/v1/stores/{store_b.pk}/").status_code == 404


def test_stock_levels_visibility(make_key, clerk_a, stocked, central, store_a, store_b):
    stock.stock_receive(warehouse=store_b.warehouse, lines=[(stocked[0].pk, 2)])
    _key, raw = make_key(scopes=[STOCK_READ], stores=[store_a])
    restricted = {lv["warehouse"] for lv in results(bearer(raw).get("/api/v1/stock/levels/", {"limit": 200}))}
    _user, staff = clerk_a
    staff_sees = {lv["warehouse"] for lv in results(staff.get("/api/v1/stock/levels/", {"limit": 200}))}

    assert restricted == {central.pk, store_a.warehouse_id}
    assert staff_sees == {store_a.warehouse_id}


def test_stock_levels_show_available(partner, stocked, store_a):
    _key, client = partner
    stock.stock_reserve(warehouse=store_a.warehouse, lines=[(stocked[0].pk, 2)], reference="T-1")

    level = results(client.get("/api/v1/stock/levels/", {"sku": stocked[0].pk, "store": store_a.pk}))

    assert len(level) == 1
    assert (level[0]["on_hand"], level[0]["reserved"], level[0]["available"]) == (5, 2, 3)
    assert level[0]["store"] == store_a.pk


def test_available_to_promise_for_pickup_and_shipping(partner, stocked, store_a, store_b):
    _key, client = partner

    rows = client.get("/api/v1/stock/availability/", {"sku": [stocked[0].pk, stocked[1].pk],
                                                      "store": store_b.pk}).json()
    at_a = client.get("/api/v1/stock/availability/", {"sku": stocked[0].pk, "store": store_a.pk}).json()

    assert [r["sku"] for r in rows] == [stocked[0].pk, stocked[1].pk]
    assert rows[0]["available_in_store"] == 0
    assert rows[0]["available_for_pickup"] == 50  # transferred from the central warehouse
    assert rows[0]["available_to_ship"] == 50
    assert at_a[0]["available_in_store"] == 5


@pytest.mark.parametrize("params", [{}, {"sku": "x"}, {"sku": [str(i) for i in range(1, 102)]},
                                    {"sku": "1", "store": "abc"}, {"sku": "1", "channel": "pos"}])
def test_availability_input_errors_are_400(partner, params):
    _key, client = partner

    response = client.get("/api/v1/stock/availability/", params)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"


def test_catalog_prices_are_strings(partner):
    _key, client = partner
    SkuFactory(list_price=Decimal("1234567.89"))

    found = results(client.get("/api/v1/catalog/skus/"))

    assert found[0]["list_price"] == "1234567.89"


def test_paths_that_name_nothing_answer_the_api_404(partner):
    _key, client = partner

    for path in ["/api/v1/orders/%0A/returns/", "/api/v1/orders/%F1%99%8E%8B/", "/api/v1/x%0Ay/"]:
        response = client.post(path, {}, format="json")
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
