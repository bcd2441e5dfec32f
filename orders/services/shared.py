"""What every stage of the order book shares: the inputs (lines, tenders), idempotency lookups,
the return window, staff checks and refunds to the original tenders."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, Sequence

from django.db.models import F
from django.utils import timezone

from inventory import services as stock
from members.exceptions import PointsCapExceeded
from members.selectors import points_redeem_cap, points_value
from o2o.errors import InvalidInput
from o2o.money import FEN, ZERO, allocate, money, round_to_unit
from orders import allocation
from orders.exceptions import (
    DuplicateDifferentPayload,
    WrongStore,
)
from orders.models import (
    Channel,
    Order,
    OrderLine,
    ReturnLine,
    Status,
)
from payments import selectors as pay_read
from payments import services as pay
from payments import shifts
from payments.models import Payment, Refund
from payments.tenders import tender_for
from stores.models import Store


ONLINE_CHANNELS = {Channel.WEB, Channel.MINI_PROGRAM, Channel.MARKETPLACE}


HANDED_OVER = {Status.PICKED_UP, Status.COMPLETED, Status.SHIPPED, Status.PARTIALLY_SHIPPED}


@dataclass(frozen=True)
class LineIn:
    sku_id: int
    qty: int


@dataclass(frozen=True)
class TenderIn:
    tender: str
    amount: Decimal
    card_reference: str = ""
    # A payment-code payment already captured for this sale (payments.micropay), taken as this tender.
    payment_id: int | None = None


@dataclass
class PlaceResult:
    order: Order
    created: bool
    payments: list[Payment] = field(default_factory=list)


def _payload_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _demand(lines: Sequence[LineIn]) -> dict[int, int]:
    if not lines:
        raise InvalidInput(message="An order needs at least one line.", code="no_lines", field="lines")
    demand: dict[int, int] = {}
    for line in lines:
        if isinstance(line.qty, bool) or not isinstance(line.qty, int) or line.qty <= 0:
            raise stock.InvalidQuantity(params={"qty": str(line.qty)}, field="lines")
        demand[line.sku_id] = demand.get(line.sku_id, 0) + line.qty
    return demand


def _existing(*, lookup: dict[str, Any], request_hash: str) -> Order | None:
    order = Order.objects.filter(**lookup).first()
    if order is None:
        return None
    if order.request_hash != request_hash:
        raise DuplicateDifferentPayload(params={"order": order.number})
    return order


def _check_points_cap(total: Decimal, tenders: Sequence[TenderIn]) -> None:
    """Points may pay at most the programme's share of an order."""
    by_points = money(sum((t.amount for t in tenders if t.tender == "points"), ZERO))
    if by_points > 0 and by_points > points_value(points_redeem_cap(order_amount=total)):
        raise PointsCapExceeded(params={"cap": str(points_value(points_redeem_cap(order_amount=total)))})


def _check_store_staff_for_warehouse(actor, warehouse_id: int) -> None:
    from stores.selectors import staff_store_ids

    store = Store.objects.filter(warehouse_id=warehouse_id).first()
    if store is None or actor is None:
        return  # warehouse shipments are confirmed by HQ/warehouse staff or a partner system
    if store.pk not in staff_store_ids(actor):
        raise WrongStore(message="Only staff of the shipping store can confirm this shipment.")


def _check_store_staff(actor, store: Store) -> None:
    from stores.selectors import staff_store_ids

    if actor is not None and store.pk not in staff_store_ids(actor):
        raise WrongStore(message="You are not staff of this store.")


@dataclass(frozen=True)
class ReturnLineIn:
    order_line_id: int
    qty: int
    condition: str = ReturnLine.Condition.SELLABLE


def return_window_end(order: Order):
    """The end of the order's return window: handed-over time + the channel's window days."""
    start = order.handed_over_at or order.paid_at or order.created_at
    return start + timedelta(days=allocation.channel_config(order.channel).return_window_days)


def line_refund_amount(line: OrderLine, already_returned: int, qty: int) -> Decimal:
    """The exact refund for units ``already_returned+1 … +qty`` of a line, allocated per unit to the fen,
    never more than the line has left unrefunded: an earlier return whose cash was rounded up (half up
    to the store's unit) already paid part of the later units' value."""
    per_unit = allocate(line.line_total, [Decimal(1)] * line.qty)
    share = money(sum(per_unit[already_returned:already_returned + qty], ZERO))
    return min(share, money(max(line.line_total - line.refunded_amount, ZERO)))


def _refunds_proportional(order: Order, amount: Decimal) -> list[tuple[Payment, Decimal]]:
    """Split a refund across the order's captured payments in proportion to what each can still refund.

    So a return of half an order paid half in points and half in cash gives back half
    the points and half the cash; the parts add up to ``amount`` to the fen.
    """
    payments = [p for p in pay_read.payments_for_reference(reference=order.number)
                .filter(status=Payment.Status.CAPTURED) if p.refundable_amount > 0]
    parts = allocate(amount, [p.refundable_amount for p in payments]) if payments else []
    if not payments or sum(parts, ZERO) != amount or any(part > p.refundable_amount
                                                        for p, part in zip(payments, parts)):
        # Let payments say why (over-refund) with its own error.
        return pay.refunds_allocate(reference=order.number, amount=amount)
    return [(p, part) for p, part in zip(payments, parts) if part > 0]


def _payments_cancel_pending(order: Order, *, actor) -> None:
    for payment in pay_read.payments_for_reference(reference=order.number).filter(status=Payment.Status.PENDING):
        pay.payment_cancel(payment=payment, actor=actor)


def _refund_method(payment: Payment, store: Store | None) -> str:
    # Cash (and exchange credit, which no account stands behind) is paid out where the customer stands.
    if payment.tender in ("cash", "exchange_credit") and store is not None:
        return Refund.Method.CASH
    return Refund.Method.ORIGINAL


def refund_policy_for(payment: Payment, store: Store | None) -> str:
    """The refund policy: money always goes back to the tender it came from.

    An online (provider) payment returned at a store counter is refunded to the
    customer's original WeChat Pay / Alipay account, not paid out of the drawer;
    cash is paid out at the receiving store; a card is credited back to the card.
    """
    kind = tender_for(payment.tender)
    where = f" at store {store.code}" if store else ""
    if payment.tender == "exchange_credit":
        return f"exchange credit: paid out in cash{where}"
    if kind.provider_backed:
        return f"{payment.tender}: refunded to the original account{where}"
    return f"{payment.tender}: refunded to the original tender{where}"


@dataclass(frozen=True)
class RefundDone:
    """What ``_refund`` paid: ``refunded`` left the store (to tenders); ``rounding`` is the part of
    the value not paid out because cash goes back in the store's unit (negative: paid beyond it)."""

    policy: str
    refunded: Decimal
    rounding: Decimal = ZERO


_MEMBER_TENDERS = ("points", "wallet")


def _refund_plan(order: Order, amount: Decimal, *, store: Store | None, room: Decimal | None,
                 everything: bool) -> list[tuple[Payment, Decimal]]:
    """Split a refund of ``amount`` in the documented order (docs/returns.md, "Refund order"):

    1. points and wallet go back to the member: their proportional share, to the fen;
    2. cash (and exchange credit, paid out in cash) is its share rounded to the store's cash unit
       (half up), never beyond what the cash payments can still refund, nor beyond the value
       (``room``) the returned lines still have;
    3. the remainder tenders (provider, card, cash on delivery, marketplace) take their share plus
       what the cash rounding moved, within what each can still refund;
    what nothing can take is the rounding (the caller records it on the return).  ``everything``:
    the order is now fully returned, so every payment gives back all it still holds.
    """
    unit = shifts.cash_unit(store) if store is not None else FEN
    if everything and unit != FEN:
        every = [(p, round_to_unit(p.refundable_amount, unit, down=True)
                  if _refund_method(p, store) == Refund.Method.CASH else p.refundable_amount)
                 for p in pay_read.payments_for_reference(reference=order.number)
                 .filter(status=Payment.Status.CAPTURED).order_by("pk")]
        return [(p, part) for p, part in every if part > 0]
    parts = _refunds_proportional(order, amount)
    cash = [(p, part) for p, part in parts if _refund_method(p, store) == Refund.Method.CASH]
    if unit == FEN or not cash:
        return parts
    share = money(sum((part for _, part in cash), ZERO))
    target = round_to_unit(share, unit)
    if room is not None:
        target = min(target, round_to_unit(money(share + room), unit, down=True))
    cash_parts: dict[int, Decimal] = {}
    left = target
    for p, _part in sorted(cash, key=lambda item: -item[1]):
        give = min(left, round_to_unit(p.refundable_amount, unit, down=True))
        cash_parts[p.pk], left = give, money(left - give)
    moved = money(share - (target - left))  # > 0: the cash pays less than its share
    plan = []
    for p, part in parts:
        if p.pk in cash_parts:
            part = cash_parts[p.pk]
        elif p.tender not in _MEMBER_TENDERS and moved:
            new = min(max(money(part + moved), ZERO), p.refundable_amount)
            moved = money(moved - (new - part))
            part = new
        plan.append((p, part))
    if moved > 0:  # a remainder tender left out of the proportional split may still take it
        planned = {p.pk for p, _ in plan}
        others = [p for p in pay_read.payments_for_reference(reference=order.number)
                  .filter(status=Payment.Status.CAPTURED) if p.pk not in planned
                  and p.tender not in _MEMBER_TENDERS and _refund_method(p, store) != Refund.Method.CASH]
        for p in sorted(others, key=lambda p: tender_for(p.tender).refund_priority):
            take = min(moved, p.refundable_amount)
            if take > 0:
                plan.append((p, take))
                moved = money(moved - take)
    return [(p, part) for p, part in plan if part > 0]


def _refund(order: Order, amount: Decimal, *, actor, store: Store | None, reason: str,
            exchange: bool = False, room: Decimal | None = None, everything: bool = False) -> RefundDone:
    """Refund ``amount`` across the order's captured payments (``_refund_plan``; an exchange credit
    moves no money, so it is split in proportion and never rounded).  Returns what was paid."""
    if amount <= 0:
        return RefundDone("", ZERO)
    policies = []
    plan = (_refunds_proportional(order, amount) if exchange
            else _refund_plan(order, amount, store=store, room=room, everything=everything))
    for payment, part in plan:
        if exchange:
            method, policy = Refund.Method.EXCHANGE, f"{payment.tender}: credited to the exchange sale"
        else:
            method, policy = _refund_method(payment, store), refund_policy_for(payment, store)
        pay.refund_create(payment=payment, amount=part, reason=reason, actor=actor, store=store, policy=policy,
                          method=method)
        policies.append(policy)
    refunded = money(sum((part for _, part in plan), ZERO))
    if refunded:
        Order.objects.filter(pk=order.pk).update(refunded_total=F("refunded_total") + refunded,
                                                 updated_at=timezone.now())
        order.refunded_total = money(order.refunded_total + refunded)
    return RefundDone("; ".join(dict.fromkeys(policies)), refunded, money(amount - refunded))


def _user(actor):
    return actor if actor is not None and getattr(actor, "pk", None) else None
