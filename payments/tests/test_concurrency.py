"""Real threads on real PostgreSQL: the same notification at once, refunds racing for the last yuan."""

from decimal import Decimal

import pytest

from o2o.models import OutboxMessage
from payments import services
from payments.exceptions import OverRefund, PaymentNotPending
from payments.models import Payment, PaymentNotification, Refund, Tender
from payments.providers.sandbox import sandbox_notification
from payments.tests.conftest import assert_ledgers_clean
from tests.concurrency import run_at_once

THREADS = 10


@pytest.mark.django_db(transaction=True)
def test_the_same_notification_delivered_at_once_is_applied_once():
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="66.60")
    headers, body = sandbox_notification(payment)

    def deliver():
        return services.notification_handle(provider="sandbox", headers=headers, body=body)

    results = run_at_once([deliver] * THREADS)

    outcomes = sorted(r.outcome for r in results)
    Outcome = PaymentNotification.Outcome
    assert outcomes == [Outcome.APPLIED] + [Outcome.DUPLICATE] * (THREADS - 1)
    assert sum(r.applied for r in results) == 1 and all(r.captured for r in results)
    assert PaymentNotification.objects.count() == THREADS
    assert OutboxMessage.objects.filter(topic="payment.captured").count() == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    assert_ledgers_clean()


@pytest.mark.django_db(transaction=True)
def test_capture_and_cancel_at_once_capture_exactly_once():
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")
    headers, body = sandbox_notification(payment)

    def deliver():
        return services.notification_handle(provider="sandbox", headers=headers, body=body)

    def cancel():
        return services.payment_cancel(payment=payment.pk, actor=None)

    results = run_at_once([deliver, cancel] * (THREADS // 2))

    # Whichever wins the lock, the provider's money ends on the books exactly once.
    payment.refresh_from_db()
    cancels = [r for r in results if isinstance(r, Payment)]
    refused = [r for r in results if isinstance(r, PaymentNotPending)]
    notes = [r for r in results if isinstance(r, services.NotificationResult)]
    assert len(cancels) <= 1 and len(cancels) + len(refused) == THREADS // 2
    assert payment.status == Payment.Status.CAPTURED
    assert sorted(n.outcome for n in notes) == [PaymentNotification.Outcome.APPLIED] + [
        PaymentNotification.Outcome.DUPLICATE] * (THREADS // 2 - 1)
    assert [n.late for n in notes if n.applied] == [bool(cancels)]
    assert OutboxMessage.objects.filter(topic="payment.captured").count() == 1
    assert_ledgers_clean()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tender", [Tender.CASH, Tender.SANDBOX])
def test_refunds_racing_for_the_last_refundable_amount_one_wins(tender):
    payment = services.payment_create(reference="SO1", tender=tender, amount="100.00")
    if tender == Tender.SANDBOX:
        payment, _ = services.payment_capture(provider="sandbox", provider_txn_id="T1",
                                              reference=payment.number, amount="100.00")
    services.refund_create(payment=payment, amount="60.00", reason="first return")

    results = run_at_once([lambda: services.refund_create(payment=payment.pk, amount="40.00", reason="race")]
                          * THREADS)

    refunds = [r for r in results if isinstance(r, Refund)]
    refused = [r for r in results if isinstance(r, OverRefund)]
    assert (len(refunds), len(refused)) == (1, THREADS - 1)
    payment.refresh_from_db()
    assert payment.refunded_amount + payment.refunding_amount == Decimal("100.00")
    assert Refund.objects.filter(payment=payment).count() == 2
    assert_ledgers_clean()
