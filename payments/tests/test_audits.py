"""The payments ledger audits find what they are meant to find, and the database refuses the rest."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from o2o.audit import audit_run
from payments import audits, services
from payments.models import Payment, PaymentNotification, Refund, Tender
from payments.providers.sandbox import sandbox_notification
from payments.tests.conftest import assert_ledgers_clean
from payments.tests.factories import PaymentFactory, RefundFactory


def violations(check) -> list[str]:
    return list(check())


@pytest.mark.django_db
def test_a_full_day_of_payments_audits_clean(store_a):
    cash = services.payment_create(reference="SO1", tender=Tender.CASH, amount="10.00", store=store_a)
    online = services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="20.00")
    headers, body = sandbox_notification(online)
    services.notification_handle(provider="sandbox", headers=headers, body=body)
    services.refund_create(payment=cash, amount="5.00", reason="r")
    pending = services.refund_create(payment=Payment.objects.get(pk=online.pk), amount="5.00", reason="r")
    services.refund_complete(refund=pending, provider_refund_id="R1", success=True)
    services.refund_create(payment=online, amount="1.00", reason="r")
    assert_ledgers_clean()
    titles = {title for inv, title, _ in audit_run() if inv in ("4", "5")}
    assert "payment refunded_amount equals the sum of its succeeded refunds" in titles


@pytest.mark.django_db
def test_cached_refunded_amount_off_from_its_refunds_is_reported():
    payment = PaymentFactory(refunded_amount=Decimal("10.00"))
    assert violations(audits.refunded_matches_refunds) == [
        f"payment {payment.pk} ({payment.number}): refunded_amount 10.00 != succeeded refunds 0"]
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=io.StringIO())


@pytest.mark.django_db
def test_cached_refunding_amount_off_from_pending_refunds_is_reported():
    refund = RefundFactory(status=Refund.Status.PENDING, completed_at=None)
    assert len(violations(audits.refunding_matches_refunds)) == 1
    assert str(refund.payment.pk) in violations(audits.refunding_matches_refunds)[0]


@pytest.mark.django_db
def test_a_refund_on_a_payment_that_is_not_captured_is_reported():
    payment = PaymentFactory(status=Payment.Status.CANCELLED, captured_at=None)
    RefundFactory(payment=payment, status=Refund.Status.FAILED)
    found = violations(audits.refunds_only_on_captured)
    assert found[0].endswith(f"on payment {payment.pk} which is cancelled")


@pytest.mark.django_db
def test_an_applied_notification_that_does_not_match_its_payment_is_reported():
    payment = PaymentFactory(tender=Tender.SANDBOX, provider="sandbox", provider_txn_id="T1")
    good = dict(provider="sandbox", provider_txn_id="T1", amount=payment.amount, status_reported="success",
                outcome=PaymentNotification.Outcome.APPLIED, payment=payment)
    PaymentNotification.objects.create(**good)
    assert violations(audits.applied_notifications_match) == []

    wrong = PaymentNotification.objects.create(**{**good, "amount": Decimal("1.00")})
    PaymentNotification.objects.create(**{**good, "outcome": PaymentNotification.Outcome.DUPLICATE,
                                          "amount": Decimal("2.00")})

    assert violations(audits.applied_notifications_match) == [
        f"notification {wrong.pk} (payment {payment.pk}): amount differs"]
    assert violations(audits.one_applied_notification_per_txn) == ["sandbox transaction T1 applied 2 times"]


@pytest.mark.django_db
@pytest.mark.parametrize("change", [
    {"refunded_amount": Decimal("100.01")},
    {"refunded_amount": Decimal("60.00"), "refunding_amount": Decimal("40.01")},
    {"refunded_amount": Decimal("-1.00")},
    {"amount": Decimal("0.00")},
    {"status": Payment.Status.PENDING},
])
def test_the_database_refuses_impossible_payment_rows(change):
    payment = PaymentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(**change)


@pytest.mark.django_db
def test_the_database_refuses_a_provider_transaction_on_two_payments():
    PaymentFactory(provider="sandbox", provider_txn_id="T1")
    PaymentFactory(provider="wechat_pay", provider_txn_id="T1")  # another provider's id space
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentFactory(provider="sandbox", provider_txn_id="T1")
