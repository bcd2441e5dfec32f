"""notification_handle: every notification is logged, a verified one applies at most once."""

import json
import time
from decimal import Decimal

import pytest

from o2o.db import service
from o2o.models import OutboxMessage
from o2o.outbox import outbox_emit
from payments import services
from payments.models import Payment, PaymentNotification, Tender
from payments.providers.sandbox import HEADER_SIGNATURE, sandbox_notification, sandbox_sign
from payments.tests.builders import (
    alipay_configure,
    alipay_notification,
    wechat_configure,
    wechat_notification,
)
from payments.tests.conftest import assert_ledgers_clean, ledger_state, topics

Outcome = PaymentNotification.Outcome


@pytest.fixture
def pending(db):
    return services.payment_create(reference="SO1", tender=Tender.SANDBOX, amount="25.50")


def deliver(headers, body, provider="sandbox"):
    return services.notification_handle(provider=provider, headers=headers, body=body)


@pytest.mark.django_db
def test_a_valid_notification_captures_the_payment_and_is_logged(pending):
    headers, body = sandbox_notification(pending)

    result = deliver(headers, body)

    pending.refresh_from_db()
    assert (result.outcome, result.applied, result.captured, result.reference) == (
        Outcome.APPLIED, True, True, "SO1")
    assert result.acknowledge and result.payment.pk == pending.pk
    assert (pending.status, pending.provider_txn_id) == (Payment.Status.CAPTURED, f"SBX{pending.number}")
    log = PaymentNotification.objects.get()
    assert (log.payment_id, log.provider_txn_id, log.amount, log.out_trade_no) == (
        pending.pk, pending.provider_txn_id, Decimal("25.50"), pending.number)
    assert log.body == body.decode() and log.headers["x-sandbox-signature"] == headers[HEADER_SIGNATURE]
    assert topics() == ["payment.captured"]
    assert_ledgers_clean()


@pytest.mark.django_db
def test_handling_a_notification_takes_a_bounded_number_of_queries(pending, django_assert_max_num_queries):
    headers, body = sandbox_notification(pending)
    with django_assert_max_num_queries(8):
        assert deliver(headers, body).applied
    with django_assert_max_num_queries(8):
        assert not deliver(headers, body).applied


@pytest.mark.django_db
def test_a_replayed_notification_only_adds_a_log_row(pending):
    headers, body = sandbox_notification(pending)
    deliver(headers, body)
    state = ledger_state()

    again = deliver(headers, body)
    resigned = deliver(*sandbox_notification(pending))

    assert [again.outcome, resigned.outcome] == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert not again.applied and again.captured and again.acknowledge
    after = ledger_state()
    assert after["notifications"] == state["notifications"] + 2
    assert {k: v for k, v in after.items() if k != "notifications"} == {
        k: v for k, v in state.items() if k != "notifications"}
    assert_ledgers_clean()


@pytest.mark.django_db
@pytest.mark.parametrize("tamper", ["body", "signature", "missing_header", "stale", "future", "wrong_secret"])
def test_a_forged_notification_is_logged_and_changes_nothing(pending, tamper, settings):
    headers, body = sandbox_notification(pending)
    if tamper == "body":
        body = body.replace(b'"amount_fen":2550', b'"amount_fen":2551')
    elif tamper == "signature":
        headers[HEADER_SIGNATURE] = ("0" if headers[HEADER_SIGNATURE][0] != "0" else "1") + headers[
            HEADER_SIGNATURE][1:]
    elif tamper == "missing_header":
        del headers[HEADER_SIGNATURE]
    elif tamper in ("stale", "future"):
        # Well outside the five-minute window: a second or two of a slow run must not bring it back in.
        offset = -600 if tamper == "stale" else 600
        headers, body = sandbox_notification(pending, timestamp=int(time.time()) + offset)
    elif tamper == "wrong_secret":
        settings.SANDBOX_PAY_SECRET = "another secret"
    before = ledger_state()

    result = deliver(headers, body)

    assert (result.outcome, result.applied, result.captured, result.payment) == (
        Outcome.REJECTED_SIGNATURE, False, False, None)
    assert not result.acknowledge
    log = PaymentNotification.objects.get()
    assert log.payment is None
    assert log.detail in {"bad_signature", "missing_signature_headers", "stale_timestamp"}
    assert ledger_state() == {**before, "notifications": before["notifications"] + 1}
    pending.refresh_from_db()
    assert pending.status == Payment.Status.PENDING


@pytest.mark.django_db
def test_a_signed_notification_with_another_amount_is_rejected(pending):
    before = ledger_state()
    result = deliver(*sandbox_notification(pending, amount=Decimal("1.00")))
    assert (result.outcome, result.applied) == (Outcome.REJECTED_AMOUNT, False)
    assert ledger_state() == {**before, "notifications": before["notifications"] + 1}


@pytest.mark.django_db
def test_a_notification_for_an_unknown_payment_is_logged(pending):
    headers, body = sandbox_notification(pending)
    body = body.replace(pending.number.encode(), b"PY0000000000000")
    headers[HEADER_SIGNATURE] = sandbox_sign(headers["X-Sandbox-Timestamp"], headers["X-Sandbox-Nonce"], body)
    before = ledger_state()

    result = deliver(headers, body)

    assert (result.outcome, result.payment, result.reference) == (Outcome.UNKNOWN_PAYMENT, None, "")
    assert ledger_state() == {**before, "notifications": before["notifications"] + 1}


@pytest.mark.django_db
def test_a_notification_cannot_capture_another_providers_payment():
    cash = services.payment_create(reference="SO1", tender=Tender.CASH_ON_DELIVERY, amount="25.50")
    result = deliver(*sandbox_notification(cash))
    cash.refresh_from_db()
    assert (result.outcome, cash.status) == (Outcome.UNKNOWN_PAYMENT, Payment.Status.PENDING)


@pytest.mark.django_db
def test_money_taken_after_we_cancelled_is_captured_late_so_it_can_be_refunded(pending, clerk):
    services.payment_cancel(payment=pending, actor=clerk)
    headers, body = sandbox_notification(pending)

    first = deliver(headers, body)
    second = deliver(headers, body)

    pending.refresh_from_db()
    assert (first.outcome, first.applied, first.captured, first.late) == (Outcome.APPLIED, True, True, True)
    assert (second.outcome, second.late) == (Outcome.DUPLICATE, False)
    assert (pending.status, pending.closed_by) == (Payment.Status.CAPTURED, clerk)
    assert topics() == ["payment.cancelled", "payment.captured"]
    assert OutboxMessage.objects.get(topic="payment.captured").payload["after_cancel"] is True
    services.refund_create(payment=pending, amount=pending.amount, reason="paid after cancellation")
    assert_ledgers_clean()


@pytest.mark.django_db
def test_money_for_a_payment_the_provider_closed_or_a_second_transaction_is_reported_once(pending):
    deliver(*sandbox_notification(pending))
    headers, body = sandbox_notification(pending, txn_id="SBX-second")

    first, second = deliver(headers, body), deliver(headers, body)

    pending.refresh_from_db()
    assert (first.outcome, second.outcome) == (Outcome.OUT_OF_ORDER, Outcome.OUT_OF_ORDER)
    assert first.acknowledge and not first.applied
    assert pending.provider_txn_id == f"SBX{pending.number}"
    unmatched = OutboxMessage.objects.get(topic="payment.unmatched_capture")
    assert unmatched.payload["unmatched_txn_id"] == "SBX-second"

    closed = services.payment_create(reference="SO2", tender=Tender.SANDBOX, amount="5.00")
    deliver(*sandbox_notification(closed, state="CLOSED"))
    late = deliver(*sandbox_notification(closed))
    closed.refresh_from_db()
    assert (late.outcome, closed.status) == (Outcome.OUT_OF_ORDER, Payment.Status.FAILED)
    assert OutboxMessage.objects.filter(topic="payment.unmatched_capture").count() == 2
    assert_ledgers_clean()


@pytest.mark.django_db
def test_a_close_notification_fails_a_pending_payment_once(pending):
    headers, body = sandbox_notification(pending, state="CLOSED")

    first, second = deliver(headers, body), deliver(headers, body)

    pending.refresh_from_db()
    assert pending.status == Payment.Status.FAILED and pending.closed_at is not None
    assert (first.outcome, first.applied, first.captured) == (Outcome.APPLIED, True, False)
    assert second.outcome == Outcome.DUPLICATE
    assert topics() == ["payment.failed"]
    assert_ledgers_clean()


@pytest.mark.django_db
def test_a_close_arriving_after_the_capture_is_out_of_order(pending):
    deliver(*sandbox_notification(pending))
    result = deliver(*sandbox_notification(pending, state="CLOSED"))
    pending.refresh_from_db()
    assert (result.outcome, pending.status) == (Outcome.OUT_OF_ORDER, Payment.Status.CAPTURED)
    waiting = deliver(*sandbox_notification(pending, state="USERPAYING"))
    assert waiting.outcome == Outcome.OUT_OF_ORDER
    assert_ledgers_clean()


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["nope", "wechat_pay", "alipay"])
def test_unknown_or_unconfigured_provider_is_logged_as_rejected(pending, provider):
    result = deliver(*sandbox_notification(pending), provider=provider)
    log = PaymentNotification.objects.get()
    assert (result.outcome, log.provider) == (Outcome.REJECTED_SIGNATURE, provider)
    assert log.detail == ("unknown_provider" if provider == "nope" else "provider_not_configured")


@pytest.mark.django_db
def test_garbage_body_with_a_valid_signature_is_rejected(pending):
    body = b"not json"
    headers, _ = sandbox_notification(pending)
    headers[HEADER_SIGNATURE] = sandbox_sign(headers["X-Sandbox-Timestamp"], headers["X-Sandbox-Nonce"], body)
    result = deliver(headers, body.decode())
    assert result.outcome == Outcome.REJECTED_SIGNATURE
    assert PaymentNotification.objects.get().detail == "bad_payload"


@pytest.mark.django_db
def test_wechat_pay_notification_captures_end_to_end(settings):
    key = wechat_configure(settings)
    payment = services.payment_create(reference="SO7", tender=Tender.WECHAT_PAY, amount="123.45")
    headers, body = wechat_notification(key, out_trade_no=payment.number)

    forged = deliver(headers, body.replace(b"EV-2018", b"EV-2019"), provider="wechat_pay")
    result = deliver(headers, body, provider="wechat_pay")
    replay = deliver(headers, body, provider="wechat_pay")

    payment.refresh_from_db()
    assert [forged.outcome, result.outcome, replay.outcome] == [Outcome.REJECTED_SIGNATURE, Outcome.APPLIED,
                                                                Outcome.DUPLICATE]
    assert (payment.status, payment.provider_txn_id, result.reference) == (
        Payment.Status.CAPTURED, "4200000001202611230000000001", "SO7")
    assert set(PaymentNotification.objects.get(outcome=Outcome.APPLIED).headers) == {
        "wechatpay-timestamp", "wechatpay-nonce", "wechatpay-serial", "wechatpay-signature"}
    assert_ledgers_clean()


@pytest.mark.django_db
def test_alipay_notification_captures_end_to_end(settings):
    key = alipay_configure(settings)
    payment = services.payment_create(reference="SO8", tender=Tender.ALIPAY, amount="88.80")
    short = deliver({}, alipay_notification(key, out_trade_no=payment.number, total_amount="8.88"),
                    provider="alipay")

    result = deliver({"Content-Type": "application/x-www-form-urlencoded"},
                     alipay_notification(key, out_trade_no=payment.number), provider="alipay")

    payment.refresh_from_db()
    assert (short.outcome, result.outcome, payment.status) == (Outcome.REJECTED_AMOUNT, Outcome.APPLIED,
                                                               Payment.Status.CAPTURED)
    assert_ledgers_clean()


# --- nesting in the caller's service (how orders use it) ---------------------------------------


@service
def _order_paid_by_notification(*, headers, body, fail_after: bool = False):
    result = services.notification_handle(provider="sandbox", headers=headers, body=body)
    if result.applied and result.captured:
        outbox_emit(topic="test.order_paid", payload={"reference": result.reference})
    if fail_after:
        raise RuntimeError("the order could not be marked paid")
    return result


@pytest.mark.django_db
def test_nested_in_the_callers_service_the_capture_and_the_order_commit_together(pending):
    headers, body = sandbox_notification(pending)

    result = _order_paid_by_notification(headers=headers, body=body)
    again = _order_paid_by_notification(headers=headers, body=body)

    assert (result.applied, again.applied) == (True, False)
    assert topics() == ["payment.captured", "test.order_paid"]


@pytest.mark.django_db
def test_nested_in_a_failing_service_nothing_is_kept(pending):
    headers, body = sandbox_notification(pending)
    before = ledger_state()

    with pytest.raises(RuntimeError):
        _order_paid_by_notification(headers=headers, body=body, fail_after=True)

    assert ledger_state() == before
    result = _order_paid_by_notification(headers=headers, body=body)
    assert result.applied
    assert json.loads(PaymentNotification.objects.get().body)["out_trade_no"] == pending.number


@pytest.mark.django_db
def test_notification_signed_checks_the_signature_only(pending, django_assert_num_queries):
    headers, body = sandbox_notification(pending)
    forged = body.replace(b'"amount_fen":2550', b'"amount_fen":2551')
    before = ledger_state()
    with django_assert_num_queries(0):
        assert services.notification_signed(provider="sandbox", headers=headers, body=body)
        assert not services.notification_signed(provider="sandbox", headers=headers, body=forged)
        assert not services.notification_signed(provider="sandbox", headers={}, body=body)
        assert not services.notification_signed(provider="paypal", headers=headers, body=body)
    assert ledger_state() == before
