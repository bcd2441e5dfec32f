"""payment_create, payment_capture, payment_cancel, payment_provider_start."""

from decimal import Decimal

import pytest

from o2o.models import OutboxMessage
from payments import services
from payments.exceptions import (
    AmountMismatch,
    DuplicateTransaction,
    InvalidAmount,
    InvalidPaymentInput,
    PaymentNotFound,
    PaymentNotPending,
    ProviderNotConfigured,
    UnknownProvider,
    UnknownTender,
)
from payments.models import Payment, Tender
from payments.tests.conftest import assert_ledgers_clean, ledger_state, topics


@pytest.mark.django_db
def test_cash_is_captured_at_once_and_announced(store_a, clerk):
    payment = services.payment_create(reference="SO1", tender=Tender.CASH, amount=Decimal("99.90"),
                                      store=store_a, actor=clerk)

    assert (payment.status, payment.amount, payment.store, payment.created_by) == (
        Payment.Status.CAPTURED, Decimal("99.90"), store_a, clerk)
    assert payment.captured_at is not None and payment.provider_txn_id is None
    message = OutboxMessage.objects.get(topic="payment.captured")
    assert message.payload["reference"] == "SO1" and message.payload["amount"] == "99.90"
    assert message.key == "order:SO1"
    assert_ledgers_clean()


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [12, "12.3", Decimal("12.30"), " 12.30 "])
def test_amount_accepts_int_str_and_decimal_in_fen(amount):
    payment = services.payment_create(reference="SO1", tender=Tender.CASH, amount=amount)
    payment.refresh_from_db()
    assert payment.amount == Decimal(str(amount).strip())


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [0, -1, "0.00", "-5", "1.001", Decimal("0.005"), 1.5, "abc", "NaN",
                                    "Infinity", Decimal("1e10"), True, None, ""])
def test_bad_amount_is_refused_and_changes_nothing(amount):
    before = ledger_state()
    with pytest.raises(InvalidAmount) as exc:
        services.payment_create(reference="SO1", tender=Tender.CASH, amount=amount)
    assert exc.value.code == "invalid_amount"
    assert ledger_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("tender", ["gift_card", "", None, "CASH"])
def test_unknown_tender_is_refused_and_changes_nothing(tender):
    before = ledger_state()
    with pytest.raises(UnknownTender) as exc:
        services.payment_create(reference="SO1", tender=tender, amount="1.00")
    assert exc.value.code == "unknown_tender"
    assert ledger_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("reference", ["", "   ", "x" * 65, None])
def test_reference_is_required(reference):
    before = ledger_state()
    with pytest.raises(InvalidPaymentInput) as exc:
        services.payment_create(reference=reference, tender=Tender.CASH, amount="1.00")
    assert exc.value.code == "invalid_reference"
    assert ledger_state() == before


@pytest.mark.django_db
def test_card_payment_keeps_the_slip_reference_and_a_slip_applies_once(store_a):
    payment = services.payment_create(reference="SO1", tender=Tender.UNIONPAY_CARD, amount="50.00",
                                      store=store_a, card_reference=" 123456789012 ")
    assert (payment.status, payment.provider, payment.provider_txn_id) == (
        Payment.Status.CAPTURED, "unionpay", "123456789012")

    before = ledger_state()
    with pytest.raises(DuplicateTransaction) as exc:
        services.payment_create(reference="SO2", tender=Tender.UNIONPAY_CARD, amount="50.00",
                                card_reference="123456789012")
    assert exc.value.code == "duplicate_transaction"
    assert ledger_state() == before


@pytest.mark.django_db
def test_card_payment_needs_a_reference_and_other_tenders_refuse_one():
    before = ledger_state()
    with pytest.raises(InvalidPaymentInput) as exc:
        services.payment_create(reference="SO1", tender=Tender.UNIONPAY_CARD, amount="50.00")
    assert exc.value.code == "card_reference_required"
    with pytest.raises(InvalidPaymentInput) as exc:
        services.payment_create(reference="SO1", tender=Tender.CASH, amount="50.00", card_reference="1234")
    assert exc.value.code == "card_reference_not_allowed"
    assert ledger_state() == before


@pytest.mark.django_db
def test_sandbox_payment_is_pending_with_an_offline_payment_code():
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="12.34")

    assert (payment.status, payment.provider, payment.captured_at) == (
        Payment.Status.PENDING, "sandbox", None)
    assert payment.payment_code == f"o2o-sandbox://pay?out_trade_no={payment.number}&total_fen=1234"
    assert topics() == []
    assert payment.number.startswith("PY") and payment.number != payment.reference


@pytest.mark.django_db
def test_split_tender_gives_one_reference_several_payments():
    services.payment_create(reference="SO1", tender=Tender.CASH, amount="30.00")
    services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="70.00")
    tenders = Payment.objects.filter(reference="SO1").values_list("tender", flat=True)
    assert sorted(tenders) == ["cash", "sandbox"]


@pytest.mark.django_db
def test_cash_on_delivery_waits_for_the_courier_then_captures_once():
    payment = services.payment_create(reference="SO9", tender=Tender.CASH_ON_DELIVERY, amount="199.00")
    assert payment.status == Payment.Status.PENDING

    captured, applied = services.payment_capture(provider="cod", provider_txn_id="SF1234567890",
                                                 reference="SO9", amount="199.00")
    again, applied_again = services.payment_capture(provider="cod", provider_txn_id="SF1234567890",
                                                    reference="SO9", amount="199.00")

    assert (captured.pk, applied, captured.status) == (payment.pk, True, Payment.Status.CAPTURED)
    assert (again.pk, applied_again) == (payment.pk, False)
    assert topics() == ["payment.captured"]
    assert_ledgers_clean()


@pytest.mark.django_db
def test_capture_by_payment_number_applies_exactly_once():
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")

    first = services.payment_capture(provider="sandbox", provider_txn_id="T1", reference=payment.number,
                                     amount="10.00")
    second = services.payment_capture(provider="sandbox", provider_txn_id="T1", reference=payment.number,
                                      amount=Decimal("10"))

    assert (first[1], second[1]) == (True, False)
    payment.refresh_from_db()
    assert (payment.status, payment.provider_txn_id) == (Payment.Status.CAPTURED, "T1")
    assert topics() == ["payment.captured"]


@pytest.mark.django_db
def test_capture_with_another_amount_is_refused_and_changes_nothing():
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")
    before = ledger_state()
    with pytest.raises(AmountMismatch) as exc:
        services.payment_capture(provider="sandbox", provider_txn_id="T1", reference=payment.number,
                                 amount="10.01")
    assert exc.value.code == "amount_mismatch"
    assert ledger_state() == before


@pytest.mark.django_db
def test_a_replayed_transaction_with_another_amount_is_refused():
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")
    services.payment_capture(provider="sandbox", provider_txn_id="T1", reference=payment.number,
                             amount="10.00")
    before = ledger_state()
    with pytest.raises(AmountMismatch):
        services.payment_capture(provider="sandbox", provider_txn_id="T1", reference=payment.number,
                                 amount="1.00")
    assert ledger_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("provider,reference", [("sandbox", "PY-nope"), ("wechat_pay", None), ("nope", None)])
def test_capture_of_an_unknown_payment_or_another_providers_payment_is_refused(provider, reference):
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")
    before = ledger_state()
    with pytest.raises(PaymentNotFound) as exc:
        services.payment_capture(provider=provider, provider_txn_id="T1",
                                 reference=reference or payment.number, amount="10.00")
    assert exc.value.code == "payment_not_found"
    assert ledger_state() == before


@pytest.mark.django_db
def test_a_second_transaction_for_a_captured_payment_is_refused():
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")
    services.payment_capture(provider="sandbox", provider_txn_id="T1", reference=payment.number,
                             amount="10.00")
    before = ledger_state()
    with pytest.raises(PaymentNotPending) as exc:
        services.payment_capture(provider="sandbox", provider_txn_id="T2", reference=payment.number,
                                 amount="10.00")
    assert exc.value.code == "payment_not_pending"
    assert ledger_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("kwargs,error", [
    ({"provider_txn_id": ""}, InvalidPaymentInput),
    ({"provider": ""}, InvalidPaymentInput),
    ({"provider_txn_id": "x" * 65}, InvalidPaymentInput),
    ({"amount": "0"}, InvalidAmount),
    ({"amount": 10.0}, InvalidAmount),
])
def test_capture_input_is_checked(kwargs, error):
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")
    before = ledger_state()
    with pytest.raises(error):
        services.payment_capture(**{"provider": "sandbox", "provider_txn_id": "T1",
                                    "reference": payment.number, "amount": "10.00", **kwargs})
    assert ledger_state() == before


@pytest.mark.django_db
def test_cancel_a_pending_payment_then_it_cannot_be_captured(clerk):
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")

    cancelled = services.payment_cancel(payment=payment, actor=clerk)

    assert (cancelled.status, cancelled.closed_by) == (Payment.Status.CANCELLED, clerk)
    assert topics() == ["payment.cancelled"]
    before = ledger_state()
    with pytest.raises(PaymentNotPending):
        services.payment_capture(provider="sandbox", provider_txn_id="T1", reference=payment.number,
                                 amount="10.00")
    with pytest.raises(PaymentNotPending):
        services.payment_cancel(payment=payment.pk, actor=clerk)
    assert ledger_state() == before


@pytest.mark.django_db
def test_cancel_refuses_captured_and_unknown_payments(clerk):
    payment = services.payment_create(reference="SO1", tender=Tender.CASH, amount="10.00")
    before = ledger_state()
    with pytest.raises(PaymentNotPending):
        services.payment_cancel(payment=payment, actor=clerk)
    with pytest.raises(PaymentNotFound):
        services.payment_cancel(payment=999999, actor=None)
    assert ledger_state() == before


@pytest.mark.django_db
def test_provider_start_refuses_to_run_inside_a_transaction():
    payment = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")
    with pytest.raises(RuntimeError):
        services.payment_provider_start(payment=payment)


@pytest.mark.django_db(transaction=True)
def test_provider_start_after_commit(settings):
    sandbox = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")
    wechat = services.payment_create(reference="SO1", tender=Tender.WECHAT_PAY, amount="10.00")
    cash = services.payment_create(reference="SO1", tender=Tender.CASH, amount="10.00")

    assert services.payment_provider_start(payment=sandbox.pk).payment_code == sandbox.payment_code
    assert wechat.payment_code == ""
    with pytest.raises(ProviderNotConfigured):
        services.payment_provider_start(payment=wechat)
    with pytest.raises(UnknownProvider):
        services.payment_provider_start(payment=cash)
    services.payment_capture(provider="sandbox", provider_txn_id="T1", reference=sandbox.number,
                             amount="10.00")
    with pytest.raises(PaymentNotPending):
        services.payment_provider_start(payment=sandbox)
    with pytest.raises(PaymentNotFound):
        services.payment_provider_start(payment=999999)
    wechat.refresh_from_db()
    assert wechat.payment_code == ""


@pytest.mark.django_db
def test_sandbox_can_be_switched_off(settings):
    settings.SANDBOX_PAY_ENABLED = False
    before = ledger_state()
    with pytest.raises(ProviderNotConfigured):
        services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="10.00")
    assert ledger_state() == before
