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
from o2o.money import ZERO, allocate, money
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
    """The exact refund for units ``already_returned+1 … +qty`` of a line, allocated per unit to the fen."""
    per_unit = allocate(line.line_total, [Decimal(1)] * line.qty)
    return money(sum(per_unit[already_returned:already_returned + qty], ZERO))


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


def _refund(order: Order, amount: Decimal, *, actor, store: Store | None, reason: str,
            exchange: bool = False) -> str:
    """Refund ``amount`` across the order's captured payments; returns the policy text recorded."""
    if amount <= 0:
        return ""
    policies = []
    for payment, part in _refunds_proportional(order, amount):
        if exchange:
            method, policy = Refund.Method.EXCHANGE, f"{payment.tender}: credited to the exchange sale"
        else:
            method, policy = _refund_method(payment, store), refund_policy_for(payment, store)
        pay.refund_create(payment=payment, amount=part, reason=reason, actor=actor, store=store, policy=policy,
                          method=method)
        policies.append(policy)
    Order.objects.filter(pk=order.pk).update(refunded_total=F("refunded_total") + amount,
                                             updated_at=timezone.now())
    order.refunded_total = money(order.refunded_total + amount)
    return "; ".join(dict.fromkeys(policies))


def _user(actor):
    return actor if actor is not None and getattr(actor, "pk", None) else None
