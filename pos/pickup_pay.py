"""Pay at pickup: an online pickup order left unpaid is paid at the counter, then handed over.

The customer shows the pickup code; the clerk takes what is due with any counter tender:

- cash or a card (``orders.services.order_pay`` with the store, so the cash is in this shift's drawer);
- the customer's payment code (付款码): charged first, outside any transaction, through the configured
  micropay provider (``payments.micropay``), then attached to the order in the payment's transaction;
  if that fails the charge is refunded in full.  The charge is keyed by the order and what it still
  owes, so a double submit charges once;
- the member's wallet or points, only when the customer shows their dynamic member code (as at the
  till: a typed phone number identifies, it does not prove).  Wallet and points may pay part of what
  is due; the order is paid (and ready) once the rest is paid with another tender.

The order becomes paid and ready, and the usual handover gives the goods.  One transaction per step,
holding the open shift like a sale.
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from members import selectors as member_read
from members.codes import member_code_take
from o2o.db import service
from o2o.errors import InvalidInput
from o2o.money import ZERO, money, money_parse
from orders import locks
from orders import services as order_services
from orders.exceptions import MemberRequired, OrderNotPayable, PickupCodeInvalid, WrongStore
from orders.models import Fulfillment, Order, Status
from orders.services import TenderIn
from payments import micropay, shifts
from payments.models import Payment, Tender

log = logging.getLogger(__name__)

CODE = "payment_code"
COUNTER_TENDERS = (Tender.CASH, Tender.UNIONPAY_CARD, CODE, Tender.WALLET, Tender.POINTS)
MEMBER_TENDERS = (Tender.WALLET, Tender.POINTS)
_PICKUP_CHARGE = uuid.UUID("6f1d3c1e-5a0b-4e8e-9a57-7d1c2b0f4a11")


class CashNotEnough(InvalidInput):
    code = "cash_too_low"
    default_message = _("The cash handed over does not cover what is due.")


class PickupTenderNotAllowed(InvalidInput):
    code = "pickup_tender_not_allowed"
    default_message = _("At pickup the order is paid in cash, by card, with a payment code, or from the "
                        "member's wallet or points.")


class PickupAmountInvalid(InvalidInput):
    code = "pickup_amount_invalid"
    default_message = _("Type an amount above zero and no more than what is due.")


class PickupMemberCodeRequired(InvalidInput):
    code = "member_proof_required"
    default_message = _("Points and wallet pay only when the customer shows their dynamic member code "
                        "(in the member app). A phone number or the static member code only earns points.")


def _order_at(code: str, store) -> Order:
    order = Order.objects.filter(pickup_code=(code or "").strip(), fulfillment=Fulfillment.PICKUP).order_by("-id").first()
    if order is None:
        raise PickupCodeInvalid(field="code")
    if order.store_id != store.pk:
        raise WrongStore(field="code")
    return order


def _due(order: Order) -> Decimal:
    return money(order.total - order.paid_total)


@service
def pickup_pay(*, code: str, store, actor, tender: str, cash_tendered: Decimal | None = None,
               card_reference: str = "", payment_id: int | None = None, client_uuid=None) -> tuple[Order, Decimal]:
    """Pay what is due on the unpaid pickup order with this code, at ``store``, in cash or by card, or
    with a payment-code payment already charged for ``client_uuid`` (``payment_id``); (order, change).
    Holds the open shift FOR SHARE; locks the order.  Raises pickup_code_invalid, wrong_store,
    order_not_payable, pickup_tender_not_allowed, cash_too_low, card_reference_required, payment_not_held,
    cash_not_in_unit (cash for an amount the store's cash rounding cannot hand over)."""
    if tender not in (Tender.CASH, Tender.UNIONPAY_CARD, *micropay.CODE_TENDERS) or (
            tender in micropay.CODE_TENDERS and payment_id is None):
        raise PickupTenderNotAllowed(field="tender")
    order = _order_at(code, store)
    shifts.shift_hold(store)
    order = locks.order_for_update(order)
    if order.status != Status.PENDING_PAYMENT:
        raise OrderNotPayable(params={"status": order.status})
    due = _due(order)
    change = money(0)
    if tender == Tender.CASH:
        # The order was priced online, to the fen: its total cannot take a 抹零 discount now, so
        # a store rounding cash takes such an amount by card (the drawer stays countable).
        unit = shifts.cash_unit(store)
        if due % unit:
            raise shifts.CashNotInUnit(field="tender", params={"unit": str(unit)})
        tendered = money(cash_tendered if cash_tendered is not None else due)
        if tendered < due:
            raise CashNotEnough(field="cash_tendered", params={"due": str(due)})
        change = money(tendered - due)
    order = order_services.order_pay(order=order, actor=actor, store=store, client_uuid=client_uuid,
                                     tenders=[TenderIn(tender, due, card_reference=card_reference,
                                                       payment_id=payment_id)])
    if tender == Tender.CASH:
        payment = Payment.objects.filter(reference=order.number, tender=Tender.CASH).order_by("-id").first()
        shifts.cash_tendered_record(payment=payment, tendered=money(due + change))
    return order, change


def pickup_pay_by_code(*, code: str, store, actor, payment_code: str, code_tender: str = "") -> Order:
    """Pay what is due on the pickup order with the customer's payment code (付款码).

    Not a service: the code is charged outside any transaction, then ``pickup_pay`` attaches the
    captured payment.  The charge's key is the order and what it still owes, so a double submit or a
    retry charges once; if the payment cannot be attached, the charge is refunded in full and the
    error raised.  Raises what ``micropay_charge`` and ``pickup_pay`` raise.
    """
    order = _order_at(code, store)
    if shifts.shift_current(store) is None:
        raise shifts.ShiftNotOpen()
    if order.status != Status.PENDING_PAYMENT:
        raise OrderNotPayable(params={"status": order.status})
    due = _due(order)
    key = uuid.uuid5(_PICKUP_CHARGE, f"{order.number}:{order.paid_total}")
    captured = micropay.micropay_charge(store=store, client_uuid=key, tender=code_tender, amount=due,
                                        code=payment_code, actor=actor)
    try:
        paid, _change = pickup_pay(code=code, store=store, actor=actor, tender=captured.tender,
                                   payment_id=captured.pk, client_uuid=key)
    except Exception:
        try:
            micropay.micropay_release(payment=captured.pk, store=store, actor=actor, reason="pickup not paid")
        except Exception:  # the beat sweeper (micropay_orphans_release) refunds it later
            log.exception("could not release payment %s; the orphan sweeper will refund it", captured.number)
        raise
    return paid


@service
def pickup_pay_member(*, code: str, store, actor, tender: str, member_code: str, amount: str = "",
                      points: str = "") -> Order:
    """Pay (part of) what is due on the pickup order from the member's wallet or points.

    The customer proves it is them with their dynamic member code, which must be the order's
    member's.  ``amount`` (wallet, yuan; empty: all that is due) or ``points`` (whole points; empty:
    as many as pay what is due).  Holds the open shift FOR SHARE; locks the order, then the member's
    ledgers.  Raises pickup_code_invalid, wrong_store, order_not_payable, member_required,
    member_proof_required, the member code errors, pickup_amount_invalid, points_cap_exceeded,
    points_insufficient, wallet_insufficient, points_amount_not_whole.
    """
    if tender not in MEMBER_TENDERS:
        raise PickupTenderNotAllowed(field="tender")
    order = _order_at(code, store)
    shifts.shift_hold(store)
    order = locks.order_for_update(order)
    if order.status != Status.PENDING_PAYMENT:
        raise OrderNotPayable(params={"status": order.status})
    if order.member_id is None:
        raise MemberRequired(field="member_code")
    if not (member_code or "").strip():
        raise PickupMemberCodeRequired(field="member_code")
    member_code_take(member_code, member=order.member_id)
    due = _due(order)
    value = _member_amount(tender, due, amount=amount, points=points)
    return order_services.order_pay_member_tenders(order=order, tenders=[TenderIn(tender, value)], actor=actor,
                                                   store=store)


def _member_amount(tender: str, due: Decimal, *, amount: str, points: str) -> Decimal:
    try:
        if tender == Tender.POINTS:
            value = member_read.points_value(int(points)) if (points or "").strip() else due
        else:
            value = money_parse(amount, positive=True) if (amount or "").strip() else due
    except ValueError:
        raise PickupAmountInvalid(field="points" if tender == Tender.POINTS else "amount",
                                  params={"due": str(due)}) from None
    if value <= ZERO or value > due:
        raise PickupAmountInvalid(field="points" if tender == Tender.POINTS else "amount", params={"due": str(due)})
    return value
