"""A complete the store plainly cannot serve is refused before its transaction, and cheaply: the sold-out
gate or a lock-free read decides, and htmx gets only the error line, not the whole sale screen."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory import services as stock
from inventory.exceptions import InsufficientStock
from inventory.models import StockLevel
from orders.models import Order
from payments.models import Payment

from .conftest import htmx
from .test_sale import complete, on_hand, sale_uuid, scan

pytestmark = pytest.mark.django_db

# The user, the staff profile, the staff's stores with the store's row, and whether this sale was already
# made (a double click shows its receipt); the session is in Redis and its last-seen stamp is written at
# most once a minute.  The gate answers without the database; nothing is locked.
REJECTED_COMPLETE_STATEMENTS = 4


def _sold_out_elsewhere(store, sku):
    """Another channel takes the store's last units, and one more attempt is refused (marking the gate)."""
    level = StockLevel.objects.get(warehouse=store.warehouse, sku=sku, bucket="sellable")
    stock.stock_sell(warehouse=store.warehouse, lines=[(sku.pk, level.on_hand)], reference="ONLINE")
    with pytest.raises(InsufficientStock):
        stock.stock_sell(warehouse=store.warehouse, lines=[(sku.pk, 1)], reference="ONLINE-2")


def test_a_sold_out_complete_answers_a_small_fragment_in_few_statements(client_a, store_a, stocked, shift_a):
    shirt, jeans = stocked
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    scan(client_a, jeans.barcode)
    _sold_out_elsewhere(store_a, jeans)
    with CaptureQueriesContext(connection) as queries:
        response = complete(client_a, uid, cash_tendered="400")
    html = response.content.decode()
    assert response.status_code == 422
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#complete-error", "outerHTML")
    assert html.strip().startswith('<div id="complete-error"><p class="error" role="alert">')
    assert jeans.code in html and shirt.code not in html
    assert len(response.content) < 600
    assert len(queries) <= REJECTED_COMPLETE_STATEMENTS, "\n".join(q["sql"][:120] for q in queries.captured_queries)
    assert not any("FOR UPDATE" in q["sql"] for q in queries.captured_queries)
    assert not Order.objects.exists() and not Payment.objects.exists()
    assert on_hand(store_a, shirt) == 5 and on_hand(store_a, jeans) == 0


def test_a_short_basket_is_refused_by_the_lock_free_read(client_a, store_a, stocked, shift_a):
    """No gate mark (units are left, just too few): one read without locks refuses it as cheaply."""
    _, jeans = stocked  # 3 in store A
    uid = sale_uuid(client_a)
    scan(client_a, jeans.barcode)
    scan(client_a, jeans.barcode)
    stock.stock_sell(warehouse=store_a.warehouse, lines=[(jeans.pk, 2)], reference="ONLINE")
    with CaptureQueriesContext(connection) as queries:
        response = complete(client_a, uid, cash_tendered="500")
    assert response.status_code == 422 and response["HX-Retarget"] == "#complete-error"
    assert len(response.content) < 600 and jeans.code in response.content.decode()
    assert len(queries) <= REJECTED_COMPLETE_STATEMENTS + 1
    assert not Order.objects.exists() and on_hand(store_a, jeans) == 1
    # The basket is still there: with enough stock again the same sale goes through.
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(jeans.pk, 1)])
    response = complete(client_a, uid, cash_tendered="500")
    order = Order.objects.get(client_uuid=uid)
    assert response["HX-Redirect"] == reverse("pos:receipt", args=[order.number])


def test_without_htmx_the_refusal_is_the_whole_sale_page(client_a, store_a, stocked, shift_a):
    _, jeans = stocked
    uid = sale_uuid(client_a)
    scan(client_a, jeans.barcode)
    _sold_out_elsewhere(store_a, jeans)
    response = client_a.post(reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "200"})
    html = response.content.decode()
    assert response.status_code == 422 and not response.has_header("HX-Retarget")
    assert "<html" in html and '<div id="complete-error"><p class="error" role="alert">' in html
    assert jeans.code in html and not Order.objects.exists()


def test_the_workspace_keeps_an_empty_error_area_to_swap_into(client_a, stocked, shift_a):
    shirt, _ = stocked
    response = scan(client_a, shirt.barcode)
    assert '<div id="complete-error"></div>' in response.content.decode()
