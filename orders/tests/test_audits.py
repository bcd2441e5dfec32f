"""The order ledger audits find money an order keeps beyond what it is due and pickup codes held twice."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import F
from django.utils import timezone

from orders import audits
from orders.models import PICKUP_CODE_OPEN_ONCE, Channel, Fulfillment, Order, Status
from orders.services import LineIn, order_place
from payments.models import Refund, Tender
from payments.tests.factories import PaymentFactory, RefundFactory

pytestmark = pytest.mark.django_db


def _order(store, skus, **fields) -> Order:
    order = order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store,
                        lines=[LineIn(skus[0].id, 1)]).order
    Order.objects.filter(pk=order.pk).update(**fields)
    order.refresh_from_db()
    return order


def _captured(order, amount, **fields):
    return PaymentFactory(reference=order.number, tender=Tender.SANDBOX, provider="sandbox", amount=amount,
                          **fields)


def _fails() -> None:
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=io.StringIO())


def test_a_paid_order_captured_twice_and_never_refunded_fails_the_audit(stocked, store_a):
    order = _order(store_a, stocked, status=Status.PAID, paid_at=timezone.now(),
                   paid_total=F("total"))
    _captured(order, order.total)
    call_command("audit_ledgers", stdout=io.StringIO())  # one capture: clean

    _captured(order, order.total)

    assert [v for v in audits.orders_keep_at_most_their_due() if order.number in v]
    _fails()


def test_a_second_capture_refunded_as_an_overpayment_audits_clean(stocked, store_a):
    order = _order(store_a, stocked, status=Status.PAID, paid_at=timezone.now(),
                   paid_total=F("total"))
    _captured(order, order.total)
    second = _captured(order, order.total, refunded_amount=order.total)
    RefundFactory(payment=second, amount=order.total, overpayment=True)
    call_command("audit_ledgers", stdout=io.StringIO())

    # The same refund not marked as an overpayment would be an ordinary refund the order never recorded
    Refund.objects.filter(payment=second).update(overpayment=False)
    _fails()


def test_a_capture_kept_on_an_unpaid_cancelled_order_fails_the_audit(stocked, store_a):
    order = _order(store_a, stocked, status=Status.CANCELLED)
    _captured(order, order.total)

    assert [v for v in audits.orders_keep_at_most_their_due() if order.number in v] == [
        f"order {order.number} (cancelled): keeps {order.total} but is due 0"]
    _fails()


def test_two_open_orders_holding_one_pickup_code_fail_the_audit(stocked, store_a):
    first = _order(store_a, stocked)
    second = _order(store_a, stocked, status=Status.PICKED_UP)
    Order.objects.filter(pk=second.pk).update(pickup_code=first.pickup_code)
    call_command("audit_ledgers", stdout=io.StringIO())  # a closed order's code may be reused

    with connection.cursor() as cur:  # the bad state the database now refuses, planted past it
        cur.execute(f"DROP INDEX {PICKUP_CODE_OPEN_ONCE}")
    Order.objects.filter(pk=second.pk).update(status=Status.READY_FOR_PICKUP)

    assert list(audits.pickup_codes_open_once()) == [
        f"pickup code {first.pickup_code} is held by open orders {first.number}, {second.number}"]
    _fails()
