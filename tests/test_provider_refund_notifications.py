"""Alipay refunds end to end against the Alipay fake: a refund whose answer was lost completes by
Alipay's notification (through the notification endpoint) or by the refund query, a tampered
notification is refused, and partial refunds whose notifications carry the trade's refunded total
each complete once."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from payments import services
from payments.exceptions import ProviderUnavailable
from payments.models import Payment, PaymentNotification, Refund
from tests.test_payment_providers import alipay, captured  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal
NOTIFY = "/api/v1/payments/notify/alipay/"
FORM = "application/x-www-form-urlencoded"


def notify(body: bytes):
    return APIClient().post(NOTIFY, data=body, content_type=FORM)


def refund_sent_answer_lost(fake, payment: Payment, amount: str) -> Refund:
    """A refund Alipay took whose answer never came back: it stays pending with us."""
    refund = services.refund_create(payment=payment, amount=amount, reason="return")
    fake.lose_answer_to = "alipay.trade.refund"
    with pytest.raises(ProviderUnavailable):
        services.refund_process(refund_id=refund.pk)
    refund.refresh_from_db()
    assert refund.status == "pending" and refund.number in fake.refunds
    return refund


def test_a_refund_whose_answer_was_lost_completes_by_its_notification(alipay):  # noqa: F811
    payment = captured(alipay, "alipay", "50.00")
    refund = refund_sent_answer_lost(alipay, payment, "50.00")
    body = alipay.refund_notification(refund.number)

    first, replay = notify(body), notify(body)

    assert (first.status_code, first.content) == (200, b"success")
    assert (replay.status_code, replay.content) == (200, b"success")
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == "succeeded"
    assert refund.provider_refund_id == f"{alipay.trades[payment.number].trade_no}-{refund.number}"
    assert (payment.refunded_amount, payment.refunding_amount) == (D("50.00"), D("0.00"))
    outcomes = list(PaymentNotification.objects.filter(out_trade_no=refund.number).order_by("id")
                    .values_list("outcome", flat=True))
    assert outcomes == ["applied", "duplicate"]
    # The refund job finds nothing left to do and sends nothing again.
    assert services.refund_process(refund_id=refund.pk).status == "succeeded"
    assert alipay.methods.count("alipay.trade.refund") == 1
    call_command("audit_ledgers")


def test_a_refund_whose_answer_and_notification_were_lost_completes_by_the_refund_query(alipay):  # noqa: F811
    payment = captured(alipay, "alipay", "50.00")
    refund = refund_sent_answer_lost(alipay, payment, "20.00")

    done = services.refund_process(refund_id=refund.pk)  # what refunds_resume does

    assert done.status == "succeeded"
    assert "alipay.trade.fastpay.refund.query" in alipay.methods
    assert alipay.methods.count("alipay.trade.refund") == 1  # asked, not sent twice
    # The notification arriving after all changes nothing.
    late = notify(alipay.refund_notification(refund.number))
    assert late.content == b"success"
    assert PaymentNotification.objects.get(out_trade_no=refund.number).outcome == "duplicate"
    payment.refresh_from_db()
    assert (payment.refunded_amount, payment.refunding_amount) == (D("20.00"), D("0.00"))
    call_command("audit_ledgers")


@pytest.mark.parametrize("tamper", ["amount", "signature", "app"])
def test_a_tampered_refund_notification_is_refused(alipay, tamper):  # noqa: F811
    payment = captured(alipay, "alipay", "50.00")
    refund = refund_sent_answer_lost(alipay, payment, "50.00")
    body = alipay.refund_notification(refund.number)
    if tamper == "amount":  # changed after Alipay signed it
        body = body.replace(b"refund_fee=50.00", b"refund_fee=5.00")
    elif tamper == "signature":  # signed by someone else's key
        body = alipay.refund_notification(refund.number, notify_id="forged")
        body = body.replace(b"notify_id=forged", b"notify_id=ac05099524730693a8b330c5")
    else:  # a valid signature for another app's refund
        body = alipay.refund_notification(refund.number, app_id="2021000000009999")

    answer = notify(body)

    assert (answer.status_code, answer.content) == (400, b"fail")
    log = PaymentNotification.objects.order_by("-id").first()
    assert log.outcome == "rejected_signature"
    assert log.detail == ("wrong_app_id" if tamper == "app" else "bad_signature")
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == "pending" and payment.refunding_amount == D("50.00")


def test_partial_refunds_each_complete_by_notifications_carrying_the_trade_total(alipay):  # noqa: F811
    payment = captured(alipay, "alipay", "50.00")
    first = refund_sent_answer_lost(alipay, payment, "10.00")
    second = refund_sent_answer_lost(alipay, payment, "15.00")

    # Alipay's refund_fee is the trade's refunded total: 25.00 in both notifications now.
    assert notify(alipay.refund_notification(second.number)).content == b"success"
    assert notify(alipay.refund_notification(first.number)).content == b"success"

    payment.refresh_from_db()
    assert [r.status for r in Refund.objects.filter(pk__in=[first.pk, second.pk])] == ["succeeded"] * 2
    assert (payment.refunded_amount, payment.refunding_amount) == (D("25.00"), D("0.00"))
    call_command("audit_ledgers")


def test_a_refund_notification_naming_more_than_was_refunded_is_rejected(alipay):  # noqa: F811
    payment = captured(alipay, "alipay", "50.00")
    refund = refund_sent_answer_lost(alipay, payment, "10.00")

    answer = notify(alipay.refund_notification(refund.number, refund_fee="30.00"))

    assert answer.content == b"fail"
    assert PaymentNotification.objects.order_by("-id").first().outcome == "rejected_amount"
    refund.refresh_from_db()
    assert refund.status == "pending"
