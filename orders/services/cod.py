"""Cash on delivery as a flow: the customer chooses it, the order ships unpaid (it no longer expires),
and the courier's remittance, by tracking number, captures the payment and pays the order.

A remittance is recorded once per tracking number (``CodRemittance.tracking_number`` is unique and is
also the payment's transaction id), so the same remittance entered by hand and found again in the
courier's file pays the order once.  A batch file is all or nothing: every row is tried in its own
savepoint so every bad row is reported with its line, and if any row is bad the whole file is rolled
back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inventory import services as stock
from o2o.db import service
from o2o.errors import DomainError, InvalidInput
from o2o.money import money
from orders import locks, membership
from orders.events import order_emit, order_event
from orders.exceptions import (
    CodAlreadyRemitted,
    CodAmountMismatch,
    CodBatchRejected,
    CodNotAvailable,
    CodNotAwaiting,
    CodTrackingUnknown,
    OrderNotPayable,
)
from orders.models import CodRemittance, Fulfillment, Order, OrderEvent, OrderLine, Shipment, Status
from orders.services.shared import _user, return_window_end
from payments import services as pay
from payments.models import Payment, Tender
from payments.tenders import tender_for

COD_FULFILMENTS = (Fulfillment.SHIP_WAREHOUSE, Fulfillment.SHIP_STORE)
COD_PROVIDER = tender_for(Tender.CASH_ON_DELIVERY).provider


def cod_pending_payment(order: Order) -> Payment | None:
    """The order's cash-on-delivery payment still waiting for the courier's money, if any."""
    return (Payment.objects.filter(reference=order.number, tender=Tender.CASH_ON_DELIVERY,
                                   status=Payment.Status.PENDING).order_by("id").first())


def cod_awaiting(order: Order) -> bool:
    """True for an unpaid order whose customer pays the courier: it may ship, and it does not expire."""
    return order.paid_at is None and cod_pending_payment(order) is not None


@service
def order_cod_choose(*, order: Order | int, actor=None) -> Payment:
    """The customer pays what is due in cash to the courier.

    Opens a pending COD payment for what is due (the same choice again returns it), cancels any
    pending provider payment, and takes the order and its stock holds off the expiry clock: the
    order now waits for shipping, not for payment.  Locks the order, then the payments it cancels.
    Raises order_not_payable, cod_not_available (a pickup order is paid at the counter).
    """
    order = locks.order_for_update(order)
    if order.status != Status.PENDING_PAYMENT:
        raise OrderNotPayable(params={"status": order.status})
    if order.fulfillment not in COD_FULFILMENTS:
        raise CodNotAvailable(field="tender")
    due = money(order.total - order.paid_total)
    current = cod_pending_payment(order)
    if current is not None and current.amount == due:
        return current
    for payment in Payment.objects.filter(reference=order.number, status=Payment.Status.PENDING).order_by("id"):
        pay.payment_cancel(payment=payment, actor=actor)
    payment = pay.payment_create(reference=order.number, tender=Tender.CASH_ON_DELIVERY, amount=due, actor=actor,
                                 member=order.member_id)
    Order.objects.filter(pk=order.pk).update(expires_at=None, updated_at=timezone.now())
    stock.reservations_confirm(reference=order.number)
    order_event(order, OrderEvent.Kind.PAYMENT, actor=actor, reason="cash on delivery chosen",
                data={"payment_id": payment.pk, "amount": str(due)})
    return payment


def _shipped_cod_order(tracking_number: str) -> Order:
    order_ids = set(Shipment.objects.filter(tracking_number=tracking_number, status=Shipment.Status.SHIPPED)
                    .values_list("order_id", flat=True))
    if len(order_ids) != 1:
        # Unknown, or one number on parcels of two orders: nobody can tell whose money it is.
        raise CodTrackingUnknown(field="tracking_number", params={"tracking_number": tracking_number})
    return locks.order_for_update(order_ids.pop())


@service
def cod_remittance_capture(*, tracking_number: str, amount: Decimal, remitted_on: date, actor=None,
                           source: str = CodRemittance.Source.SINGLE, file_name: str = "",
                           file_line: int | None = None) -> tuple[CodRemittance, bool]:
    """Record the courier's remittance for the parcel ``tracking_number``: capture the order's COD payment.

    Returns (remittance, applied_now); a tracking number already remitted returns its remittance and
    False and changes nothing (the faces report it as already remitted).  The order becomes paid (its
    status stays shipped); once every unit was delivered, points and the guide's commission accrue,
    frozen for the return window, as they do at any handover.  Locks the order, then the payment.
    Queues payment.captured and order.paid.  Raises invalid_input (no tracking number, no amount),
    cod_tracking_unknown, cod_not_awaiting, cod_already_remitted (the order was paid by another
    remittance), cod_amount_mismatch.
    """
    tracking_number = (tracking_number or "").strip()
    if not tracking_number or len(tracking_number) > 50:
        raise InvalidInput(message=CodTrackingUnknown.default_message, code="cod_tracking_required",
                           field="tracking_number")
    if not isinstance(amount, Decimal) or amount <= 0:
        raise CodAmountMismatch(field="amount", params={"received": str(amount)})
    done = CodRemittance.objects.filter(tracking_number=tracking_number).first()
    if done is not None:
        return done, False
    order = _shipped_cod_order(tracking_number)
    # Checked again under the order lock: a racing twin of this remittance has committed by now.
    done = CodRemittance.objects.filter(tracking_number=tracking_number).first()
    if done is not None:
        return done, False
    payment = cod_pending_payment(order)
    if payment is None or order.paid_at is not None:
        if order.cod_remittances.exists():
            raise CodAlreadyRemitted(field="tracking_number", params={"order": order.number})
        raise CodNotAwaiting(field="tracking_number", params={"order": order.number, "status": order.status})
    if money(amount) != payment.amount:
        raise CodAmountMismatch(field="amount", params={"expected": str(payment.amount), "received": str(amount)})
    payment, _applied = pay.payment_capture(provider=COD_PROVIDER, provider_txn_id=tracking_number,
                                            reference=payment.number, amount=payment.amount)
    remittance = CodRemittance.objects.create(
        tracking_number=tracking_number, order=order, payment=payment, amount=payment.amount,
        remitted_on=remitted_on, source=source, file_name=file_name[:200], file_line=file_line,
        created_by=_user(actor))
    _order_paid_by_courier(order, payment, remittance, actor=actor)
    return remittance, True


def _order_paid_by_courier(order: Order, payment: Payment, remittance: CodRemittance, *, actor) -> None:
    paid_total = money(order.paid_total + payment.amount)
    order.paid_total, order.paid_at = paid_total, timezone.now()
    # A new version: receivers drop events older than what they hold, and order.paid follows order.shipped.
    order.version = (order.version or 0) + 1
    Order.objects.filter(pk=order.pk).update(paid_total=paid_total, paid_at=order.paid_at, updated_at=order.paid_at,
                                             version=F("version") + 1)
    order_event(order, OrderEvent.Kind.PAYMENT, actor=actor, reason="cash on delivery remitted",
                data={"payment_id": payment.pk, "amount": str(payment.amount),
                      "tracking_number": remittance.tracking_number, "remitted_on": str(remittance.remitted_on)})
    order_emit(order, "order.paid", {"paid_total": str(paid_total)})
    membership.on_paid(order)
    if order.handed_over_at is not None:
        membership.on_handed_over(order, list(OrderLine.objects.filter(order=order).order_by("line_no")),
                                  frozen_until=return_window_end(order))


@dataclass(frozen=True)
class CodRow:
    """One row of a courier's remittance file, parsed by the face; ``error`` when it could not be."""

    line: int
    tracking_number: str = ""
    amount: Decimal | None = None
    remitted_on: date | None = None
    error: str = ""


@dataclass(frozen=True)
class CodRowError:
    line: int
    tracking_number: str
    code: str
    message: str


@service
def cod_remittances_import(*, rows: Sequence[CodRow], file_name: str, actor=None) -> list[CodRemittance]:
    """Record a courier's remittance file, all or nothing.

    Every row is tried (each in a savepoint), so one pass reports every bad row with its line;
    a row already remitted (earlier, or higher up in this file) is a bad row.  If any row is bad,
    ``CodBatchRejected`` carries the list (``params["rows"]``) and the whole file is rolled back.
    Locks what ``cod_remittance_capture`` locks, row by row.
    """
    if not rows:
        raise CodBatchRejected(message=_("The file has no data rows."), params={"rows": []})
    errors: list[CodRowError] = []
    recorded: list[CodRemittance] = []
    for row in rows:
        if row.error:
            errors.append(CodRowError(row.line, row.tracking_number, "cod_row_invalid", row.error))
            continue
        try:
            with transaction.atomic():
                remittance, applied = cod_remittance_capture(
                    tracking_number=row.tracking_number, amount=row.amount, remitted_on=row.remitted_on,
                    actor=actor, source=CodRemittance.Source.BATCH, file_name=file_name, file_line=row.line)
        except DomainError as exc:
            errors.append(CodRowError(row.line, row.tracking_number, exc.code, str(exc.message)))
            continue
        if not applied:
            errors.append(CodRowError(row.line, row.tracking_number, CodAlreadyRemitted.code,
                                      str(CodAlreadyRemitted.default_message)))
            continue
        recorded.append(remittance)
    if errors:
        raise CodBatchRejected(params={"rows": [asdict(e) for e in errors]})
    return recorded
