"""Payment state: tenders captured at once, provider payments started and notified (applied once;
over-captures refunded), cancellation and expiry of unpaid orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Sequence

from django.utils import timezone

from inventory import services as stock
from o2o.db import service
from o2o.money import ZERO, money
from orders import locks, membership
from orders.events import order_event, order_transition, order_version_bump
from orders.exceptions import (
    CodChosen,
    GoodsInTransit,
    InvalidOrderTransition,
    MemberRequired,
    OrderNotPayable,
    PaymentMismatch,
)
from orders.models import (
    Fulfillment,
    Order,
    OrderEvent,
    Status,
)
from payments import selectors as pay_read
from payments import micropay
from payments import services as pay
from payments.models import Payment, PaymentNotification, Tender
from payments.providers.base import Notification
from payments.tenders import tender_for
from stores.models import Store
from orders.services.shared import (
    TenderIn,
    _check_points_cap,
    _payments_cancel_pending,
    _refund,
)
from orders.services.fulfilment import (
    _pickup_transfer_create,
)


@service
def order_pay(*, order: Order | int, tenders: Sequence[TenderIn], actor=None, store: Store | None = None,
              client_uuid=None) -> Order:
    """Pay an online order with tenders captured at once (card, cash, wallet or points at pickup).

    Provider tenders (WeChat Pay, Alipay) are paid by their notification, see ``order_payment_notify``,
    or, at the counter, by the customer's payment code already charged for ``client_uuid``: a tender
    with ``payment_id`` takes that captured payment (``payments.micropay.micropay_attach``).
    Raises order_not_payable, payment_mismatch, invalid_amount, payment_not_held.
    """
    order = locks.order_for_update(order)
    if order.status != Status.PENDING_PAYMENT:
        raise OrderNotPayable(params={"status": order.status})
    due = money(order.total - order.paid_total)
    if money(sum((t.amount for t in tenders), ZERO)) != due:
        raise PaymentMismatch(params={"due": str(due)})
    _check_points_cap(order.total, tenders)
    for t in tenders:
        if t.payment_id is not None:
            micropay.micropay_attach(payment=t.payment_id, client_uuid=client_uuid, reference=order.number,
                                     tender=t.tender, amount=money(t.amount), store=store)
            continue
        pay.payment_create(reference=order.number, tender=t.tender, amount=t.amount, store=store, actor=actor,
                           card_reference=t.card_reference, member=order.member_id)
    _order_settle_payments(order, actor=actor, store=store)
    return order


@service
def order_pay_member_tenders(*, order: Order | int, tenders: Sequence[TenderIn], actor=None,
                             store: Store | None = None) -> Order:
    """Take part (or all) of an unpaid online order from the member's points or wallet.

    The rest is paid at the provider (``order_payment_start`` asks for what is still due).
    A cancelled or expired order gives these back through the refund of their tender.
    Locks the order, then the member's ledgers (through the tenders).
    Raises order_not_payable, member_required, payment_mismatch (more than is due),
    points_cap_exceeded, points_insufficient, wallet_insufficient.
    """
    order = locks.order_for_update(order)
    if order.status != Status.PENDING_PAYMENT:
        raise OrderNotPayable(params={"status": order.status})
    if order.member_id is None:
        raise MemberRequired(field="member")
    due = money(order.total - order.paid_total)
    if money(sum((t.amount for t in tenders), ZERO)) > due:
        raise PaymentMismatch(params={"due": str(due)})
    _check_points_cap(order.total, tenders)
    for t in tenders:
        pay.payment_create(reference=order.number, tender=t.tender, amount=t.amount, actor=actor,
                           member=order.member_id, store=store)
    _order_settle_payments(order, actor=actor, store=store)
    return order


@service
def order_payment_start(*, order: Order | int, tender: str, actor=None, method: str = "qr", openid: str = "",
                        buyer_id: str = "", locked: bool = False) -> Payment:
    """Open the order's provider payment for what is still due, or return the one already open.

    ``method``: ``qr`` (a QR code / payment URL), ``jsapi`` (inside WeChat, with the payer's
    ``openid``) or ``mini_program`` (WeChat with ``openid``, Alipay with ``buyer_id``); checked
    before anything is written.  At most one provider payment of an order is live: a QR start
    with the tender of the pending QR payment, for the same amount, returns it (a customer who
    presses pay on two phones gets one payment, not two); any other start supersedes the pending
    provider payments (cancels them) before opening its own (a wallet payment is bound to its
    payer, so it is never handed to another start).  If the provider still captures a superseded
    payment, ``order_payment_notify`` refunds what the order was not due.  Locks the order row,
    then the payment rows it cancels.  Raises order_not_payable, cod_chosen (the customer pays the
    courier), what ``payments.services.payment_method_check`` and ``payment_create`` raise.
    ``locked``: ``order`` is the row the caller locked in this transaction (``locks.order_for_update``)
    and changed nothing of since; it is used as it is, not locked and read again.
    """
    pay.payment_method_check(tender=tender, method=method, openid=openid, buyer_id=buyer_id)
    order = order if locked and isinstance(order, Order) else locks.order_for_update(order)
    if order.status != Status.PENDING_PAYMENT:
        raise OrderNotPayable(params={"status": order.status})
    pending = list(pay_read.payments_for_reference(reference=order.number).filter(status=Payment.Status.PENDING))
    if any(p.tender == Tender.CASH_ON_DELIVERY for p in pending):  # cod_pending_payment, from the same read
        raise CodChosen(field="tender")
    due = money(order.total - order.paid_total)
    kind = tender_for(tender)
    for payment in [p for p in pending if tender_for(p.tender).provider_backed]:
        if method == "qr" and payment.method in ("", "qr") and payment.tender == kind.tender and payment.amount == due:
            return payment
        pay.payment_cancel(payment=payment, actor=actor)
    return pay.payment_create(reference=order.number, tender=tender, amount=due, actor=actor, method=method)


def _payments_pending_provider(order: Order) -> list[Payment]:
    return [p for p in pay_read.payments_for_reference(reference=order.number).filter(status=Payment.Status.PENDING)
            if tender_for(p.tender).provider_backed]


@service
def order_payment_notify(*, provider: str, headers: dict[str, str], body: bytes) -> Order | None:
    """Apply a provider notification exactly once and, when it completes payment, mark the order paid.

    Money captured beyond what the order is due is refunded at once to the
    original account, as an ``overpayment`` refund recorded on the order: a
    capture on an order that is already paid (the customer paid a superseded
    payment too), or on a cancelled or expired order (rather than resurrecting it).
    Locks the payment row (in ``notification_handle``), then the order row.
    """
    return _order_notified(provider, headers, body)[0]


@service
def order_payment_notification(*, provider: str, headers: dict[str, str],
                               body: bytes) -> tuple[Order | None, PaymentNotification]:
    """``order_payment_notify``, also returning the notification's log row (its outcome is what the
    provider is answered), so the caller need not look the row up again."""
    return _order_notified(provider, headers, body)


def _order_notified(provider: str, headers: dict[str, str], body: bytes) -> tuple[Order | None, PaymentNotification]:
    result = pay.notification_handle(provider=provider, headers=headers, body=body)
    return _order_after_notification(result), result.notification


@service
def order_payment_query_apply(*, provider: str, note: Notification) -> Order | None:
    """Apply the provider's answer to our query about a payment whose notification was lost, exactly
    as ``order_payment_notify`` applies the notification (``payments.services.notification_apply``):
    captured once, the order paid, an over-capture on a closed or already paid order refunded.
    Locks the payment row, then the order row.
    """
    return _order_after_notification(pay.notification_apply(provider=provider, note=note, source="query"))


def _order_after_notification(result: pay.NotificationResult) -> Order | None:
    if not (result.applied and result.captured):
        return None
    order = locks.order_for_update_by_number(result.reference)
    if order is None:
        return None
    if order.status == Status.PENDING_PAYMENT:
        _order_settle_payments(order, actor=None, store=None, captured_now=result.payment)
    elif order.status in {Status.CANCELLED, Status.EXPIRED}:
        _overpayment_refund(order, result.payment, result.payment.amount, why="late payment refunded",
                            reason="payment after cancellation",
                            policy="late payment on a closed order refunded to the original account")
    else:
        _overpayment_refund(order, result.payment, result.payment.amount, why="second payment refunded",
                            reason="order already paid",
                            policy="payment beyond what the order was due refunded to the original account")
    return order


def _overpayment_refund(order: Order, payment: Payment, amount: Decimal, *, why: str, reason: str,
                        policy: str) -> None:
    """Give back ``amount`` of ``payment`` that the order was not due, and record it on the order."""
    pay.refund_create(payment=payment, amount=amount, reason=reason, policy=policy, overpayment=True)
    order_event(order, OrderEvent.Kind.PAYMENT, reason=why,
                data={"payment_id": payment.pk, "amount": str(amount)})


def _order_settle_payments(order: Order, *, actor, store, captured_now: Payment | None = None) -> None:
    """Recompute the captured total; when it covers the order, pay it and confirm its stock.

    What ``captured_now`` brought beyond the order total is refunded as an overpayment;
    once paid, the order's other pending provider payments are cancelled (nothing more is due).
    """
    captured = pay_read.reference_totals(reference=order.number).captured
    over = money(captured - order.total)
    if over > 0 and captured_now is not None:
        _overpayment_refund(order, captured_now, min(over, captured_now.amount), why="overpayment refunded",
                            reason="paid more than due",
                            policy="payment beyond what the order was due refunded to the original account")
        captured = money(captured - min(over, captured_now.amount))
    changed = captured != order.paid_total
    order.paid_total = captured
    if captured < order.total:
        Order.objects.filter(pk=order.pk).update(paid_total=captured, updated_at=timezone.now())
        if changed:
            order_version_bump(order)  # part paid: the paid total a partner reads moved
        return
    order.paid_at = timezone.now()
    Order.objects.filter(pk=order.pk).update(paid_total=captured, paid_at=order.paid_at, updated_at=order.paid_at)
    for pending in _payments_pending_provider(order):
        pay.payment_cancel(payment=pending, actor=actor)
    order_transition(order, Status.PAID, actor=actor, store=store, emit="order.paid",
                     data={"paid_total": str(captured)})
    membership.on_paid(order)
    stock.reservations_confirm(reference=order.number)
    if order.fulfillment == Fulfillment.PICKUP:
        if order.needs_transfer:
            _pickup_transfer_create(order, actor=actor)
        else:
            order_transition(order, Status.READY_FOR_PICKUP, actor=actor, store=order.store,
                             emit="order.ready_for_pickup")


@service
def order_cancel(*, order: Order | int, actor=None, reason: str = "") -> Order:
    """Cancel before the goods leave: release held stock; refund what was paid to the original tenders."""
    order = locks.order_for_update(order)
    if order.status not in {Status.PENDING_PAYMENT, Status.PAID, Status.READY_FOR_PICKUP}:
        raise InvalidOrderTransition(params={"from": order.status, "to": Status.CANCELLED})
    if stock.transfers_in_transit_for(reference=order.number):
        raise GoodsInTransit(params={"order": order.number})
    stock.reservations_release(reference=order.number, actor=actor)
    for transfer in stock.transfers_open_for(reference=order.number):
        stock.transfer_cancel(transfer=transfer, actor=actor)
    _payments_cancel_pending(order, actor=actor)
    refundable = money(order.paid_total - order.refunded_total)
    if refundable > 0:
        _refund(order, refundable, actor=actor, store=None, reason=reason or "order cancelled")
    membership.coupon_restore(order, actor=actor)
    order_transition(order, Status.CANCELLED, actor=actor, reason=reason, emit="order.cancelled")
    return order


def orders_expire(*, now=None, batch_size: int = 200) -> int:
    """Expire unpaid online orders past their pay-by time, releasing their stock.  Idempotent."""
    now = now or timezone.now()
    ids = list(Order.objects.filter(status=Status.PENDING_PAYMENT, expires_at__lte=now)
               .order_by("id").values_list("id", flat=True)[:batch_size])
    expired = 0
    for order_id in ids:
        expired += _order_expire(order_id)
    return expired


@service
def _order_expire(order_id: int) -> int:
    order = locks.order_for_update(order_id)
    if order.status != Status.PENDING_PAYMENT:
        return 0
    stock.reservations_release(reference=order.number, expired=True)
    _payments_cancel_pending(order, actor=None)
    # Points or wallet taken at placement go back to the member.
    _refund(order, money(order.paid_total - order.refunded_total), actor=None, store=None,
            reason="order expired unpaid")
    membership.coupon_restore(order, actor=None)
    order_transition(order, Status.EXPIRED, reason="not paid in time", emit="order.cancelled")
    return 1


@service
def order_refund_settled(*, reference: str, refund_id: int, succeeded: bool) -> Order | None:
    """A provider finished a refund of one of the order's payments: move the order's version and
    queue ``order.refunded`` (with the refund and its outcome).  Locks the order row.  Idempotent per
    refund and outcome: a second call for the same one changes nothing."""
    order = Order.objects.filter(number=reference).first()
    if order is None:
        return None
    order = locks.order_for_update(order)
    reason = "refund succeeded" if succeeded else "refund failed"
    if OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.PAYMENT, reason=reason,
                                 data__refund_id=refund_id).exists():
        return order
    order_event(order, OrderEvent.Kind.PAYMENT, reason=reason, emit="order.refunded",
                data={"refund_id": refund_id, "refund_status": "succeeded" if succeeded else "failed"})
    return order
