"""Payment codes (付款码) at the counter: the clerk scans the code the customer shows in WeChat or Alipay.

The charge goes to the provider over the network, so it never runs inside a
transaction.  A counter sale therefore pays with a payment code in steps:

1. ``micropay_open`` (a service) opens the pending payment, or finds again the
   one already opened for this sale.  Until the sale exists, the payment's
   reference is the sale's client id (``SALE-<uuid>``), so a double submit or a
   retry after a timeout finds it and never charges twice.
2. ``micropay_charge`` (not a service) asks the adapter to charge the code,
   outside any transaction, and records the answer with
   ``payments.services.payment_answer_apply``.
3. The sale's own transaction takes the captured payment as one of its tenders
   (``micropay_attach``): from then on its reference is the order number, like
   every other payment of the order, and returns refund it to the provider.
4. If the sale cannot be completed after all, ``micropay_release`` refunds the
   captured payment in full through the ordinary provider refund; a charge the
   counter never came back for (the till lost power) is released by the
   ``payments.tasks.micropay_orphans_release`` beat job.

Which adapter charges the codes: the tender's own (``wechat_pay``, ``alipay``)
unless the ``POS_MICROPAY_PROVIDER`` setting names another one, e.g.
``sandbox`` for development, tests and demos.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone

from o2o.db import service
from o2o.ids import number_next
from payments import locks
from payments import services as pay
from payments.exceptions import (
    InvalidPaymentCode,
    PaymentCodeMismatch,
    PaymentCodePending,
    PaymentDeclined,
    PaymentNotFound,
    PaymentNotHeld,
    PaymentNotPending,
    ProviderNotConfigured,
    ProviderUnavailable,
    UnknownTender,
)
from payments.models import Payment, Refund, Tender
from payments.providers import provider_named
from payments.providers.base import MicropayStatus, payment_code_wallet
from payments.tenders import tender_for
from stores.models import Store

SALE_PREFIX = "SALE-"
CODE_TENDERS = (Tender.WECHAT_PAY, Tender.ALIPAY)
_DIGEST_PREFIX = "authcode-sha256:"
# A held charge older than this was not taken by its sale: the sweeper refunds it and the audit flags it.
ORPHAN_AFTER = timedelta(minutes=15)


def sale_reference(client_uuid) -> str:
    """The reference of a payment taken for a counter sale that does not exist yet."""
    return f"{SALE_PREFIX}{uuid.UUID(str(client_uuid))}"


def payment_code_tender(code: str, chosen: str = "") -> tuple[str, str]:
    """(normalized code, tender) of a scanned payment code; ``chosen`` is the clerk's pick, if any.

    Scanners may add spaces; everything else must be digits.  Raises
    InvalidPaymentCode, PaymentCodeMismatch (a WeChat code with Alipay
    chosen, or the other way round), UnknownTender.
    """
    code = "".join(str(code or "").split())
    wallet = payment_code_wallet(code)
    if wallet is None:
        raise InvalidPaymentCode(field="payment_code")
    if chosen:
        if chosen not in CODE_TENDERS:
            raise UnknownTender(params={"tender": str(chosen)}, field="code_tender")
        if chosen != wallet:
            raise PaymentCodeMismatch(field="payment_code", params={"chosen": chosen, "wallet": wallet})
    return code, wallet


def micropay_provider(tender: str) -> str:
    return getattr(settings, "POS_MICROPAY_PROVIDER", "") or tender_for(tender).provider


def _digest(code: str) -> str:
    return _DIGEST_PREFIX + hashlib.sha256(code.encode()).hexdigest()


def _held(reference: str):
    return Payment.objects.filter(reference=reference).order_by("pk")


@service
def micropay_open(*, store: Store, client_uuid, tender: str, amount: Decimal | int | str, code: str,
                  actor=None) -> Payment:
    """The payment-code payment of a counter sale: found again if the sale already has it, else opened.

    Serialized per sale by an advisory lock on its reference.  A captured
    payment still held for the sale with the same tender and amount is
    returned as is: the customer has paid, whatever code they show now.  A
    pending one for the same code is returned too (asking the provider again
    is harmless).  Anything else held for the sale is given up first: a
    pending payment for another code is cancelled, a captured one for
    another amount or tender refunded.  Queues what ``payment_create``,
    ``payment_cancel`` and ``refund_create`` queue.  Raises InvalidAmount,
    UnknownTender, InvalidPaymentInput.
    """
    reference = sale_reference(client_uuid)
    amount = pay.amount_check(amount, field="code_amount")
    if tender not in CODE_TENDERS:
        raise UnknownTender(params={"tender": str(tender)}, field="code_tender")
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [reference])
    digest = _digest(code)
    for payment in locks.payments_for_update(_held(reference).values_list("pk", flat=True)):
        same = payment.tender == tender and payment.amount == amount
        untouched = payment.refunded_amount == payment.refunding_amount == 0
        if payment.status == Payment.Status.CAPTURED and untouched:
            if same:
                return payment
            _refund_all(payment, actor=actor, store=store, reason="sale paid again with another amount")
        elif payment.status == Payment.Status.PENDING:
            if same and payment.payment_code == digest:
                return payment
            pay.payment_cancel(payment=payment, actor=actor)
    payment = Payment(number=number_next("PY"), reference=reference, tender=tender,
                      provider=micropay_provider(tender), amount=amount, store=store,
                      created_by=actor if getattr(actor, "pk", None) else None, payment_code=digest)
    payment.save(force_insert=True)
    return payment


def micropay_charge(*, store: Store, client_uuid, tender: str, amount: Decimal | int | str, code: str,
                    actor=None) -> Payment:
    """Charge the customer's payment code for a counter sale, once; returns the captured payment.

    Not a service: the adapter of a networked provider is called outside any
    transaction (RuntimeError inside one), between the short services that
    open the payment and record the answer.  Raises InvalidPaymentCode,
    PaymentCodeMismatch, PaymentDeclined (nothing taken; ``params["reason"]``
    e.g. ``insufficient_balance``), PaymentCodePending (the customer has to
    confirm on the phone; completing again asks the provider again),
    ProviderNotConfigured, ProviderUnavailable and what ``micropay_open`` raises.
    """
    code, tender = payment_code_tender(code, tender)
    payment = micropay_open(store=store, client_uuid=client_uuid, tender=tender, amount=amount, code=code,
                            actor=actor)
    if payment.status == Payment.Status.CAPTURED:
        return payment
    adapter = provider_named(payment.provider)
    if adapter.calls_network and connection.in_atomic_block:
        raise RuntimeError("micropay_charge calls a payment provider; run it outside any transaction")
    try:
        result = adapter.micropay(payment, code)
    except (ProviderNotConfigured, ProviderUnavailable) as exc:
        # Raised before the request left: nothing was taken, the payment is closed.
        pay.payment_answer_apply(payment=payment.pk, captured=False, failure=exc.code)
        exc.field = "payment_code"
        raise
    if result.status == MicropayStatus.SUCCESS:
        payment, late = pay.payment_answer_apply(payment=payment.pk, captured=True,
                                                 provider_txn_id=result.provider_txn_id)
        if late:  # another submit of the sale gave this payment up meanwhile: give the money back
            micropay_release(payment=payment.pk, store=store, actor=actor, reason="payment code superseded")
            raise PaymentNotPending(field="payment_code", params={"status": Payment.Status.CANCELLED})
        return payment
    if result.status == MicropayStatus.FAILED:
        pay.payment_answer_apply(payment=payment.pk, captured=False, failure=result.reason or result.message)
        raise PaymentDeclined(field="payment_code", params={"reason": result.reason or "declined"})
    raise PaymentCodePending(field="payment_code", params={"payment": payment.number})


@service
def micropay_attach(*, payment: Payment | int, client_uuid, reference: str, tender: str, amount: Decimal,
                    store: Store) -> Payment:
    """Make a captured payment-code payment one of the tenders of the sale ``reference`` (the order number).

    Runs inside the sale's transaction: if the sale rolls back, the payment is
    held for the sale again.  Locks the payment row.  Raises PaymentNotFound,
    PaymentNotHeld (not captured, taken for another sale or store, already
    used, partly refunded, or another tender or amount).
    """
    try:
        payment = locks.payment_for_update(getattr(payment, "pk", payment))
    except Payment.DoesNotExist:
        raise PaymentNotFound() from None
    if (payment.status != Payment.Status.CAPTURED or payment.reference != sale_reference(client_uuid)
            or payment.store_id != store.pk or payment.tender != tender or payment.amount != amount
            or payment.refunded_amount or payment.refunding_amount):
        raise PaymentNotHeld(field="payment_code", params={"payment": payment.number})
    payment.reference = reference
    payment.save(update_fields=["reference"])
    return payment


def _refund_all(payment: Payment, *, actor, store: Store | None, reason: str) -> Refund:
    return pay.refund_create(payment=payment, amount=payment.refundable_amount, reason=reason, actor=actor,
                             store=store, method=Refund.Method.ORIGINAL,
                             policy=f"{payment.tender}: sale not completed, refunded to the original account")


@service
def micropay_release(*, payment: Payment | int, store: Store | None = None, actor=None,
                     reason: str = "sale not completed") -> Refund | None:
    """Refund a captured payment-code payment that no sale took, in full, to the customer's account.

    Does nothing (returns None) for a payment its sale took, or one already
    refunded or not captured.  Locks the payment row.  Queues
    ``payments.refund_requested`` (the provider refund is sent after commit).
    """
    try:
        payment = locks.payment_for_update(getattr(payment, "pk", payment))
    except Payment.DoesNotExist:
        raise PaymentNotFound() from None
    if (payment.status != Payment.Status.CAPTURED or not payment.reference.startswith(SALE_PREFIX)
            or payment.refundable_amount <= 0):
        return None
    return _refund_all(payment, actor=actor, store=store or payment.store, reason=reason[:200])


def micropay_orphans(*, captured_before: datetime, limit: int = 200) -> list[int]:
    """Captured payment-code payments still held for a sale that never took them, oldest first."""
    return list(Payment.objects.filter(reference__startswith=SALE_PREFIX, status=Payment.Status.CAPTURED,
                                       captured_at__lt=captured_before, refunded_amount=0, refunding_amount=0)
                .order_by("pk").values_list("pk", flat=True)[:limit])


def micropay_orphans_release(*, now: datetime | None = None) -> int:
    """Refund every held payment-code charge older than ``ORPHAN_AFTER``.  Idempotent; returns how many."""
    now = now or timezone.now()
    released = 0
    for payment_id in micropay_orphans(captured_before=now - ORPHAN_AFTER):
        released += micropay_release(payment=payment_id, reason="sale not completed (released)") is not None
    return released


PENDING_AFTER = timedelta(minutes=2)  # longer than a till waits for a customer to confirm


def micropay_stale(*, created_before: datetime, limit: int = 200) -> list[int]:
    """Payment-code charges of counter sales still pending: their answer never came back."""
    return list(Payment.objects.filter(reference__startswith=SALE_PREFIX, status=Payment.Status.PENDING,
                                       created_at__lt=created_before)
                .order_by("pk").values_list("pk", flat=True)[:limit])


def micropay_stale_resolve(*, now: datetime | None = None) -> dict[str, int]:
    """Settle payment-code charges left pending, so none is lost: asks each provider, never guesses.

    A charge stays pending when the till's request died with its answer (the web server killed
    while the provider was charging, a timeout).  The provider is asked once (outside any
    transaction); a charge still waiting for the customer is reversed.  One the provider took is
    recorded as captured: a retry of its sale takes it over, else the orphan sweep
    (``micropay_orphans_release``) refunds it in full.  One the provider never took is closed as
    failed.  A provider that cannot answer now is asked again on the next run.  Idempotent;
    returns how many were captured, closed and left.
    """
    now = now or timezone.now()
    counts = {"captured": 0, "closed": 0, "left": 0}
    for payment_id in micropay_stale(created_before=now - PENDING_AFTER):
        payment = Payment.objects.get(pk=payment_id)
        try:
            result = provider_named(payment.provider).micropay_resolve(payment)
        except (ProviderNotConfigured, ProviderUnavailable):
            result = None
        if result is None or result.status == MicropayStatus.PENDING:
            counts["left"] += 1
            continue
        try:
            if result.status == MicropayStatus.SUCCESS:
                pay.payment_answer_apply(payment=payment_id, captured=True, provider_txn_id=result.provider_txn_id)
                counts["captured"] += 1
            else:
                pay.payment_answer_apply(payment=payment_id, captured=False, failure=result.reason or "declined")
                counts["closed"] += 1
        except PaymentNotPending:  # the till's own retry settled it meanwhile: nothing to do
            continue
    return counts
