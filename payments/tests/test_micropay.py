"""Payment codes (付款码): code formats, the sandbox's scripted answers, the real adapters' refusal,
and the services that open, charge, record, take over and release a counter charge."""

import uuid
from decimal import Decimal

import pytest

from payments import micropay, services
from payments.exceptions import (
    InvalidPaymentCode,
    PaymentCodeMismatch,
    PaymentCodePending,
    PaymentDeclined,
    PaymentNotHeld,
    PaymentNotPending,
    ProviderNotConfigured,
)
from payments.models import Payment, Refund
from payments.providers import provider_named
from payments.providers.base import MicropayStatus, payment_code_wallet
from payments.tests.conftest import assert_ledgers_clean, topics
from stores.tests.factories import StoreFactory

D = Decimal
WECHAT, ALIPAY = "134567890123456789", "2812345678901234567890"


@pytest.mark.parametrize("code, wallet", [
    ("101234567890123456", "wechat_pay"), ("151234567890123456", "wechat_pay"),
    ("161234567890123456", None), ("13456789012345678", None),  # 17 digits
    ("2512345678901234", "alipay"), ("301234567890123456789012", "alipay"),
    ("311234567890123456", None), ("251234567890123", None),  # 15 digits
    ("13456789012345678a", None), ("", None),
])
def test_the_wallet_is_read_from_the_code(code, wallet):
    assert payment_code_wallet(code) == wallet


def test_codes_are_normalized_and_checked_against_the_clerks_choice():
    assert micropay.payment_code_tender(" 1345 6789 0123 4567 89\n") == (WECHAT, "wechat_pay")
    assert micropay.payment_code_tender(ALIPAY, "alipay") == (ALIPAY, "alipay")
    with pytest.raises(PaymentCodeMismatch):
        micropay.payment_code_tender(WECHAT, "alipay")
    with pytest.raises(InvalidPaymentCode):
        micropay.payment_code_tender("6901234567892")  # an EAN-13, not a payment code


@pytest.mark.django_db
@pytest.mark.parametrize("code, status, reason", [
    (WECHAT, MicropayStatus.SUCCESS, ""),
    ("134567890123450001", MicropayStatus.FAILED, "insufficient_balance"),
    ("134567890123450002", MicropayStatus.FAILED, "code_expired"),
    ("134567890123450003", MicropayStatus.PENDING, ""),
    (ALIPAY, MicropayStatus.FAILED, "invalid_code"),  # an Alipay code for a WeChat payment
])
def test_the_sandbox_answers_from_the_code(code, status, reason):
    payment = Payment(number="PY1", reference="SALE-x", tender="wechat_pay", provider="sandbox", amount=D("1"))
    result = provider_named("sandbox").micropay(payment, code)
    assert (result.status, result.reason) == (status, reason)
    if status == MicropayStatus.SUCCESS:
        assert result.provider_txn_id == "SBXPY1" == provider_named("sandbox").micropay(payment, code).provider_txn_id


@pytest.mark.parametrize("provider", ["wechat_pay", "alipay"])
def test_the_real_adapters_refuse_before_sending_anything(provider):
    payment = Payment(number="PY1", reference="SALE-x", tender=provider, provider=provider, amount=D("1"))
    with pytest.raises(ProviderNotConfigured):
        provider_named(provider).micropay(payment, WECHAT)


@pytest.fixture
def store(db):
    return StoreFactory()


def charge(store, sale, code=WECHAT, amount="99.00"):
    return micropay.micropay_charge(store=store, client_uuid=sale, tender="", amount=amount, code=code)


def test_a_charge_is_made_once_per_sale(store):
    sale = uuid.uuid4()
    first = charge(store, sale)
    again = charge(store, sale, code="134567890123888888")  # a fresh code: the sale is paid already
    assert first.pk == again.pk and Payment.objects.count() == 1
    assert (first.status, first.reference, first.provider_txn_id) == (
        "captured", f"SALE-{sale}", f"SBX{first.number}")
    assert topics().count("payment.captured") == 1


def test_a_declined_or_pending_code_takes_nothing(store):
    sale = uuid.uuid4()
    with pytest.raises(PaymentDeclined) as declined:
        charge(store, sale, code="134567890123450001")
    assert declined.value.params["reason"] == "insufficient_balance"
    with pytest.raises(PaymentCodePending):
        charge(store, sale, code="134567890123450003")
    assert dict(Payment.objects.values_list("status", "tender")) == {"failed": "wechat_pay",
                                                                     "pending": "wechat_pay"}
    assert_ledgers_clean()


def test_another_amount_gives_up_what_the_sale_held(store):
    sale = uuid.uuid4()
    old = charge(store, sale, amount="99.00")
    new = charge(store, sale, amount="120.00")  # the basket changed after a lost answer
    old.refresh_from_db()
    assert new.pk != old.pk and new.status == "captured"
    assert (old.refunding_amount, Refund.objects.get().payment_id) == (D("99.00"), old.pk)
    assert_ledgers_clean()


def test_a_capture_after_the_payment_was_given_up_is_reported_late(store):
    sale = uuid.uuid4()
    with pytest.raises(PaymentCodePending):
        charge(store, sale, code="134567890123450003")
    payment = Payment.objects.get()
    services.payment_cancel(payment=payment, actor=None)
    captured, late = services.payment_answer_apply(payment=payment.pk, captured=True, provider_txn_id="T1")
    assert (captured.status, late) == ("captured", True)
    assert services.payment_answer_apply(payment=payment.pk, captured=True, provider_txn_id="T1")[1] is False
    with pytest.raises(PaymentNotPending):
        services.payment_answer_apply(payment=payment.pk, captured=False, failure="declined")


def test_the_sale_takes_over_its_charge_once_and_a_release_then_does_nothing(store):
    sale = uuid.uuid4()
    payment = charge(store, sale)
    with pytest.raises(PaymentNotHeld):
        micropay.micropay_attach(payment=payment, client_uuid=sale, reference="PS1", tender="wechat_pay",
                                 amount=D("98.00"), store=store)
    attached = micropay.micropay_attach(payment=payment, client_uuid=sale, reference="PS1", tender="wechat_pay",
                                        amount=D("99.00"), store=store)
    assert attached.reference == "PS1"
    with pytest.raises(PaymentNotHeld):
        micropay.micropay_attach(payment=payment, client_uuid=sale, reference="PS2", tender="wechat_pay",
                                 amount=D("99.00"), store=store)
    assert micropay.micropay_release(payment=payment.pk) is None and not Refund.objects.exists()
