"""refund_create, refund_complete, refunds_allocate."""

from decimal import Decimal

import pytest

from o2o.models import OutboxMessage
from payments import selectors, services
from payments.exceptions import (
    DuplicateTransaction,
    InvalidAmount,
    InvalidPaymentInput,
    OverRefund,
    PaymentNotCaptured,
    PaymentNotFound,
    RefundNotFound,
    RefundNotPending,
)
from payments.models import Payment, Refund, Tender
from payments.tests.conftest import assert_ledgers_clean, ledger_state, topics


def sandbox_captured(reference="SO1", amount="100.00", txn="T1"):
    payment = services.payment_create(reference=reference, tender=Tender.SANDBOX, amount=amount)
    payment, _ = services.payment_capture(provider="sandbox", provider_txn_id=txn, reference=payment.number,
                                          amount=amount)
    return payment


@pytest.fixture
def cash(db):
    return services.payment_create(reference="SO1", tender=Tender.CASH, amount="100.00")


@pytest.mark.django_db
def test_a_cash_refund_succeeds_at_once(cash, store_b, clerk):
    refund = services.refund_create(payment=cash, amount="30.00", reason="size exchange", actor=clerk,
                                    store=store_b, policy="returned at another store")

    cash.refresh_from_db()
    assert (refund.status, refund.method, refund.store, refund.created_by) == (
        Refund.Status.SUCCEEDED, Refund.Method.ORIGINAL, store_b, clerk)
    assert refund.completed_at is not None and refund.policy_note == "returned at another store"
    assert (cash.refunded_amount, cash.refunding_amount, cash.refundable_amount) == (
        Decimal("30.00"), Decimal("0.00"), Decimal("70.00"))
    message = OutboxMessage.objects.filter(topic="refund.succeeded").get()
    assert message.payload["reference"] == "SO1" and message.payload["amount"] == "30.00"
    assert message.payload["payment_refunded_amount"] == "30.00"
    assert_ledgers_clean()


@pytest.mark.django_db
def test_refunds_up_to_the_amount_then_over_refund_is_refused(cash):
    services.refund_create(payment=cash, amount="60.00", reason="r1")
    services.refund_create(payment=cash.pk, amount="40.00", reason="r2")
    before = ledger_state()

    with pytest.raises(OverRefund) as exc:
        services.refund_create(payment=cash, amount="0.01", reason="r3")

    assert exc.value.code == "over_refund" and exc.value.params["refundable"] == Decimal("0.00")
    assert ledger_state() == before
    assert_ledgers_clean()


@pytest.mark.django_db
def test_a_provider_refund_is_pending_and_requested_through_the_outbox():
    payment = sandbox_captured()

    refund = services.refund_create(payment=payment, amount="40.00", reason="return")

    payment.refresh_from_db()
    assert refund.status == Refund.Status.PENDING and refund.completed_at is None
    assert (payment.refunded_amount, payment.refunding_amount) == (Decimal("0.00"), Decimal("40.00"))
    message = OutboxMessage.objects.get(topic=services.TOPIC_REFUND_REQUESTED)
    assert message.payload == {"refund_id": refund.pk}
    assert "refund.succeeded" not in topics()
    assert_ledgers_clean()


@pytest.mark.django_db
def test_pending_refunds_count_against_what_is_refundable():
    payment = sandbox_captured()
    services.refund_create(payment=payment, amount="80.00", reason="return")
    before = ledger_state()
    with pytest.raises(OverRefund):
        services.refund_create(payment=payment, amount="20.01", reason="again")
    assert ledger_state() == before


@pytest.mark.django_db
def test_refund_complete_success_moves_pending_to_refunded_once():
    payment = sandbox_captured()
    refund = services.refund_create(payment=payment, amount="40.00", reason="return")

    done = services.refund_complete(refund=refund, provider_refund_id="R-1", success=True)
    again = services.refund_complete(refund=refund.pk, provider_refund_id="R-1", success=True)

    payment.refresh_from_db()
    assert (done.status, again.status, done.provider_refund_id) == (Refund.Status.SUCCEEDED,) * 2 + ("R-1",)
    assert (payment.refunded_amount, payment.refunding_amount) == (Decimal("40.00"), Decimal("0.00"))
    assert topics().count("refund.succeeded") == 1
    assert_ledgers_clean()


@pytest.mark.django_db
def test_refund_complete_failure_makes_the_amount_refundable_again(store_a):
    payment = sandbox_captured()
    refund = services.refund_create(payment=payment, amount="100.00", reason="return")

    failed = services.refund_complete(refund=refund, provider_refund_id="", success=False,
                                      failure="NOTENOUGH")

    payment.refresh_from_db()
    assert (failed.status, failed.failure, failed.provider_refund_id) == (
        Refund.Status.FAILED, "NOTENOUGH", None)
    assert (payment.refunded_amount, payment.refunding_amount) == (Decimal("0.00"), Decimal("0.00"))
    assert "refund.failed" in topics()
    services.refund_create(payment=payment, amount="100.00", reason="retry", method=Refund.Method.CASH,
                           store=store_a)
    assert_ledgers_clean()


@pytest.mark.django_db
def test_refund_complete_refuses_a_contradicting_answer_and_bad_input(cash):
    payment = sandbox_captured()
    refund = services.refund_create(payment=payment, amount="10.00", reason="return")
    other = services.refund_create(payment=payment, amount="10.00", reason="return")
    services.refund_complete(refund=refund, provider_refund_id="R-1", success=True)
    immediate = services.refund_create(payment=cash, amount="1.00", reason="return")
    before = ledger_state()

    with pytest.raises(RefundNotPending):
        services.refund_complete(refund=refund, provider_refund_id="", success=False)
    with pytest.raises(RefundNotPending):
        services.refund_complete(refund=refund, provider_refund_id="R-2", success=True)
    with pytest.raises(RefundNotPending):
        services.refund_complete(refund=immediate, provider_refund_id="X", success=True)
    with pytest.raises(DuplicateTransaction):
        services.refund_complete(refund=other, provider_refund_id="R-1", success=True)
    with pytest.raises(InvalidPaymentInput):
        services.refund_complete(refund=other, provider_refund_id="", success=True)
    with pytest.raises(RefundNotFound):
        services.refund_complete(refund=999999, provider_refund_id="R-9", success=True)
    assert ledger_state() == before


@pytest.mark.django_db
def test_an_online_payment_refunded_in_cash_at_a_store(store_a, clerk):
    payment = sandbox_captured()

    refund = services.refund_create(payment=payment, amount="100.00", reason="return at counter", actor=clerk,
                                    store=store_a, method=Refund.Method.CASH,
                                    policy="refunded in cash at store with manager approval")

    payment.refresh_from_db()
    assert (refund.status, refund.method, payment.refunded_amount) == (
        Refund.Status.SUCCEEDED, Refund.Method.CASH, Decimal("100.00"))
    assert services.TOPIC_REFUND_REQUESTED not in topics()
    assert_ledgers_clean()


@pytest.mark.django_db
@pytest.mark.parametrize("kwargs,error,code", [
    ({"amount": "0"}, InvalidAmount, "invalid_amount"),
    ({"amount": "-1"}, InvalidAmount, "invalid_amount"),
    ({"amount": "1.234"}, InvalidAmount, "invalid_amount"),
    ({"amount": 1.5}, InvalidAmount, "invalid_amount"),
    ({"reason": "  "}, InvalidPaymentInput, "invalid_reason"),
    ({"reason": "x" * 201}, InvalidPaymentInput, "invalid_reason"),
    ({"policy": "x" * 301}, InvalidPaymentInput, "invalid_policy"),
    ({"method": "wire"}, InvalidPaymentInput, "invalid_method"),
    ({"method": "cash"}, InvalidPaymentInput, "store_required"),
    ({"amount": "100.01"}, OverRefund, "over_refund"),
    ({"payment": 999999}, PaymentNotFound, "payment_not_found"),
])
def test_bad_refund_requests_change_nothing(cash, kwargs, error, code):
    before = ledger_state()
    with pytest.raises(error) as exc:
        services.refund_create(**{"payment": cash, "amount": "10.00", "reason": "r", **kwargs})
    assert exc.value.code == code
    assert ledger_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("close", ["pending", "cancelled", "failed"])
def test_only_captured_payments_are_refunded(close):
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")
    if close == "cancelled":
        services.payment_cancel(payment=payment, actor=None)
    elif close == "failed":
        Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED)
    before = ledger_state()
    with pytest.raises(PaymentNotCaptured) as exc:
        services.refund_create(payment=payment, amount="1.00", reason="r")
    assert exc.value.code == "payment_not_captured"
    assert ledger_state() == before


# --- refunds_allocate ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_allocation_gives_back_provider_tenders_first_and_cash_last():
    cash = services.payment_create(reference="SO1", tender=Tender.CASH, amount="50.00")
    card = services.payment_create(reference="SO1", tender=Tender.UNIONPAY_CARD, amount="30.00",
                                   card_reference="998877")
    online = sandbox_captured(reference="SO1", amount="20.00")
    services.payment_create(reference="SO2", tender=Tender.CASH, amount="500.00")

    plan = services.refunds_allocate(reference="SO1", amount="60.00")

    assert [(p.pk, part) for p, part in plan] == [(online.pk, Decimal("20.00")), (card.pk, Decimal("30.00")),
                                                  (cash.pk, Decimal("10.00"))]


@pytest.mark.django_db
def test_allocation_prefers_the_latest_capture_and_skips_what_was_refunded():
    first = sandbox_captured(reference="SO1", amount="40.00", txn="T1")
    second = sandbox_captured(reference="SO1", amount="40.00", txn="T2")
    services.refund_create(payment=second, amount="30.00", reason="partial")

    plan = services.refunds_allocate(reference="SO1", amount="45.00")

    assert [(p.pk, part) for p, part in plan] == [(second.pk, Decimal("10.00")), (first.pk, Decimal("35.00"))]
    for payment, part in plan:
        services.refund_create(payment=payment, amount=part, reason="return")
    assert selectors.reference_totals(reference="SO1").refunding == Decimal("75.00")
    with pytest.raises(OverRefund):
        services.refunds_allocate(reference="SO1", amount="5.01")
    assert_ledgers_clean()


@pytest.mark.django_db
def test_allocation_refuses_more_than_the_reference_holds():
    services.payment_create(reference="SO1", tender=Tender.CASH, amount="10.00")
    services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")  # pending: not refundable
    with pytest.raises(OverRefund) as exc:
        services.refunds_allocate(reference="SO1", amount="10.01")
    assert exc.value.params["refundable"] == Decimal("10.00")
    with pytest.raises(InvalidAmount):
        services.refunds_allocate(reference="SO1", amount="0")


@pytest.mark.django_db
def test_reference_totals_give_what_the_order_kept():
    cash = services.payment_create(reference="SO1", tender=Tender.CASH, amount="60.00")
    sandbox_captured(reference="SO1", amount="40.00")
    services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="99.00")
    services.refund_create(payment=cash, amount="15.50", reason="r")

    totals = selectors.reference_totals(reference="SO1")

    assert (totals.captured, totals.refunded, totals.net) == (Decimal("100.00"), Decimal("15.50"),
                                                              Decimal("84.50"))
    assert selectors.reference_totals(reference="none").net == Decimal("0.00")
