"""Every write to payments and refunds goes through these functions.

Each ``@service`` runs in one transaction (joining the caller's when called
from another service, so orders can capture a payment and mark the order paid
atomically).  Money on a payment moves only under that payment's row lock
(``locks.payment_for_update``; several payments are locked in id order, then
refunds), and the cached ``refunded_amount`` / ``refunding_amount`` move with
``F()``; CHECK constraints back the over-refund rule.  A provider transaction
applies once: ``(provider, provider_txn_id)`` is unique and capture is guarded
by the pending status under the lock.

Nothing here calls a provider over the network inside a transaction: the
functions that may (``payment_provider_start``, ``refund_process``) refuse to
run inside one, and provider refunds are requested through the outbox.

Outbox topics: ``payment.captured``, ``payment.failed``, ``payment.cancelled``,
``payment.unmatched_capture`` (the provider took money that no payment can
hold: a second transaction for a captured payment, or a payment it had
closed itself; someone must refund it at the provider), ``refund.succeeded``, ``refund.failed``
and ``payments.refund_requested`` (consumed by payments.tasks).  Keys are
``order:<reference>`` so one order's events are consumed in order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping, Sequence

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from o2o.db import service
from o2o.ids import number_next
from o2o.outbox import outbox_emit
from o2o.money import money_parse
from payments import locks
from payments.exceptions import (
    AmountMismatch,
    DuplicateTransaction,
    InvalidAmount,
    InvalidPaymentInput,
    InvalidSignature,
    OverRefund,
    PaymentNotCaptured,
    PaymentNotFound,
    PaymentNotPending,
    ProviderNotConfigured,
    RefundNotFound,
    RefundNotPending,
    UnknownProvider,
)
from payments.models import Payment, PaymentNotification, Refund
from payments.providers import provider_named
from payments.providers.base import Notification, NotificationStatus, RefundStatus, headers_lower
from payments.tenders import tender_for
from stores.models import Store

MAX_LOGGED_BODY = 20_000
TOPIC_REFUND_REQUESTED = "payments.refund_requested"
_TXN_CONSTRAINT = "payment_provider_txn_once"


# --- input checks -----------------------------------------------------------------------------


def amount_check(value: object, *, field: str = "amount") -> Decimal:
    """A positive amount in whole fen, as Decimal.  Floats are refused: they cannot hold fen exactly."""
    try:
        return money_parse(value, positive=True)
    except ValueError:
        raise InvalidAmount(params={"amount": str(value)}, field=field) from None


def _text(value: object, *, field: str, max_length: int, required: bool = True) -> str:
    text = value.strip() if isinstance(value, str) else None
    if text is None or (required and not text) or len(text) > max_length:
        raise InvalidPaymentInput(_("This field is required and may have at most %(max)s characters.")
                                  % {"max": max_length}, code=f"invalid_{field}", field=field,
                                  params={"max_length": max_length})
    return text


def _actor(actor):
    return actor if actor is not None and getattr(actor, "pk", None) else None


def _outside_transaction(name: str) -> None:
    if connection.in_atomic_block:
        raise RuntimeError(f"{name} calls a payment provider; run it after commit, outside any transaction")


def _pk(obj: Any, model) -> int:
    return obj.pk if isinstance(obj, model) else obj


# --- outbox -----------------------------------------------------------------------------------


def _key(reference: str) -> str:
    return f"order:{reference}"[:100]


def _payment_payload(payment: Payment) -> dict[str, Any]:
    return {"payment_id": payment.pk, "number": payment.number, "reference": payment.reference,
            "tender": payment.tender, "provider": payment.provider,
            "provider_txn_id": payment.provider_txn_id,
            "amount": payment.amount, "currency": payment.currency, "store_id": payment.store_id}


def _payment_emit(topic: str, payment: Payment, **extra: Any) -> None:
    outbox_emit(topic=topic, payload={**_payment_payload(payment), **extra}, key=_key(payment.reference))


def _refund_emit(topic: str, refund: Refund, payment: Payment, *, at_once: bool = False) -> None:
    # at_once: settled in the transaction that asked for it (cash, wallet, points), not later by a provider.
    outbox_emit(topic=topic, key=_key(payment.reference), payload={
        "refund_id": refund.pk, "at_once": at_once, "number": refund.number, "payment_id": payment.pk,
        "payment_number": payment.number, "reference": payment.reference, "tender": payment.tender,
        "method": refund.method, "amount": refund.amount, "currency": refund.currency,
        "payment_refunded_amount": payment.refunded_amount, "store_id": refund.store_id,
    })


# --- payments ---------------------------------------------------------------------------------


PAYERS = {"openid": re.compile(r"[A-Za-z0-9_-]{6,128}"), "buyer_id": re.compile(r"2088\d{12}")}


def payment_method_check(*, tender: str, method: str = "qr", openid: str = "", buyer_id: str = "") -> str:
    """Check how a customer will pay a provider tender online; returns the payer id the method needs.

    Pure (no database, no network), so a caller checks before it writes anything.  Raises
    UnknownTender, UnknownProvider, InvalidPaymentInput: ``payment_method_unsupported`` (the
    tender's provider does not offer the method), ``payer_required`` (jsapi / mini_program
    without the payer's id), ``unexpected_payer`` (an id the method does not take),
    ``invalid_payer`` (a malformed id).
    """
    kind = tender_for(tender)
    if not kind.provider_backed:
        raise UnknownProvider(params={"tender": str(tender)})
    methods = provider_named(kind.provider).methods
    if method not in methods:
        raise InvalidPaymentInput(_("This tender cannot be paid that way."), code="payment_method_unsupported",
                                  field="method", params={"method": str(method), "offered": sorted(methods)})
    needed, given = methods[method], {"openid": openid or "", "buyer_id": buyer_id or ""}
    for name, value in given.items():
        if value and name != needed:
            raise InvalidPaymentInput(_("This payment method does not take this payer id."),
                                      code="unexpected_payer", field=name, params={"method": method})
    if not needed:
        return ""
    payer = given[needed].strip()
    if not payer:
        raise InvalidPaymentInput(_("This payment method needs the payer's id."), code="payer_required",
                                  field=needed, params={"method": method})
    if not PAYERS[needed].fullmatch(payer):
        raise InvalidPaymentInput(_("The payer's id is not valid."), code="invalid_payer", field=needed)
    return payer


@service
def payment_create(*, reference: str, tender: str, amount: Decimal | int | str, store: Store | None = None,
                   actor=None, card_reference: str = "", member=None, method: str = "") -> Payment:
    """Record one tender for ``reference`` (the order number).

    Cash and UnionPay card are captured at once (a card needs the slip's
    ``card_reference``, which then applies to this payment only); cash on
    delivery and provider tenders stay pending until ``payment_capture`` or a
    provider notification.  The sandbox's payment code is made here (no
    network); a networked provider's comes from ``payment_provider_start``
    after commit.  Locks nothing.  Queues ``payment.captured`` when captured.
    Raises InvalidAmount, InvalidPaymentInput, UnknownTender,
    DuplicateTransaction (a card slip already recorded), ProviderNotConfigured.
    """
    reference = _text(reference, field="reference", max_length=64)
    amount = amount_check(amount)
    kind = tender_for(tender)
    payment = Payment(number=number_next("PY"), reference=reference, tender=kind.tender,
                      provider=kind.provider, amount=amount, store=store, created_by=_actor(actor),
                      member_id=getattr(member, "pk", member), method=method if kind.provider_backed else "")
    kind.start(payment, card_reference=card_reference if isinstance(card_reference, str) else "")
    if kind.provider_backed:
        adapter = provider_named(kind.provider)
        if not adapter.calls_network and method in ("", "qr"):
            payment.payment_code = str(adapter.create_payment(payment).get("code_url", ""))[:500]
    _payment_insert(payment)
    if payment.status == Payment.Status.CAPTURED:
        _payment_emit("payment.captured", payment)
    return payment


def _payment_insert(payment: Payment) -> None:
    if not payment.provider_txn_id:
        # No provider transaction id (cash, a pending provider payment): nothing a twin could
        # collide on (the number comes from a sequence), so no savepoint round trips.
        payment.save(force_insert=True)
        return
    # The unique (provider, provider_txn_id) constraint decides, also against a racing twin
    # that a read beforehand would not see; the savepoint lets that insert fail alone.
    try:
        with transaction.atomic():  # a savepoint: a racing twin's insert fails alone
            payment.save(force_insert=True)
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") == _TXN_CONSTRAINT:
            raise DuplicateTransaction(params={"provider_txn_id": payment.provider_txn_id}) from None
        raise


def payments_record(*, reference: str, tenders: Sequence[tuple[str, Decimal, str]], numbers: Sequence[str],
                    store: Store | None = None, actor=None, member=None) -> list[Payment]:
    """Record several tenders taken at once for ``reference`` with one INSERT: what
    ``payment_create`` does for each (same checks, same ``payment.captured`` messages), for
    tenders that need no provider call.  ``tenders``: (tender, amount, card reference);
    ``numbers``: their document numbers, drawn beforehand (``o2o.ids.numbers_next``).

    A card slip already recorded fails the insert and the caller's transaction (no savepoint
    round trips): raises DuplicateTransaction then.  Provider tenders go through
    ``payment_create``.  Raises what ``payment_create`` raises.
    """
    reference = _text(reference, field="reference", max_length=64)
    made = []
    for (tender, amount, card_reference), number in zip(tenders, numbers, strict=True):
        kind = tender_for(tender)
        if kind.provider_backed:
            raise ValueError(f"{tender} needs payment_create")
        payment = Payment(number=number, reference=reference, tender=kind.tender, provider=kind.provider,
                          amount=amount_check(amount), store=store, created_by=_actor(actor),
                          member_id=getattr(member, "pk", member))
        kind.start(payment, card_reference=card_reference if isinstance(card_reference, str) else "")
        made.append(payment)
    try:
        Payment.objects.bulk_create(made)
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") == _TXN_CONSTRAINT:
            taken = next((p.provider_txn_id for p in made if p.provider_txn_id), "")
            raise DuplicateTransaction(params={"provider_txn_id": taken}) from None
        raise
    for payment in made:
        if payment.status == Payment.Status.CAPTURED:
            _payment_emit("payment.captured", payment)
    return made


@dataclass(frozen=True)
class ProviderStart:
    """A provider payment opened for the customer: the payment, and what the front end passes to the
    wallet (``pay_params`` for WeChat's ``wx.requestPayment``, ``trade_no`` for Alipay's ``my.tradePay``)."""

    payment: Payment
    pay_params: dict[str, str] | None = None
    trade_no: str = ""


def payment_provider_open(*, payment: Payment | int, payer: str = "") -> ProviderStart:
    """Open a pending provider payment with its method (``Payment.method``): a QR payment gets its
    payment code once (``payment_provider_start``); a jsapi or mini-program payment is opened for
    ``payer`` (checked with ``payment_method_check`` before the payment was made) and the wallet's
    parameters returned (providers answer a repeated out_trade_no with the same prepay).

    Not a service: when it calls the provider it must run outside any transaction (RuntimeError
    otherwise); a QR payment whose code was already issued is returned without a call.
    Raises PaymentNotFound, PaymentNotPending, UnknownProvider, ProviderNotConfigured,
    ProviderUnavailable.
    """
    found = Payment.objects.filter(pk=_pk(payment, Payment)).first()
    if found is None:
        raise PaymentNotFound()
    if found.method in ("", "qr"):
        if found.payment_code and found.status == Payment.Status.PENDING:
            return ProviderStart(payment=found)  # already issued (or made locally by the sandbox): no call
        return ProviderStart(payment=payment_provider_start(payment=found.pk))
    _outside_transaction("payment_provider_open")
    if found.status != Payment.Status.PENDING:
        raise PaymentNotPending(params={"status": found.status})
    data = provider_named(found.provider).payment_open(found, method=found.method, payer=payer)
    return ProviderStart(payment=found, pay_params=data.get("pay_params"), trade_no=str(data.get("trade_no") or ""))


def payment_provider_start(*, payment: Payment | int) -> Payment:
    """Get the provider's payment code (e.g. a WeChat Native code_url) for a pending payment.

    Not a service: it may call the provider, so it must run after the payment
    was committed and outside any transaction (RuntimeError otherwise); the
    answer is saved by a short service of its own.  A payment that already has
    its code is returned as is.  Raises PaymentNotFound, PaymentNotPending,
    UnknownProvider, ProviderNotConfigured, ProviderUnavailable.
    """
    _outside_transaction("payment_provider_start")
    found = Payment.objects.filter(pk=_pk(payment, Payment)).first()
    if found is None:
        raise PaymentNotFound()
    if not tender_for(found.tender).provider_backed:
        raise UnknownProvider(params={"tender": found.tender})
    if found.status != Payment.Status.PENDING:
        raise PaymentNotPending(params={"status": found.status})
    if found.payment_code:
        return found
    data = provider_named(found.provider).create_payment(found)
    return _payment_code_record(payment_id=found.pk, code=str(data.get("code_url", ""))[:500])


@service
def _payment_code_record(*, payment_id: int, code: str) -> Payment:
    payment = locks.payment_for_update(payment_id)
    if payment.status == Payment.Status.PENDING and not payment.payment_code:
        payment.payment_code = code
        payment.save(update_fields=["payment_code"])
    return payment


def _payment_resolve(*, provider: str, provider_txn_id: str, reference: str,
                     amount: Decimal, by_order_reference: bool) -> Payment | None:
    """Find and lock the payment a provider transaction is for.

    The payment already holding the transaction id wins; then the payment
    whose number is ``reference`` (the out_trade_no); then, only when allowed,
    a pending payment of that provider for the order ``reference`` (the one
    with the same amount first).  A payment of another provider never matches.
    """
    scope = Payment.objects.filter(provider=provider)
    payment_id = scope.filter(provider_txn_id=provider_txn_id).values_list("pk", flat=True).first()
    if payment_id is None:
        payment_id = scope.filter(number=reference).values_list("pk", flat=True).first()
    if payment_id is None and by_order_reference:
        rows = list(scope.filter(reference=reference).order_by("pk").values_list("pk", "status", "amount"))
        pending = [r for r in rows if r[1] == Payment.Status.PENDING]
        pick = next((r for r in pending if r[2] == amount), None) or next(iter(pending or rows), None)
        payment_id = pick[0] if pick else None
    return locks.payment_for_update(payment_id) if payment_id is not None else None


_APPLY, _DUPLICATE, _AMOUNT, _NOT_PENDING = "apply", "duplicate", "amount", "not_pending"


def _capture_verdict(payment: Payment, provider_txn_id: str, amount: Decimal, *,
                     late: bool = False) -> str:
    """What a capture by this transaction does to the (locked) payment.

    ``late``: a provider-verified capture may also land on a payment we
    cancelled (the customer paid the QR code after the clerk gave up): the
    money was taken, so the books must show it and the caller refunds it.
    """
    if payment.status == Payment.Status.CAPTURED and payment.provider_txn_id == provider_txn_id:
        return _DUPLICATE if amount == payment.amount else _AMOUNT
    open_states = (Payment.Status.PENDING, Payment.Status.CANCELLED) if late else (Payment.Status.PENDING,)
    if payment.status not in open_states:
        return _NOT_PENDING
    return _APPLY if amount == payment.amount else _AMOUNT


def _capture_apply(payment: Payment, provider_txn_id: str) -> None:
    # closed_at / closed_by of a cancelled payment stay: they record the cancel this capture overtook.
    late = payment.status == Payment.Status.CANCELLED
    payment.status = Payment.Status.CAPTURED
    payment.provider_txn_id = provider_txn_id
    payment.captured_at = timezone.now()
    payment.save(update_fields=["status", "provider_txn_id", "captured_at"])
    _payment_emit("payment.captured", payment, after_cancel=late)


def _fail_apply(payment: Payment, **event) -> None:
    """Close a (locked) pending payment the provider declined: nothing was taken."""
    payment.status = Payment.Status.FAILED
    payment.closed_at = timezone.now()
    payment.save(update_fields=["status", "closed_at"])
    _payment_emit("payment.failed", payment, **event)


@service
def payment_capture(*, provider: str, provider_txn_id: str, reference: str,
                    amount: Decimal | int | str) -> tuple[Payment, bool]:
    """Apply a provider transaction to its pending payment, exactly once.

    ``reference`` is the payment number sent to the provider (out_trade_no) or
    the order number (then the order's pending payment of that provider is
    taken; cash on delivery is captured this way with the courier's collection
    reference as ``provider_txn_id``).  Returns (payment, applied_now):
    the same transaction again gives (payment, False) and changes nothing.
    Locks the payment row.  Queues ``payment.captured``.  Raises
    InvalidAmount, InvalidPaymentInput, PaymentNotFound, AmountMismatch,
    PaymentNotPending (cancelled, failed, or captured by another transaction).
    """
    amount = amount_check(amount)
    provider = _text(provider, field="provider", max_length=30)
    provider_txn_id = _text(provider_txn_id, field="provider_txn_id", max_length=64)
    reference = _text(reference, field="reference", max_length=64)
    payment = _payment_resolve(provider=provider, provider_txn_id=provider_txn_id, reference=reference,
                               amount=amount, by_order_reference=True)
    if payment is None:
        raise PaymentNotFound(params={"provider": provider, "reference": reference})
    verdict = _capture_verdict(payment, provider_txn_id, amount)
    if verdict == _DUPLICATE:
        return payment, False
    if verdict == _AMOUNT:
        raise AmountMismatch(params={"expected": payment.amount, "received": amount})
    if verdict == _NOT_PENDING:
        raise PaymentNotPending(params={"status": payment.status})
    _capture_apply(payment, provider_txn_id)
    return payment, True


@service
def payment_cancel(*, payment: Payment | int, actor) -> Payment:
    """Cancel a pending payment (the customer walked away from the QR code).

    Locks the payment row.  Queues ``payment.cancelled``.  Raises
    PaymentNotFound, PaymentNotPending.  If the provider still takes the money
    (its notification arrives later), that notification captures the payment
    after all (``payment.captured`` with ``after_cancel``), so the order can
    refund it; nothing is left unaccounted for at the provider.
    """
    try:
        payment = locks.payment_for_update(_pk(payment, Payment))
    except Payment.DoesNotExist:
        raise PaymentNotFound() from None
    if payment.status != Payment.Status.PENDING:
        raise PaymentNotPending(params={"status": payment.status})
    payment.status = Payment.Status.CANCELLED
    payment.closed_at = timezone.now()
    payment.closed_by = _actor(actor)
    payment.save(update_fields=["status", "closed_at", "closed_by"])
    _payment_emit("payment.cancelled", payment)
    return payment


@service
def payment_answer_apply(*, payment: Payment | int, captured: bool, provider_txn_id: str = "",
                         failure: str = "") -> tuple[Payment, bool]:
    """Record a provider's direct answer for a pending payment (a scanned payment code charged or declined).

    Applied once, like a notification: the same capture again changes
    nothing.  A capture also lands on a payment we cancelled meanwhile (the
    money was taken, so the books must show it): the second value is then
    True and the caller refunds it.  A decline closes a pending payment as
    failed (``failure`` goes with the event).  Returns (payment, late).
    Locks the payment row.  Queues ``payment.captured`` or ``payment.failed``.
    Raises PaymentNotFound, InvalidPaymentInput, PaymentNotPending (captured by
    another transaction, or declined after capture), DuplicateTransaction.
    """
    try:
        payment = locks.payment_for_update(_pk(payment, Payment))
    except Payment.DoesNotExist:
        raise PaymentNotFound() from None
    if captured:
        provider_txn_id = _text(provider_txn_id, field="provider_txn_id", max_length=64)
        verdict = _capture_verdict(payment, provider_txn_id, payment.amount, late=True)
        if verdict == _DUPLICATE:
            return payment, False
        if verdict != _APPLY:
            raise PaymentNotPending(params={"status": payment.status})
        late = payment.status == Payment.Status.CANCELLED
        if Payment.objects.filter(provider=payment.provider, provider_txn_id=provider_txn_id).exists():
            raise DuplicateTransaction(params={"provider_txn_id": provider_txn_id})
        _capture_apply(payment, provider_txn_id)
        return payment, late
    if payment.status == Payment.Status.FAILED:
        return payment, False
    if payment.status != Payment.Status.PENDING:
        raise PaymentNotPending(params={"status": payment.status})
    _fail_apply(payment, failure=str(failure or "")[:200])
    return payment, False


# --- notifications ----------------------------------------------------------------------------


def notification_signed(*, provider: str, headers: Mapping[str, str], body: bytes | str) -> bool:
    """Whether ``body`` carries a valid signature of ``provider``: the provider's authentication.

    Pure: checks the signature only (no database, no network, nothing logged), so
    the API can tell a provider's notification from anonymous traffic before
    applying it with ``notification_handle``.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    try:
        provider_named(provider).verify_notification(headers, raw)
    except (UnknownProvider, InvalidSignature, ProviderNotConfigured):
        return False
    return True


@dataclass(frozen=True)
class NotificationResult:
    """What one provider notification did.

    ``applied``: this notification changed the payment now (captured it, or
    closed it as failed); ``captured``: the payment is captured (now or
    before).  The caller marks the order paid when ``applied and captured``;
    ``late``: it was captured although we had cancelled it, so the order was
    given up and the money should go back (``refund_create``).
    ``acknowledge`` says whether to answer the provider with success (stop
    retrying): yes once the notification is verified and needs nothing more.
    """

    outcome: str
    applied: bool
    captured: bool
    reference: str
    payment: Payment | None
    notification: PaymentNotification
    late: bool = False

    @property
    def acknowledge(self) -> bool:
        return self.outcome in (PaymentNotification.Outcome.APPLIED, PaymentNotification.Outcome.DUPLICATE,
                                PaymentNotification.Outcome.OUT_OF_ORDER)


@service
def notification_handle(*, provider: str, headers: Mapping[str, str],
                        body: bytes | str) -> NotificationResult:
    """Verify, log and apply one provider notification.

    The signature is checked before any database access, so a forged or
    malformed notification takes no lock; it is logged as
    ``rejected_signature`` and changes nothing else.  A verified one locks its
    payment row and is applied at most once: a replay is ``duplicate``, a
    different amount ``rejected_amount``, a payment we do not know
    ``unknown_payment``, a state that no longer fits (paid after the provider
    closed it, a second transaction, a close after capture) ``out_of_order``.
    Money paid after we cancelled the payment is applied (the customer paid;
    ``NotificationResult.late`` tells the caller to refund it).  Every notification writes one
    PaymentNotification row.  Does not raise for a bad notification (the log
    row must survive); safe to call inside the caller's service, which then
    marks its order paid in the same transaction.  Queues ``payment.captured``,
    ``payment.failed`` or ``payment.unmatched_capture``.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    log = PaymentNotification(provider=str(provider)[:30],
                              body=raw.decode("utf-8", errors="replace")[:MAX_LOGGED_BODY])
    try:
        adapter = provider_named(provider)
        log.headers = {k: v[:500] for k, v in headers_lower(headers).items() if k in adapter.logged_headers}
        note = adapter.verify_notification(headers, raw)
        if len(note.provider_txn_id) > 64 or len(note.reference) > 64:
            raise InvalidSignature(params={"reason": "bad_payload"})
    except (UnknownProvider, InvalidSignature, ProviderNotConfigured) as exc:
        log.outcome = PaymentNotification.Outcome.REJECTED_SIGNATURE
        log.detail = str(exc.params.get("reason") or exc.code)[:200]
        log.save()
        return NotificationResult(outcome=log.outcome, applied=False, captured=False, reference="",
                                  payment=None, notification=log)
    if note.is_refund:
        return _refund_notification_handle(adapter.name, note, log)
    return _notification_note_apply(adapter.name, note, log)


@service
def notification_apply(*, provider: str, note: Notification, source: str = "query") -> NotificationResult:
    """Apply what the provider said about a payment without notifying it (its answer to our query
    after the notification was lost) exactly as that notification: the same locks, outcomes, log
    row (headers ``{"source": source}``, the answer as body) and outbox rows, so a notification
    arriving later is a duplicate.  ``note`` must come from the provider (an adapter's query), never
    from a client.  Locks the payment row.  Queues what ``notification_handle`` queues.
    """
    log = PaymentNotification(provider=str(provider)[:30], headers={"source": str(source)[:30]},
                              body=json.dumps(note.raw, default=str, ensure_ascii=False)[:MAX_LOGGED_BODY])
    return _notification_note_apply(provider, note, log)


def _notification_note_apply(provider: str, note: Notification, log: PaymentNotification) -> NotificationResult:
    log.provider_txn_id, log.out_trade_no = note.provider_txn_id, note.reference
    log.amount, log.status_reported = note.amount, note.status
    payment = _payment_resolve(provider=provider, provider_txn_id=note.provider_txn_id,
                               reference=note.reference, amount=note.amount, by_order_reference=False)
    was_cancelled = payment is not None and payment.status == Payment.Status.CANCELLED
    log.outcome, log.detail = _notification_apply(payment, note) if payment else (
        PaymentNotification.Outcome.UNKNOWN_PAYMENT, "")
    log.payment = payment
    log.save()
    applied = log.outcome == PaymentNotification.Outcome.APPLIED
    captured = payment is not None and payment.status == Payment.Status.CAPTURED
    return NotificationResult(outcome=log.outcome, applied=applied, captured=captured,
                              reference=payment.reference if payment else "", payment=payment,
                              notification=log, late=applied and captured and was_cancelled)


def _refund_notification_handle(provider: str, note: Notification, log: PaymentNotification) -> NotificationResult:
    """A provider's word on a refund we sent: completes the pending refund, once.

    The log row names the refund (its provider id and our number); the result is never
    ``captured``, so nobody marks an order paid from it.
    """
    log.provider_txn_id, log.out_trade_no = note.provider_refund_id[:64], note.refund_reference[:64]
    log.amount, log.status_reported = note.amount, f"refund {note.status}"[:20]
    outcome = PaymentNotification.Outcome
    refund = (Refund.objects.select_related("payment")
              .filter(number=note.refund_reference, payment__provider=provider).first())
    payment = refund.payment if refund is not None else None
    if refund is None or payment.number != note.reference:
        log.outcome, log.detail = outcome.UNKNOWN_PAYMENT, "refund"
    elif not _refund_amount_fits(note, refund, payment):
        log.outcome, log.detail = outcome.REJECTED_AMOUNT, f"refund: expected {refund.amount}"
    elif note.status == NotificationStatus.PENDING:
        log.outcome, log.detail = outcome.OUT_OF_ORDER, "refund: status with nothing to apply"
    else:
        success = note.status == NotificationStatus.SUCCESS
        done = Refund.Status.SUCCEEDED if success else Refund.Status.FAILED
        if refund.status == done:
            log.outcome, log.detail = outcome.DUPLICATE, "refund"
        elif refund.status != Refund.Status.PENDING:
            log.outcome, log.detail = outcome.OUT_OF_ORDER, f"refund: {note.status} for a {refund.status} refund"
        else:
            refund_complete(refund=refund.pk, provider_refund_id=note.provider_refund_id, success=success,
                            failure="" if success else str(note.raw.get("refund_status", "closed")))
            log.outcome, log.detail = outcome.APPLIED, "refund"
    log.payment = payment
    log.save()
    return NotificationResult(outcome=log.outcome, applied=log.outcome == outcome.APPLIED, captured=False,
                              reference=payment.reference if payment else "", payment=payment, notification=log)


def _refund_amount_fits(note: Notification, refund: Refund, payment: Payment) -> bool:
    """The notified amount is this refund's; or, for a trade total (Alipay), at least this refund
    and at most what the payment has refunded or is refunding."""
    if not note.refund_total:
        return note.amount == refund.amount
    return refund.amount <= note.amount <= payment.refunded_amount + payment.refunding_amount


def _notification_apply(payment: Payment, note: Notification) -> tuple[str, str]:
    """Apply a verified notification to its locked payment; returns (outcome, detail)."""
    outcome = PaymentNotification.Outcome
    if note.status == NotificationStatus.SUCCESS:
        verdict = _capture_verdict(payment, note.provider_txn_id, note.amount, late=True)
        if verdict == _APPLY:
            late = payment.status == Payment.Status.CANCELLED
            detail = "captured after the payment was cancelled" if late else ""
            _capture_apply(payment, note.provider_txn_id)
            return outcome.APPLIED, detail
        if verdict == _DUPLICATE:
            return outcome.DUPLICATE, ""
        if verdict == _AMOUNT:
            return outcome.REJECTED_AMOUNT, f"expected {payment.amount}"
        _unmatched_capture_report(payment, note)
        return outcome.OUT_OF_ORDER, f"success for a {payment.status} payment"
    if note.status == NotificationStatus.FAILED:
        if payment.status == Payment.Status.PENDING:
            _fail_apply(payment)
            return outcome.APPLIED, "closed by the provider"
        if payment.status == Payment.Status.FAILED:
            return outcome.DUPLICATE, ""
        return outcome.OUT_OF_ORDER, f"failure for a {payment.status} payment"
    return outcome.OUT_OF_ORDER, "status with nothing to apply"


def _unmatched_capture_report(payment: Payment, note: Notification) -> None:
    """The provider has money no payment can hold: tell finance, once per provider transaction."""
    seen = PaymentNotification.objects.filter(provider=payment.provider, provider_txn_id=note.provider_txn_id,
                                              outcome=PaymentNotification.Outcome.OUT_OF_ORDER).exists()
    if not seen:
        _payment_emit("payment.unmatched_capture", payment, unmatched_txn_id=note.provider_txn_id,
                      unmatched_amount=note.amount)


# --- refunds ----------------------------------------------------------------------------------


@service
def refund_create(*, payment: Payment | int, amount: Decimal | int | str, reason: str, actor=None,
                  store: Store | None = None, policy: str = "",
                  method: str = Refund.Method.ORIGINAL, overpayment: bool = False) -> Refund:
    """Give back part or all of a captured payment.

    ``method`` "original" returns the money to the tender it came from: at once
    for cash, card and cash on delivery; through the provider for WeChat Pay,
    Alipay and the sandbox (the refund stays pending and is sent after commit).
    "cash" hands cash out at ``store`` (required) whatever the tender was,
    e.g. an online payment refunded at a store counter with a manager's
    approval (the caller checks the approval); ``policy`` records which rule
    applied.  ``overpayment`` marks money captured beyond what the order was due
    (it never counted towards the order; ``orders.audits`` tells it apart).
    The sum of succeeded and pending refunds never exceeds the payment.  Locks the payment row.  Queues ``refund.succeeded`` or
    ``payments.refund_requested``.  Raises InvalidAmount, InvalidPaymentInput,
    PaymentNotFound, PaymentNotCaptured, OverRefund.
    """
    amount = amount_check(amount)
    reason = _text(reason, field="reason", max_length=200)
    policy = _text(policy, field="policy", max_length=300, required=False)
    if method not in Refund.Method.values:
        raise InvalidPaymentInput(code="invalid_method", field="method", params={"method": str(method)})
    if method == Refund.Method.CASH and store is None:
        raise InvalidPaymentInput(_("A cash refund is handed out at a store."), code="store_required",
                                  field="store")
    try:
        payment = locks.payment_for_update(_pk(payment, Payment))
    except Payment.DoesNotExist:
        raise PaymentNotFound() from None
    if payment.status != Payment.Status.CAPTURED:
        raise PaymentNotCaptured(params={"status": payment.status})
    if amount > payment.refundable_amount:
        raise OverRefund(params={"refundable": payment.refundable_amount, "amount": amount})
    kind = tender_for(payment.tender)
    refund = Refund(number=number_next("RF"), payment=payment, amount=amount, method=method, reason=reason,
                    policy_note=policy, store=store, created_by=_actor(actor), overpayment=bool(overpayment))
    if kind.refunds_via_provider(refund):
        refund.save(force_insert=True)
        Payment.objects.filter(pk=payment.pk).update(refunding_amount=F("refunding_amount") + amount)
        outbox_emit(topic=TOPIC_REFUND_REQUESTED, payload={"refund_id": refund.pk}, key=f"refund:{refund.pk}")
    else:
        refund.status = Refund.Status.SUCCEEDED
        refund.completed_at = timezone.now()
        refund.save(force_insert=True)
        kind.refund_start(refund)
        Payment.objects.filter(pk=payment.pk).update(refunded_amount=F("refunded_amount") + amount)
    payment.refresh_from_db(fields=["refunded_amount", "refunding_amount"])
    if refund.status == Refund.Status.SUCCEEDED:
        _refund_emit("refund.succeeded", refund, payment, at_once=True)
    return refund


@service
def refund_complete(*, refund: Refund | int, provider_refund_id: str, success: bool,
                    failure: str = "") -> Refund:
    """Record the provider's answer to a pending refund.

    Success moves the amount from the payment's refunding to its refunded
    total; failure releases it (the amount is refundable again).  Repeating
    the same answer changes nothing.  Locks the payment row, then the refund
    row.  Queues ``refund.succeeded`` or ``refund.failed``.  Raises
    RefundNotFound, InvalidPaymentInput (success without a provider refund
    id), RefundNotPending (a different answer was already recorded),
    DuplicateTransaction.
    """
    refund_id = _pk(refund, Refund)
    payment_id = Refund.objects.filter(pk=refund_id).values_list("payment_id", flat=True).first()
    if payment_id is None:
        raise RefundNotFound()
    provider_refund_id = _text(provider_refund_id or "", field="provider_refund_id", max_length=64,
                               required=bool(success))
    payment = locks.payment_for_update(payment_id)
    refund = locks.refund_for_update(refund_id)
    if refund.status != Refund.Status.PENDING:
        same = (refund.status == Refund.Status.SUCCEEDED and success
                and refund.provider_refund_id == provider_refund_id) or (
                refund.status == Refund.Status.FAILED and not success)
        if same:
            return refund
        raise RefundNotPending(params={"status": refund.status})
    if provider_refund_id and Refund.objects.filter(provider_refund_id=provider_refund_id).exists():
        raise DuplicateTransaction(params={"provider_refund_id": provider_refund_id})
    refund.provider_refund_id = provider_refund_id or None
    refund.completed_at = timezone.now()
    if success:
        refund.status = Refund.Status.SUCCEEDED
        Payment.objects.filter(pk=payment.pk).update(refunding_amount=F("refunding_amount") - refund.amount,
                                                     refunded_amount=F("refunded_amount") + refund.amount)
    else:
        refund.status = Refund.Status.FAILED
        refund.failure = str(failure or "")[:300]
        Payment.objects.filter(pk=payment.pk).update(refunding_amount=F("refunding_amount") - refund.amount)
    refund.save(update_fields=["status", "provider_refund_id", "completed_at", "failure", "updated_at"])
    payment.refresh_from_db(fields=["refunded_amount", "refunding_amount"])
    refund.payment = payment
    _refund_emit("refund.succeeded" if success else "refund.failed", refund, payment)
    return refund


def refund_process(*, refund_id: int) -> Refund:
    """Send a pending provider refund to its provider and record the answer.

    Not a service: it calls the provider, so it refuses to run inside a
    transaction (RuntimeError).  Idempotent: a refund no longer pending is
    returned untouched, and providers treat a resent refund number
    (out_refund_no) as the same refund.  An answer of "still processing"
    leaves the refund pending for the next run.  Raises RefundNotFound and
    whatever the adapter raises for transport trouble (the task retries).  The provider is
    asked about the refund first (``refund_query``), and sent it only when it does not know it.
    """
    _outside_transaction("refund_process")
    refund = Refund.objects.select_related("payment").filter(pk=refund_id).first()
    if refund is None:
        raise RefundNotFound(params={"refund_id": refund_id})
    if refund.status != Refund.Status.PENDING:
        return refund
    adapter = provider_named(refund.payment.provider)
    # Asked first, so a refund whose answer or notification was lost is completed from the
    # provider's record and never sent twice; None: the provider never received it.
    result = adapter.refund_query(refund)
    if result is None:
        result = adapter.refund(refund)
    if result.status == RefundStatus.PENDING:
        return refund
    return refund_complete(refund=refund.pk, provider_refund_id=result.provider_refund_id,
                           success=result.status == RefundStatus.SUCCEEDED, failure=result.message)


def refunds_allocate(*, reference: str, amount: Decimal | int | str) -> list[tuple[Payment, Decimal]]:
    """Split a refund of ``amount`` across the captured payments of ``reference``.

    Policy: provider tenders first (money goes back to the payer's account,
    nothing leaves a drawer), then card, cash on delivery, and cash last;
    within one tender class the most recently captured payment first (reverse
    order of capture).  Each payment gives at most what is still refundable on
    it.  Reads without locks: ``refund_create`` re-checks every part under
    the payment lock.  Raises InvalidAmount, OverRefund (more than the
    reference's refundable total).
    """
    amount = amount_check(amount)
    payments = Payment.objects.filter(reference=reference, status=Payment.Status.CAPTURED)
    ordered = sorted(payments, key=lambda p: (tender_for(p.tender).refund_priority,
                                              -p.captured_at.timestamp(), -p.pk))
    plan: list[tuple[Payment, Decimal]] = []
    remaining = amount
    for payment in ordered:
        part = min(remaining, payment.refundable_amount)
        if part > 0:
            plan.append((payment, part))
            remaining -= part
        if remaining == 0:
            return plan
    raise OverRefund(params={"refundable": amount - remaining, "amount": amount})
