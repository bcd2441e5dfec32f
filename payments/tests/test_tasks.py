"""Provider refunds after commit.

outbox consumer -> task -> adapter (outside any transaction) -> refund_complete.
"""

from decimal import Decimal

import pytest

from o2o.models import OutboxMessage
from o2o.outbox import outbox_dispatch
from payments import services, tasks
from payments.exceptions import RefundNotFound
from payments.models import Payment, Refund, Tender
from payments.providers.base import RefundResult, RefundStatus
from payments.providers.sandbox import SandboxProvider
from payments.tests.conftest import assert_ledgers_clean


@pytest.fixture
def queued(monkeypatch):
    ids = []
    monkeypatch.setattr(tasks.refund_process, "apply_async", lambda args, **kwargs: ids.append(args[0]))
    return ids


def pending_refund(amount="40.00"):
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="100.00")
    payment, _ = services.payment_capture(provider="sandbox", provider_txn_id="T1", reference=payment.number,
                                          amount="100.00")
    return services.refund_create(payment=payment, amount=amount, reason="return")


@pytest.mark.django_db(transaction=True)
def test_the_outbox_consumer_queues_the_refund_and_the_task_completes_it_once(queued):
    refund = pending_refund()
    message = OutboxMessage.objects.get(topic=services.TOPIC_REFUND_REQUESTED)

    assert outbox_dispatch(message_id=message.pk) >= 1
    assert queued == [refund.pk]
    assert tasks.refund_process(refund.pk) == Refund.Status.SUCCEEDED
    outbox_dispatch(message_id=message.pk)  # redelivered: the consumer does not run again
    assert tasks.refund_process(refund.pk) == Refund.Status.SUCCEEDED

    refund.refresh_from_db()
    payment = Payment.objects.get()
    assert queued == [refund.pk]
    assert (refund.status, refund.provider_refund_id) == (Refund.Status.SUCCEEDED, f"SBXR{refund.number}")
    assert (payment.refunded_amount, payment.refunding_amount) == (Decimal("40.00"), Decimal("0.00"))
    assert OutboxMessage.objects.filter(topic="refund.succeeded").count() == 1
    assert_ledgers_clean()


@pytest.mark.django_db(transaction=True)
def test_a_refused_provider_refund_fails_and_frees_the_amount(monkeypatch):
    refund = pending_refund("100.00")
    monkeypatch.setattr(SandboxProvider, "refund",
                        lambda self, r: RefundResult(status=RefundStatus.FAILED, message="account closed"))

    services.refund_process(refund_id=refund.pk)

    refund.refresh_from_db()
    payment = Payment.objects.get()
    assert (refund.status, refund.failure) == (Refund.Status.FAILED, "account closed")
    assert (payment.refunded_amount, payment.refunding_amount) == (Decimal("0.00"), Decimal("0.00"))
    assert OutboxMessage.objects.filter(topic="refund.failed").count() == 1
    assert_ledgers_clean()


@pytest.mark.django_db(transaction=True)
def test_a_refund_still_processing_stays_pending_and_is_resumed_later(monkeypatch, queued):
    refund = pending_refund()
    monkeypatch.setattr(SandboxProvider, "refund", lambda self, r: RefundResult(status=RefundStatus.PENDING))

    assert services.refund_process(refund_id=refund.pk).status == Refund.Status.PENDING
    assert tasks.refunds_resume(older_than_minutes=60) == 0
    assert tasks.refunds_resume(older_than_minutes=0) == 1
    assert queued == [refund.pk]
    assert_ledgers_clean()


@pytest.mark.django_db(transaction=True)
def test_a_transport_error_leaves_the_refund_pending(monkeypatch):
    refund = pending_refund()

    def unreachable(self, r):
        raise ConnectionError("provider unreachable")

    monkeypatch.setattr(SandboxProvider, "refund", unreachable)
    with pytest.raises(ConnectionError):
        services.refund_process(refund_id=refund.pk)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.PENDING
    assert_ledgers_clean()


@pytest.mark.django_db(transaction=True)
def test_refund_process_needs_a_known_refund():
    with pytest.raises(RefundNotFound):
        services.refund_process(refund_id=999999)


@pytest.mark.django_db
def test_refund_process_refuses_to_call_a_provider_inside_a_transaction():
    refund = pending_refund()
    with pytest.raises(RuntimeError):
        services.refund_process(refund_id=refund.pk)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.PENDING
