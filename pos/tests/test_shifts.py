"""Shifts: open with a float, cash in and out, close with a count; expected cash and the Z report."""

import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from orders.services import LineIn, ReturnLineIn, TenderIn, pos_sale_create, return_create
from payments import shifts
from payments.models import CashMovement, Payment, PosShift
from payments.shifts import NotStoreStaff, ShiftAlreadyOpen, ShiftNotOpen

from .conftest import login, pos_sale

pytestmark = pytest.mark.django_db
D = Decimal


def test_home_sends_a_clerk_without_a_shift_to_open_one(client_a):
    response = client_a.get(reverse("pos:home"))
    assert response["Location"] == reverse("pos:shift")
    html = client_a.get(reverse("pos:shift")).content.decode()
    assert "开班" in html and "opening_float" in html


def test_open_shift_page_then_cash_in_and_out(client_a, store_a):
    response = client_a.post(reverse("pos:shift_open"), {"opening_float": "200.00"})
    assert response["Location"] == reverse("pos:sale")
    shift = shifts.shift_current(store_a)
    assert shift.opening_float == D("200.00")
    client_a.post(reverse("pos:shift_cash"), {"kind": "in", "amount": "50", "reason": "零钱补充"})
    client_a.post(reverse("pos:shift_cash"), {"kind": "out", "amount": "30", "reason": "存入保险柜"})
    assert shifts.shift_expected_cash(shift) == D("220.00")
    response = client_a.post(reverse("pos:shift_cash"), {"kind": "out", "amount": "500", "reason": "x"})
    assert response.status_code == 422 and "钱箱里没有这么多现金" in response.content.decode()
    response = client_a.post(reverse("pos:shift_cash"), {"kind": "out", "amount": "5", "reason": ""})
    assert response.status_code == 422
    assert CashMovement.objects.filter(shift=shift).count() == 2


def test_a_second_open_at_the_same_register_is_refused(client_a, store_a, shift_a):
    response = client_a.post(reverse("pos:shift_open"), {"opening_float": "100"})
    assert response.status_code == 422 and "已有打开的班次" in response.content.decode()
    with pytest.raises(ShiftAlreadyOpen):
        shifts.shift_open(store=store_a, actor=shift_a.opened_by, opening_float=D("1"))
    assert PosShift.objects.filter(store=store_a, status="open").count() == 1


def test_the_database_allows_one_open_shift_per_register(store_a, clerk_a, shift_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        PosShift.objects.create(store=store_a, opened_by=clerk_a, opened_at=shift_a.opened_at, opening_float=0)


def test_negative_float_and_other_stores_are_refused(store_a, store_b, clerk_a):
    with pytest.raises(Exception) as exc:
        shifts.shift_open(store=store_a, actor=clerk_a, opening_float="-1")
    assert exc.value.code == "invalid_amount"
    with pytest.raises(NotStoreStaff):
        shifts.shift_open(store=store_b, actor=clerk_a, opening_float=D("0"))


def test_expected_cash_counts_cash_sales_and_cash_refunds_not_change_nor_card(store_a, clerk_a, stocked, shift_a):
    shirt, jeans = stocked
    cash_sale = pos_sale(store_a, clerk_a, shirt, qty=2)  # 198 cash
    pos_sale(store_a, clerk_a, jeans, tenders=[TenderIn("unionpay_card", D("249.00"), "CARD-1")])
    shifts.cash_tendered_record(payment=Payment.objects.get(reference=cash_sale.number), tendered=D("200.00"))
    line = cash_sale.lines.get()
    return_create(order=cash_sale, store=store_a, actor=clerk_a, lines=[ReturnLineIn(line.pk, 1)])
    shifts.shift_cash_move(shift=shift_a, kind="in", amount=D("10"), reason="coins", actor=clerk_a)
    # 200 float + 198 cash sale − 99 cash refund + 10 in; the card and the 2.00 change are not drawer money.
    assert shifts.shift_expected_cash(shift_a) == D("309.00")
    report = shifts.shift_z_report(shift_a)
    assert {t.tender: t.amount for t in report.payments} == {"cash": D("198.00"), "unionpay_card": D("249.00")}
    assert {t.tender: t.amount for t in report.refunds} == {"cash": D("99.00")}
    assert report.net_total == D("348.00")


def test_close_with_a_count_records_over_short_and_the_z_report(client_a, store_a, clerk_a, stocked, shift_a):
    shirt, _ = stocked
    pos_sale(store_a, clerk_a, shirt)  # 99 cash: 299.00 expected
    counts = {"count_100": "2", "count_50": "1", "count_20": "2", "count_5": "1", "count_1": "3",
              "count_0.5": "1", "count_0.1": "2"}  # 200 + 50 + 40 + 5 + 3 + 0.5 + 0.2 = 298.70
    response = client_a.post(reverse("pos:shift_close"), counts)
    shift_a.refresh_from_db()
    assert response["Location"] == reverse("pos:shift_report", args=[shift_a.pk])
    assert shift_a.status == "closed"
    assert (shift_a.expected_cash, shift_a.counted_cash, shift_a.over_short) == (D("299.00"), D("298.70"),
                                                                                 D("-0.30"))
    assert shift_a.denominations["100"] == 2 and shift_a.denominations["10"] == 0
    # The closed drawer adds up on its own: float + signed movements = expected.
    moves = sum((m.signed_amount for m in shift_a.movements.all()), D("0"))
    assert shift_a.opening_float + moves == shift_a.expected_cash
    html = client_a.get(response["Location"]).content.decode()
    assert "Z 报表" in html and "短款" in html and 'data-testid="over-short">¥0.30<' in html and "¥298.70" in html


def test_close_refuses_bad_counts(client_a, shift_a):
    response = client_a.post(reverse("pos:shift_close"), {"count_100": "-1"})
    assert response.status_code == 422
    shift_a.refresh_from_db()
    assert shift_a.status == "open"
    with pytest.raises(Exception) as exc:
        shifts.shift_close(shift=shift_a, actor=shift_a.opened_by, counts={"200": 1})
    assert exc.value.code == "invalid_count"


def test_nothing_to_close_without_a_shift(client_a, store_a):
    response = client_a.post(reverse("pos:shift_close"), {"count_100": "1"})
    assert response.status_code == 422
    with pytest.raises(ShiftNotOpen):
        with transaction.atomic():
            shifts.shift_hold(store_a)


def test_a_sale_after_the_close_lands_in_no_shift(store_a, clerk_a, stocked, shift_a):
    shifts.shift_close(shift=shift_a, actor=clerk_a, counts={"100": 2})
    from pos.basket import Basket, basket_add
    from pos.services import PaymentIn, pos_checkout

    basket, _ = basket_add(Basket.new(), store_a, stocked[0].barcode)
    with pytest.raises(ShiftNotOpen):
        pos_checkout(store=store_a, actor=clerk_a, client_uuid=basket.uuid, basket=basket,
                     payment=PaymentIn(cash_tendered=D("99")))


@pytest.mark.django_db(transaction=True)
def test_closing_waits_for_a_sale_in_flight(store_a, clerk_a, stocked):
    """A sale holds the shift FOR SHARE: the close (FOR UPDATE) waits, and counts the sale's cash."""
    shirt, _ = stocked
    shift = shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("0"))
    holding, closed = threading.Event(), []

    def sell():
        try:
            with transaction.atomic():
                shifts.shift_hold(store_a)
                holding.set()
                time.sleep(0.5)
                pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(shirt.id, 1)],
                                tenders=[TenderIn("cash", D("99.00"))], actor=clerk_a)
        finally:
            connection.close()

    def close():
        try:
            holding.wait(5)
            closed.append(shifts.shift_close(shift=shift, actor=clerk_a, counts={"50": 2}))
        finally:
            connection.close()

    threads = [threading.Thread(target=sell), threading.Thread(target=close)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert closed[0].expected_cash == D("99.00") and closed[0].over_short == D("1.00")


def test_another_stores_shift_report_is_not_found(client_a, shift_b):
    assert client_a.get(reverse("pos:shift_report", args=[shift_b.pk])).status_code == 404


def test_x_report_of_the_open_shift(client_a, store_a, clerk_a, stocked, shift_a):
    pos_sale(store_a, clerk_a, stocked[0])
    html = client_a.get(reverse("pos:shift_report", args=[shift_a.pk])).content.decode()
    assert "X 报表" in html and "¥299.00" in html  # expected so far
    html = login(clerk_a).get(reverse("pos:shift")).content.decode()
    assert "¥299.00" in html
