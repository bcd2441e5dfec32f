"""The sale screen: scanning, quantities, errors next to their cause, tenders and the idempotent submit."""

import re
import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from inventory.models import StockLevel
from members.models import Member
from orders.models import Order
from payments.models import CashTendered, Payment

from .conftest import at_once, htmx, login

pytestmark = pytest.mark.django_db


def on_hand(store, sku):
    return StockLevel.objects.get(warehouse=store.warehouse, sku=sku, bucket="sellable").on_hand


def sale_uuid(client) -> str:
    page = client.get(reverse("pos:sale"))
    return re.search(r'name="client_uuid" value="([^"]+)"', page.content.decode()).group(1)


def scan(client, code):
    return htmx(client, reverse("pos:sale_scan"), {"code": code})


def complete(client, uid, **tenders):
    return htmx(client, reverse("pos:sale_complete"), {"client_uuid": uid, **tenders})


def test_sale_page_needs_login(client):
    response = client.get(reverse("pos:sale"))
    assert response.status_code == 302 and response["Location"].startswith("/pos/login/")


def test_scan_by_barcode_and_sku_code_adds_lines_priced_on_the_server(client_a, stocked, shift_a):
    shirt, jeans = stocked
    scan(client_a, shirt.barcode)
    scan(client_a, shirt.barcode)
    response = scan(client_a, "JN-001")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="workspace"' in html and "<html" not in html  # an htmx fragment
    assert 'data-due="447.00"' in html  # 2 × 99 + 249


def test_unknown_and_invalid_barcodes_are_shown_next_to_the_scan_field(client_a, stocked, shift_a):
    response = scan(client_a, "6901234567892")
    assert response.status_code == 422
    assert "未知的条码或 SKU 编码“6901234567892”" in response.content.decode()
    response = scan(client_a, "12345")
    assert response.status_code == 422
    assert "scan-error" in response.content.decode()


def test_scanning_more_than_the_store_holds_is_refused(client_a, stocked, shift_a):
    _, jeans = stocked  # 3 in store A
    for _ in range(3):
        assert scan(client_a, jeans.barcode).status_code == 200
    response = scan(client_a, jeans.barcode)
    assert response.status_code == 422
    assert "JN-001" in response.content.decode() and "库存" in response.content.decode()


def test_change_quantity_and_remove_a_line(client_a, stocked, shift_a):
    shirt, jeans = stocked
    scan(client_a, shirt.barcode)
    scan(client_a, jeans.barcode)
    response = htmx(client_a, reverse("pos:sale_qty", args=[0]), {"qty": "3"})
    assert 'data-due="546.00"' in response.content.decode()
    response = htmx(client_a, reverse("pos:sale_qty", args=[1]), {"qty": "4"})  # only 3 jeans
    assert response.status_code == 422
    response = htmx(client_a, reverse("pos:sale_remove", args=[0]))
    assert 'data-due="249.00"' in response.content.decode()


def test_cash_sale_records_the_due_part_and_shows_the_change(client_a, store_a, stocked, shift_a):
    shirt, jeans = stocked
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    scan(client_a, jeans.barcode)
    response = complete(client_a, uid, cash_tendered="400")
    order = Order.objects.get(client_uuid=uid)
    assert response["HX-Redirect"] == reverse("pos:receipt", args=[order.number])
    assert order.total == Decimal("348.00") and order.status == "completed"
    cash = Payment.objects.get(reference=order.number)
    assert cash.tender == "cash" and cash.amount == Decimal("348.00")
    assert CashTendered.objects.get(payment=cash).change == Decimal("52.00")
    assert on_hand(store_a, shirt) == 4 and on_hand(store_a, jeans) == 2
    receipt = client_a.get(response["HX-Redirect"]).content.decode()
    assert "¥52.00" in receipt and "¥400.00" in receipt and order.number in receipt and "<svg" in receipt


def test_split_tender_card_and_cash(client_a, stocked, shift_a):
    shirt, jeans = stocked
    uid = sale_uuid(client_a)
    scan(client_a, jeans.barcode)
    complete(client_a, uid, card_amount="200", card_reference="T8891", cash_tendered="50")
    order = Order.objects.get(client_uuid=uid)
    amounts = dict(Payment.objects.filter(reference=order.number).values_list("tender", "amount"))
    assert amounts == {"unionpay_card": Decimal("200.00"), "cash": Decimal("49.00")}
    assert CashTendered.objects.get(payment__reference=order.number).change == Decimal("1.00")


@pytest.mark.parametrize("tenders, field_text", [
    ({"cash_tendered": "50"}, "现金少于应收现金"),
    ({"card_amount": "300", "card_reference": "X1"}, "超过应收"),
    ({"card_amount": "99"}, "签购单"),
])
def test_tender_errors_are_shown_and_nothing_is_sold(client_a, store_a, stocked, shift_a, tenders, field_text):
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    response = complete(client_a, uid, **tenders)
    assert response.status_code == 422
    assert field_text in response.content.decode()
    assert not Order.objects.filter(client_uuid=uid).exists()
    assert on_hand(store_a, shirt) == 5


def test_no_sale_without_an_open_shift(client_a, store_a, stocked):
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    response = complete(client_a, uid, cash_tendered="99")
    assert response.status_code == 422
    assert "没有打开的班次" in response.content.decode()
    assert not Order.objects.exists()
    assert on_hand(store_a, shirt) == 5


def test_a_double_submitted_sale_makes_one_order_and_takes_stock_once(client_a, store_a, stocked, shift_a):
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    first = complete(client_a, uid, cash_tendered="100")
    second = complete(client_a, uid, cash_tendered="100")  # the retry after a timeout
    assert first["HX-Redirect"] == second["HX-Redirect"]
    assert Order.objects.filter(client_uuid=uid).count() == 1
    assert Payment.objects.count() == 1
    assert on_hand(store_a, shirt) == 4


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submits_of_one_sale_make_one_order(store_a, stocked, clerk_a, shift_a):
    shirt, _ = stocked
    client = login(clerk_a)
    uid = sale_uuid(client)
    scan(client, shirt.barcode)
    results = at_once(lambda: complete(client, uid, cash_tendered="99"))
    order = Order.objects.get(client_uuid=uid)
    assert [r.get("HX-Redirect") for r in results] == [reverse("pos:receipt", args=[order.number])] * 2
    assert Payment.objects.filter(reference=order.number).count() == 1
    assert on_hand(store_a, shirt) == 4


def test_an_out_of_date_sale_screen_is_refused(client_a, stocked, shift_a):
    shirt, _ = stocked
    scan(client_a, shirt.barcode)
    response = complete(client_a, str(uuid.uuid4()), cash_tendered="99")
    assert response.status_code == 422
    assert not Order.objects.exists()


def test_empty_basket_cannot_be_completed(client_a, stocked, shift_a):
    uid = sale_uuid(client_a)
    response = complete(client_a, uid, cash_tendered="10")
    assert response.status_code == 422
    assert "请先扫描商品" in response.content.decode()


def test_member_lookup_register_and_scan(client_a, store_a, stocked, shift_a):
    response = htmx(client_a, reverse("pos:sale_member"), {"phone": "13800138000"})
    assert "没有此手机号的会员" in response.content.decode()
    response = htmx(client_a, reverse("pos:sale_member"), {"phone": "13800138000", "name": "王芳", "register": "1"})
    member = Member.objects.get(phone="+8613800138000")
    assert member.registration_store == store_a and member.registration_channel == "pos"
    assert 'data-testid="member-points"' in response.content.decode()
    htmx(client_a, reverse("pos:sale_member"), {"clear": "1"})
    response = scan(client_a, "o2o:member:+8613800138000")
    assert "王芳" in response.content.decode()
    response = htmx(client_a, reverse("pos:sale_member"), {"phone": "12"})
    assert response.status_code == 422 and "手机号" in response.content.decode()


def test_member_phone_goes_on_the_sale(client_a, stocked, shift_a):
    shirt, _ = stocked
    htmx(client_a, reverse("pos:sale_member"), {"phone": "13800138000", "register": "1"})
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    complete(client_a, uid, cash_tendered="99")
    order = Order.objects.get(client_uuid=uid)
    assert order.customer_phone == "+8613800138000"
    receipt = client_a.get(reverse("pos:receipt", args=[order.number])).content.decode()
    assert "+86138****8000" in receipt


def test_the_full_page_works_without_htmx(client_a, stocked, shift_a):
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    response = client_a.post(reverse("pos:sale_scan"), {"code": shirt.barcode})
    assert response.status_code == 200 and "<html" in response.content.decode()
    response = client_a.post(reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "99"})
    order = Order.objects.get(client_uuid=uid)
    assert response.status_code == 302 and response["Location"] == reverse("pos:receipt", args=[order.number])


def test_pages_are_chinese_by_default_and_english_on_request(client_a, shift_a):
    assert "收银" in client_a.get(reverse("pos:sale"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    client_a.post("/i18n/setlang/", {"language": "en", "next": "/pos/sale/"})
    html = client_a.get(reverse("pos:sale")).content.decode()
    assert "Complete sale" in html


def test_a_scan_costs_a_bounded_number_of_queries(client_a, stocked, shift_a, member, django_assert_max_num_queries):
    shirt, jeans = stocked
    htmx(client_a, reverse("pos:sale_member"), {"phone": member.phone})
    for _ in range(2):
        scan(client_a, shirt.barcode)
    with django_assert_max_num_queries(22):
        response = scan(client_a, jeans.barcode)
    assert response.status_code == 200
