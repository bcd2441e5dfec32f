"""Manager approval: discounts beyond the clerk's limit, price overrides and voids; the PIN rate limit."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from inventory.models import StockLevel
from orders.models import Order
from payments import approvals
from payments.models import ApprovalLog, ManagerPin, Refund
from stores.models import Role
from stores.tests.factories import StaffFactory

from .conftest import MANAGER_PIN, htmx, login

pytestmark = pytest.mark.django_db
D = Decimal


def sale_uuid(client) -> str:
    page = client.get(reverse("pos:sale")).content.decode()
    return re.search(r'name="client_uuid" value="([^"]+)"', page).group(1)


def test_a_discount_within_the_clerks_limit_needs_no_manager(client_a, stocked, shift_a):
    shirt, jeans = stocked
    htmx(client_a, reverse("pos:sale_scan"), {"code": jeans.barcode})
    response = htmx(client_a, reverse("pos:sale_discount"), {"discount": "10%"})
    html = response.content.decode()
    assert 'data-due="224.10"' in html and "店长授权" not in html
    assert not ApprovalLog.objects.exists()


def test_a_bigger_discount_asks_for_a_manager_and_records_both_staff(client_a, clerk_a, manager_a, stocked,
                                                                     shift_a):
    _, jeans = stocked
    uid = sale_uuid(client_a)
    htmx(client_a, reverse("pos:sale_scan"), {"code": jeans.barcode})
    response = htmx(client_a, reverse("pos:sale_discount"), {"discount": "50"})
    html = response.content.decode()
    assert "店长授权" in html and 'name="discount" value="50"' in html and 'data-due="249.00"' in html
    response = htmx(client_a, reverse("pos:sale_discount"), {"discount": "50", "pin": "0000"})
    assert response.status_code == 422 and "PIN 错误" in response.content.decode()
    response = htmx(client_a, reverse("pos:sale_discount"), {"discount": "50", "pin": MANAGER_PIN,
                                                            "approval_reason": "老顾客"})
    assert 'data-due="199.00"' in response.content.decode()
    log = ApprovalLog.objects.get()
    assert (log.action, log.clerk, log.manager, log.method, log.amount, log.reference, log.reason) == (
        "discount", clerk_a, manager_a, "pin", D("50.00"), uid, "老顾客")
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "199"})
    order = Order.objects.get(client_uuid=uid)
    assert order.discount_total == D("50.00") and order.total == D("199.00")


def test_a_manager_may_approve_by_signing_in_in_the_dialog(client_a, manager_a, stocked, shift_a):
    _, jeans = stocked
    htmx(client_a, reverse("pos:sale_scan"), {"code": jeans.barcode})
    manager_a.set_password("mgr-pass-2026")
    manager_a.save()
    response = htmx(client_a, reverse("pos:sale_discount"), {
        "discount": "30%", "manager_username": manager_a.username, "manager_password": "mgr-pass-2026"})
    assert 'data-due="174.30"' in response.content.decode()
    assert ApprovalLog.objects.get().method == "login"


def test_a_clerk_or_another_stores_manager_cannot_approve(client_a, store_a, manager_b, stocked, shift_a):
    _, jeans = stocked
    htmx(client_a, reverse("pos:sale_scan"), {"code": jeans.barcode})
    response = htmx(client_a, reverse("pos:sale_discount"), {"discount": "50", "pin": "9999"})  # manager B's PIN
    assert response.status_code == 422 and "PIN 错误" in response.content.decode()
    colleague = StaffFactory(role=Role.CLERK, store=store_a).user
    response = htmx(client_a, reverse("pos:sale_discount"), {
        "discount": "50", "manager_username": colleague.username, "manager_password": "pass-1234"})
    assert response.status_code == 422 and "PIN 错误" in response.content.decode()
    assert not ApprovalLog.objects.exists()


def test_a_manager_gives_a_big_discount_on_their_own_pin_free(manager_a, stocked, shift_a):
    client = login(manager_a)
    htmx(client, reverse("pos:sale_scan"), {"code": stocked[1].barcode})
    response = htmx(client, reverse("pos:sale_discount"), {"discount": "50%"})
    assert 'data-due="124.50"' in response.content.decode()


def test_a_price_override_always_needs_approval(client_a, clerk_a, manager_a, stocked, shift_a):
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    htmx(client_a, reverse("pos:sale_scan"), {"code": shirt.barcode})
    response = htmx(client_a, reverse("pos:sale_price", args=[0]), {"price": "79"})
    assert "店长授权" in response.content.decode() and 'data-due="99.00"' in response.content.decode()
    response = htmx(client_a, reverse("pos:sale_price", args=[0]), {"price": "120", "pin": MANAGER_PIN})
    assert response.status_code == 422  # not above the list price
    response = htmx(client_a, reverse("pos:sale_price", args=[0]), {"price": "79", "pin": MANAGER_PIN})
    assert 'data-due="79.00"' in response.content.decode()
    log = ApprovalLog.objects.get()
    assert (log.action, log.clerk, log.manager, log.amount) == ("price_override", clerk_a, manager_a, D("79.00"))
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "79"})
    assert Order.objects.get(client_uuid=uid).total == D("79.00")


def test_pin_attempts_are_limited_per_user(client_a, manager_a, stocked, shift_a, settings):
    settings.POS_APPROVAL_MAX_ATTEMPTS = 5
    htmx(client_a, reverse("pos:sale_scan"), {"code": stocked[1].barcode})
    for _ in range(5):
        response = htmx(client_a, reverse("pos:sale_discount"), {"discount": "50", "pin": "1111"})
        assert "PIN 错误" in response.content.decode()
    response = htmx(client_a, reverse("pos:sale_discount"), {"discount": "50", "pin": MANAGER_PIN})
    assert response.status_code == 422 and "错误次数过多" in response.content.decode()
    assert not ApprovalLog.objects.exists()


def test_successful_approvals_do_not_use_up_the_limit(client_a, manager_a, stocked, shift_a):
    htmx(client_a, reverse("pos:sale_scan"), {"code": stocked[1].barcode})
    for percent in range(20, 28):
        response = htmx(client_a, reverse("pos:sale_discount"), {"discount": f"{percent}%", "pin": MANAGER_PIN})
        assert response.status_code == 200
    assert ApprovalLog.objects.count() == 8


def test_manager_sets_a_pin_and_clerks_cannot(client_a, manager_a, manager_b):
    client = login(manager_a)
    response = client.post(reverse("pos:pin"), {"pin": "2468", "pin_again": "2468"})
    assert response.status_code == 302
    assert approvals.approval_verify(store=manager_a.staff.stores.get(), clerk=manager_a, pin="2468")[0] == manager_a
    assert ManagerPin.objects.get(staff__user=manager_a).pin_hash != "2468"
    response = client_a.post(reverse("pos:pin"), {"pin": "1357", "pin_again": "1357"})
    assert response.status_code == 422 and "只有店长" in response.content.decode()
    response = client.post(reverse("pos:pin"), {"pin": "12", "pin_again": "12"})
    assert response.status_code == 422


def test_void_needs_a_manager_and_returns_everything(client_a, store_a, clerk_a, manager_a, stocked, shift_a):
    shirt, jeans = stocked
    uid = sale_uuid(client_a)
    htmx(client_a, reverse("pos:sale_scan"), {"code": shirt.barcode})
    htmx(client_a, reverse("pos:sale_scan"), {"code": jeans.barcode})
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "card_amount": "100", "card_reference": "C9",
                                                 "cash_tendered": "300"})
    order = Order.objects.get(client_uuid=uid)
    receipt = client_a.get(reverse("pos:receipt", args=[order.number])).content.decode()
    assert reverse("pos:sale_void", args=[order.pk]) in receipt
    response = client_a.post(reverse("pos:sale_void", args=[order.pk]))
    assert "店长授权" in response.content.decode() and not order.returns.exists()
    response = client_a.post(reverse("pos:sale_void", args=[order.pk]), {"pin": MANAGER_PIN,
                                                                         "approval_reason": "顾客反悔"})
    assert response.status_code == 302
    log = ApprovalLog.objects.get(action="void")
    assert (log.clerk, log.manager, log.reference, log.amount) == (clerk_a, manager_a, order.number, D("348.00"))
    refunds = {r.payment.tender: r.amount for r in Refund.objects.all()}
    assert refunds == {"unionpay_card": D("100.00"), "cash": D("248.00")}
    levels = dict(StockLevel.objects.filter(warehouse=store_a.warehouse).values_list("sku__code", "on_hand"))
    assert levels == {"TS-001": 5, "JN-001": 3}
    receipt = client_a.get(reverse("pos:receipt", args=[order.number])).content.decode()
    assert "已作废" in receipt and reverse("pos:sale_void", args=[order.pk]) not in receipt
    response = client_a.post(reverse("pos:sale_void", args=[order.pk]), {"pin": MANAGER_PIN})
    assert response.status_code == 422  # voided once only


def test_a_sale_of_an_earlier_shift_cannot_be_voided(client_a, store_a, clerk_a, manager_a, stocked, shift_a):
    from payments import shifts

    from .conftest import pos_sale
    order = pos_sale(store_a, clerk_a, stocked[0])
    shifts.shift_close(shift=shift_a, actor=clerk_a, counts={"100": 3})
    shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("0"))
    response = client_a.post(reverse("pos:sale_void", args=[order.pk]), {"pin": MANAGER_PIN})
    assert response.status_code == 422 and not order.returns.exists()
