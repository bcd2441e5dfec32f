"""Park and recall (挂单/取单) and the open basket kept on the server, through the POS pages."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.models import Order
from pos import parking
from pos.basket import Basket
from pos.models import PosBasket
from stores.models import Role
from stores.tests.factories import StaffFactory

from .conftest import htmx, login

pytestmark = pytest.mark.django_db


def sale_uuid(client) -> str:
    page = client.get(reverse("pos:sale"))
    return re.search(r'name="client_uuid" value="([^"]+)"', page.content.decode()).group(1)


def scan(client, code):
    return htmx(client, reverse("pos:sale_scan"), {"code": code})


def park(client, label=""):
    return htmx(client, reverse("pos:sale_park"), {"label": label})


def recall(client, parked: PosBasket):
    return client.post(reverse("pos:parked_recall", args=[parked.pk]))


@pytest.fixture
def colleague_a(store_a):
    """A second clerk of store A."""
    return StaffFactory(role=Role.CLERK, store=store_a, display_name="王磊").user


def test_park_lists_the_sale_with_time_total_and_clerk_and_starts_a_new_basket(client_a, stocked, shift_a,
                                                                               clerk_a, member):
    shirt, jeans = stocked
    first_uuid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    scan(client_a, jeans.barcode)
    htmx(client_a, reverse("pos:sale_member"), {"phone": member.phone})

    response = park(client_a, label="穿红衣服的顾客")

    assert response.status_code == 200 and response["HX-Redirect"] == reverse("pos:sale")
    parked = PosBasket.objects.get(state=PosBasket.State.PARKED)
    assert parked.store == shift_a.store and parked.clerk == clerk_a and parked.shift == shift_a
    assert parked.total == Decimal("348.00") and parked.units == 2 and parked.label == "穿红衣服的顾客"
    kept = Basket.load(parked.data)
    assert kept.uuid == first_uuid and kept.member_id == member.pk and [ln.sku_id for ln in kept.lines] == [
        shirt.pk, jeans.pk]
    # The clerk's screen is a new, empty sale.
    assert sale_uuid(client_a) != first_uuid
    assert parking.basket_open_get(store=shift_a.store, clerk=clerk_a).lines == ()
    listing = client_a.get(reverse("pos:parked")).content.decode()
    assert parked.number in listing and "¥348.00" in listing and "穿红衣服的顾客" in listing
    assert "张伟" in listing and parked.parked_at.astimezone().strftime("%H:%M") in listing
    assert "挂单列表 (1)" in client_a.get(reverse("pos:sale")).content.decode()


def test_an_empty_basket_cannot_be_parked(client_a, stocked, shift_a):
    response = park(client_a)
    assert response.status_code == 422
    assert "购物篮是空的，没有可挂的单。" in response.content.decode()
    assert not PosBasket.objects.filter(state=PosBasket.State.PARKED).exists()


def test_parking_needs_an_open_shift(client_a, stocked):
    scan(client_a, stocked[0].barcode)  # the basket takes the item; the sale itself needs the shift
    response = park(client_a)
    assert response.status_code == 422
    assert not PosBasket.objects.filter(state=PosBasket.State.PARKED).exists()


def test_another_clerk_of_the_store_recalls_it_and_completes_the_sale(client_a, stocked, shift_a, colleague_a,
                                                                      member):
    shirt, jeans = stocked
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    htmx(client_a, reverse("pos:sale_member"), {"phone": member.phone})
    park(client_a)
    parked = PosBasket.objects.get(state=PosBasket.State.PARKED)

    other = login(colleague_a)
    response = recall(other, parked)

    assert response.status_code == 302 and response["Location"] == reverse("pos:sale")
    parked.refresh_from_db()
    assert parked.state == PosBasket.State.RECALLED and parked.recalled_by == colleague_a
    assert parked.recalled_at is not None
    page = other.get(reverse("pos:sale")).content.decode()
    assert shirt.name in page and f'value="{uid}"' in page
    assert 'data-testid="parked-row"' not in client_a.get(reverse("pos:parked")).content.decode()
    done = htmx(other, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "100"})
    order = Order.objects.get(client_uuid=uid)
    assert done["HX-Redirect"] == reverse("pos:receipt", args=[order.number])
    assert order.created_by == colleague_a and order.member_id == member.pk and order.total == Decimal("99.00")


def test_a_recalled_sale_cannot_be_recalled_again(client_a, stocked, shift_a, colleague_a):
    scan(client_a, stocked[0].barcode)
    park(client_a)
    parked = PosBasket.objects.get(state=PosBasket.State.PARKED)
    assert recall(login(colleague_a), parked).status_code == 302

    again = recall(client_a, parked)

    assert again.status_code == 409
    assert "该挂单已被取回或已过期。" in again.content.decode()
    assert parking.basket_open_get(store=shift_a.store, clerk=shift_a.opened_by).lines == ()


def test_recall_into_a_basket_that_holds_a_sale_is_refused_and_changes_nothing(client_a, stocked, shift_a,
                                                                                colleague_a):
    shirt, jeans = stocked
    scan(client_a, shirt.barcode)
    park(client_a)
    parked = PosBasket.objects.get(state=PosBasket.State.PARKED)
    other = login(colleague_a)
    scan(other, jeans.barcode)

    response = recall(other, parked)

    assert response.status_code == 409
    assert "请先完成、挂起或清空当前销售，再取回挂单。" in response.content.decode()
    parked.refresh_from_db()
    assert parked.state == PosBasket.State.PARKED
    basket = parking.basket_open_get(store=shift_a.store, clerk=colleague_a)
    assert [ln.sku_id for ln in basket.lines] == [jeans.pk]


def test_another_stores_parked_sales_are_invisible(client_a, client_b, stocked, shift_a, shift_b):
    shirt, _ = stocked
    scan(client_a, shirt.barcode)
    park(client_a)
    parked = PosBasket.objects.get(state=PosBasket.State.PARKED)

    listing = client_b.get(reverse("pos:parked"))
    response = recall(client_b, parked)

    assert parked.number not in listing.content.decode() and 'data-testid="parked-row"' not in listing.content.decode()
    assert response.status_code == 404
    parked.refresh_from_db()
    assert parked.state == PosBasket.State.PARKED


def test_the_close_warns_which_parked_sales_expire_and_records_the_expiry(client_a, stocked, shift_a, clerk_a):
    shirt, jeans = stocked
    scan(client_a, shirt.barcode)
    park(client_a, label="试衣间")
    scan(client_a, jeans.barcode)
    park(client_a)
    first, second = PosBasket.objects.filter(state=PosBasket.State.PARKED).order_by("id")

    page = client_a.get(reverse("pos:shift")).content.decode()
    warning = page[page.index('data-testid="parked-expiry-warning"'):]
    warning = warning[:warning.index("</div>")]
    assert first.number in warning and second.number in warning and "¥99.00" in warning and "¥249.00" in warning
    assert "试衣间" in warning

    response = client_a.post(reverse("pos:shift_close"), {"count_100": "2"})

    assert response.status_code == 302
    for row in (first, second):
        row.refresh_from_db()
        assert row.state == PosBasket.State.EXPIRED and row.expired_shift_id == shift_a.pk
        assert row.expired_at is not None
    report = client_a.get(response["Location"]).content.decode()
    assert 'data-testid="expired-parked"' in report and first.number in report and second.number in report
    # Expired sales are no longer recallable, and are gone from the list.
    assert recall(client_a, first).status_code == 409
    assert 'data-testid="parked-row"' not in client_a.get(reverse("pos:parked")).content.decode()


def test_a_shift_close_does_not_expire_another_stores_parked_sales(client_a, client_b, stocked, shift_a, shift_b):
    scan(client_b, stocked[0].barcode)
    park(client_b)
    client_a.post(reverse("pos:shift_close"), {"count_100": "2"})
    assert PosBasket.objects.get(store=shift_b.store, state__in=["parked", "expired"]).state == "parked"


def test_a_re_login_keeps_the_open_basket(client_a, stocked, shift_a, clerk_a, member):
    shirt, jeans = stocked
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    scan(client_a, jeans.barcode)
    htmx(client_a, reverse("pos:sale_member"), {"phone": member.phone})
    client_a.post(reverse("pos:logout"))
    assert client_a.get(reverse("pos:sale")).status_code == 302  # signed out

    # Signing in again, in the same browser or another one, finds the basket as it was.
    for browser in (client_a, Client()):
        response = browser.post(reverse("pos:login"), {"username": clerk_a.username, "password": "pass-1234"})
        assert response.status_code == 302
        page = browser.get(reverse("pos:sale")).content.decode()
        assert shirt.name in page and jeans.name in page and f'value="{uid}"' in page
        assert "¥348.00" in page and member.phone[-4:] in page
    done = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "400"})
    assert done.status_code == 200 and Order.objects.filter(client_uuid=uid).exists()
    # After the sale the clerk's basket is a new one, also after signing in again.
    assert parking.basket_open_get(store=shift_a.store, clerk=clerk_a).lines == ()


def test_each_clerk_has_their_own_open_basket(client_a, stocked, shift_a, colleague_a):
    shirt, _ = stocked
    scan(client_a, shirt.barcode)
    page = login(colleague_a).get(reverse("pos:sale")).content.decode()
    assert shirt.name not in page


def test_a_scan_adds_one_statement_for_the_server_basket(client_a, stocked, shift_a, member):
    """When the basket lived in the session alone, this scan (member set, third line) cost 21
    statements; the one upsert of the server's basket added one, and nothing reads it (the
    session keeps a copy).  With sessions in Redis (SESSION_BACKEND=cache, the default) the
    session's read and save (savepoint, SELECT, UPDATE, release) left PostgreSQL: 22 became 18.  The
    clerk's stores now come with the store's row, and the points settings are read once: 16."""
    shirt, jeans = stocked
    htmx(client_a, reverse("pos:sale_member"), {"phone": member.phone})
    for _ in range(2):
        scan(client_a, shirt.barcode)
    with CaptureQueriesContext(connection) as ctx:
        response = scan(client_a, jeans.barcode)
    assert response.status_code == 200
    basket_sql = [q["sql"] for q in ctx.captured_queries if "pos_posbasket" in q["sql"]]
    assert len(basket_sql) == 1 and basket_sql[0].startswith("INSERT")
    assert not [q["sql"] for q in ctx.captured_queries if "django_session" in q["sql"]]
    assert len(ctx.captured_queries) == 16
    saved = Basket.load(PosBasket.objects.get(state=PosBasket.State.OPEN).data)
    assert [(ln.sku_id, ln.qty) for ln in saved.lines] == [(shirt.pk, 2), (jeans.pk, 1)]
