"""Shift hand-over (交班) through the shift page: the next clerk signs in, the drawer goes on."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from orders.models import Order
from payments import audits, shifts
from payments.models import PosShift, ShiftHandover
from payments.shifts import shift_expected_cash
from payments.tests.conftest import assert_ledgers_clean
from stores.models import Role
from stores.tests.factories import StaffFactory

from .conftest import htmx
from .test_parking import sale_uuid, scan

pytestmark = pytest.mark.django_db


@pytest.fixture
def colleague_a(store_a):
    return StaffFactory(role=Role.CLERK, store=store_a, display_name="王磊").user


def sell(client, sku, cash):
    uid = sale_uuid(client)
    scan(client, sku.barcode)
    htmx(client, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": cash})
    return Order.objects.get(client_uuid=uid)


def hand_over(client, user, password="pass-1234", counted=""):
    return client.post(reverse("pos:shift_handover"), {"username": user.username, "password": password,
                                                      "counted_cash": counted})


def test_hand_over_records_the_drawer_and_later_sales_are_the_new_clerks(client_a, stocked, shift_a, clerk_a,
                                                                         colleague_a):
    shirt, jeans = stocked
    before = sell(client_a, shirt, "100")
    assert before.created_by == clerk_a

    response = hand_over(client_a, colleague_a, counted="297.50")

    assert response.status_code == 302 and response["Location"] == reverse("pos:shift")
    handover = ShiftHandover.objects.get(shift=shift_a)
    assert handover.from_user == clerk_a and handover.to_user == colleague_a
    assert handover.expected_cash == Decimal("299.00")  # float 200 + the cash sale 99
    assert handover.counted_cash == Decimal("297.50") and handover.difference == Decimal("-1.50")
    shift_a.refresh_from_db()
    assert shift_a.status == PosShift.Status.OPEN and shift_a.counted_cash is None  # the drawer goes on

    # The same till is signed in as the incoming clerk: their sales are theirs, in the same shift.
    after = sell(client_a, jeans, "250")
    assert after.created_by == colleague_a
    assert shift_expected_cash(shift_a) == Decimal("548.00")
    page = client_a.get(reverse("pos:shift")).content.decode()
    assert 'data-testid="handovers"' in page and "张伟" in page and "王磊" in page and "¥299.00" in page

    closed = client_a.post(reverse("pos:shift_close"), {"count_100": "5", "count_20": "2", "count_5": "1",
                                                        "count_1": "3"})
    report = client_a.get(closed["Location"]).content.decode()
    handovers = report[report.index('data-testid="handovers"'):]
    assert "¥299.00" in handovers and "¥297.50" in handovers and "¥-1.50" in handovers
    by_clerk = report[report.index('data-testid="sales-by-clerk"'):]
    by_clerk = by_clerk[:by_clerk.index("</table>")]
    assert "张伟</td><td class=\"num\">1</td><td class=\"num\">¥99.00" in by_clerk
    assert "王磊</td><td class=\"num\">1</td><td class=\"num\">¥249.00" in by_clerk


def test_a_wrong_password_hands_over_nothing(client_a, stocked, shift_a, clerk_a, colleague_a):
    response = hand_over(client_a, colleague_a, password="wrong")
    assert response.status_code == 422
    assert not ShiftHandover.objects.exists()
    # Still the outgoing clerk at the till.
    assert sell(client_a, stocked[0], "100").created_by == clerk_a


def test_the_incoming_clerk_must_be_staff_of_the_store_and_someone_else(client_a, stocked, shift_a, clerk_a,
                                                                        clerk_b):
    other_store = hand_over(client_a, clerk_b)
    to_self = hand_over(client_a, clerk_a)
    assert other_store.status_code == 422 and "这位店员不是本店员工。" in other_store.content.decode()
    assert to_self.status_code == 422 and "请交班给本店的另一位店员。" in to_self.content.decode()
    assert not ShiftHandover.objects.exists()


def test_a_negative_count_is_refused(client_a, stocked, shift_a, colleague_a):
    response = hand_over(client_a, colleague_a, counted="-5")
    assert response.status_code == 422
    assert not ShiftHandover.objects.exists()


def test_no_hand_over_without_an_open_shift(client_a, stocked, colleague_a):
    response = hand_over(client_a, colleague_a)
    assert response.status_code == 422
    assert not ShiftHandover.objects.exists()


def test_audit_ledgers_checks_the_hand_over_figure(client_a, stocked, shift_a, clerk_a, colleague_a):
    sell(client_a, stocked[0], "100")
    shifts.shift_cash_move(shift=shift_a, kind="out", amount=Decimal("50.00"), reason="存入保险柜", actor=clerk_a)
    assert hand_over(client_a, colleague_a).status_code == 302
    assert ShiftHandover.objects.get().expected_cash == Decimal("249.00")
    assert_ledgers_clean()

    # Planted: the record says more cash than the drawer's ledger can account for.
    ShiftHandover.objects.update(expected_cash=Decimal("349.00"))

    found = list(audits.handover_expected_cash_adds_up())
    assert len(found) == 1 and "349.00" in found[0] and "249.00" in found[0]
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=io.StringIO())
