"""Returns and exchanges at any store: goods restocked where received, refunds to the original tenders,
points, coupon and commission reversed; an exchange is a return and a sale of the same customer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Sequence

from django.db.models import F
from django.utils import timezone

from inventory import services as stock
from inventory.models import Bucket
from members.models import Member
from o2o.db import service
from o2o.errors import InvalidInput
from o2o.ids import number_next
from o2o.money import ZERO, allocate, money
from orders import locks, membership
from orders.events import order_event
from orders.exceptions import (
    DuplicateDifferentPayload,
    ExchangeMemberMismatch,
    OrderNotReturnable,
    ReturnExceedsPurchase,
    ReturnWindowClosed,
    UnknownOrderLine,
)
from orders.pricing import PricedSale, sale_price
from orders.models import (
    Channel,
    Order,
    OrderEvent,
    OrderLine,
    OrderLinePromotion,
    Return,
    ReturnLine,
)
from stores.exceptions import NotLaunched
from stores.models import Capability, Store
from stores.selectors import capability_enabled
from orders.services.cod import cod_awaiting
from orders.services.shared import (
    HANDED_OVER,
    LineIn,
    ReturnLineIn,
    TenderIn,
    _demand,
    RefundDone,
    _refund,
    _user,
    line_refund_amount,
    return_window_end,
)
from orders.services.placement import (
    pos_sale_create,
)
from promotions.services import promotions_give_back


def return_store_check(order: Order, store: Store) -> None:
    """Raise NotLaunched when ``store`` may not take ``order`` back: goods bought elsewhere (another
    store, or online and shipped) come back at a store only once it takes part in returns
    anywhere (the roll-out); its own sales it always takes back."""
    if store.pk != order.store_id and not capability_enabled(Capability.RETURN_ANYWHERE, store=store):
        raise NotLaunched(capability=Capability.RETURN_ANYWHERE, store=store)


@service
def return_create(*, order: Order | int, store: Store, lines: Sequence[ReturnLineIn], actor=None,
                  reason: str = "", client_uuid: uuid.UUID | str | None = None, approved_by=None) -> Return:
    """Take back goods of any order at any store; restock there; refund exactly to the original tenders.

    Locks: the order row, then its lines are read under that lock (so two returns of
    the same line serialize).  After the channel's return window, a manager's
    ``approved_by`` is required (recorded on the return).  Queues ``order.returned``.
    Raises return_exceeds_purchase, order_not_returnable, return_window_closed,
    unknown_order_line, invalid_quantity, return_anywhere_not_launched (goods bought elsewhere,
    at a store where returns anywhere are not switched on).
    """
    if client_uuid:
        existing = Return.objects.filter(client_uuid=client_uuid).first()
        if existing:
            return existing
    order = locks.order_for_update(order)
    ret = _return_goods(order, store=store, lines=lines, actor=actor, reason=reason, client_uuid=client_uuid,
                        approved_by=approved_by)
    done = _refund_return(order, ret, ret.refund_total, actor=actor, store=store, reason=f"return {ret.number}")
    ret.refund_policy = done.policy
    ret.save(update_fields=["refund_policy"])
    _after_return(order, ret, actor=actor, store=store)
    order_event(order, OrderEvent.Kind.RETURN, actor=actor, store=store, reason=reason,
                data={"return": ret.number, "refund": str(ret.refund_total)}, emit="order.returned")
    return ret


def _return_goods(order: Order, *, store: Store, lines: Sequence[ReturnLineIn], actor, reason: str,
                  client_uuid, approved_by) -> Return:
    """Record a return of ``order`` (locked by the caller) and restock; the refund is the caller's."""
    if order.status not in HANDED_OVER or cod_awaiting(order):
        # A cash-on-delivery parcel not yet paid for is refused at the door, not returned for money.
        raise OrderNotReturnable(params={"status": order.status})
    return_store_check(order, store)
    if approved_by is None and return_window_end(order) < timezone.now():
        raise ReturnWindowClosed(params={"until": return_window_end(order).isoformat()})
    order_lines = {ln.pk: ln for ln in order.lines.all()}
    picked: dict[int, list[ReturnLineIn]] = {}
    for rl in lines:
        if rl.order_line_id not in order_lines:
            raise UnknownOrderLine(params={"line_id": rl.order_line_id})
        stock._check_qty(rl.qty)
        if rl.condition not in ReturnLine.Condition.values:
            raise InvalidInput(message="Unknown condition.", code="invalid_condition", field="condition")
        picked.setdefault(rl.order_line_id, []).append(rl)
    if not picked:
        raise InvalidInput(message="Pick at least one line to return.", code="no_lines", field="lines")
    ret = Return(number=number_next("RT"), order=order, store=store, reason=reason, refund_total=ZERO,
                 created_by=_user(actor), client_uuid=client_uuid or None, approved_by=_user(approved_by))
    ret.save()
    return_lines, restock = [], {ReturnLine.Condition.SELLABLE: [], ReturnLine.Condition.DAMAGED: []}
    for line_id, items in picked.items():
        ln = order_lines[line_id]
        qty = sum(i.qty for i in items)
        if ln.qty_returned + qty > ln.qty_shipped:
            raise ReturnExceedsPurchase(params={"line_id": line_id, "returnable": ln.qty_shipped - ln.qty_returned})
        done, refund = ln.qty_returned, ZERO
        left = money(max(ln.line_total - ln.refunded_amount, ZERO))  # what earlier returns did not pay back
        for item in items:
            amount = min(line_refund_amount(ln, done, item.qty), money(left - refund))
            done += item.qty
            refund += amount
            return_lines.append(ReturnLine(ret=ret, order_line=ln, qty=item.qty, condition=item.condition,
                                           refund_amount=amount))
            restock[item.condition].append((ln.sku_id, item.qty))
        OrderLine.objects.filter(pk=ln.pk).update(qty_returned=F("qty_returned") + qty,
                                                  refunded_amount=F("refunded_amount") + refund)
    _gifts_taken_back(order_lines, picked, return_lines)
    # Before the restock: promotion rows are locked before stock rows, as a sale takes them.
    _promotion_caps_given_back(order_lines, picked)
    ReturnLine.objects.bulk_create(return_lines)
    for condition, items in restock.items():
        if items:
            stock.stock_restock_return(warehouse=store.warehouse_id, lines=items, reference=ret.number,
                                       actor=actor, bucket=Bucket.SELLABLE if condition == "sellable"
                                       else Bucket.DAMAGED)
    ret.refund_total = money(sum((r.refund_amount for r in return_lines), ZERO))
    ret.save(update_fields=["refund_total"])
    return ret


def _gifts_taken_back(order_lines: dict[int, OrderLine], picked: dict[int, list[ReturnLineIn]],
                      return_lines: list[ReturnLine]) -> None:
    """买赠: the customer keeps a gift only while they keep the goods that earned it.

    Goods that earned a gift come back while the customer keeps the gift: the gift's value is taken back
    from their refund (never below zero).  The gift brought back later: what was taken back for it is
    refunded with it (on the gift's return line; the goods' line, whose refund it was taken from, counts it
    as refunded again).  So after any sequence of returns the customer has paid, for the gift units kept
    beyond what the kept goods earn, exactly their value, and nothing for a gift they brought back.
    ``gift_taken_back`` / ``gift_value_taken_back`` hold the units and the money withheld so far.  The
    refunded amounts are adjusted in place (return lines) and with F() (order lines).  Runs under the
    order's row lock, like the rest of the return.
    """
    gifts = list(OrderLinePromotion.objects.filter(line_id__in=list(order_lines), gift_qty__gt=0))
    if not gifts:
        return
    returning = {line_id: sum(i.qty for i in items) for line_id, items in picked.items()}
    kept_by_sku: dict[int, int] = {}
    for ln in order_lines.values():
        kept_by_sku[ln.sku_id] = kept_by_sku.get(ln.sku_id, 0) + ln.qty - ln.qty_returned - returning.get(ln.pk, 0)
    for gift in gifts:
        gift_line = order_lines[gift.line_id]
        per_set = gift.buy_qty + (gift.gift_qty if gift_line.sku_id in gift.earned_by else 0)
        earned = (sum(kept_by_sku.get(s, 0) for s in gift.earned_by) // per_set) * gift.gift_qty if per_set else 0
        kept = min(gift.gift_qty, gift_line.qty - gift_line.qty_returned - returning.get(gift_line.pk, 0))
        owed_units = max(0, kept - earned)
        if owed_units > gift.gift_taken_back:
            _gift_value_take(gift, owed_units - gift.gift_taken_back, return_lines)
        elif owed_units < gift.gift_taken_back:
            _gift_value_give_back(gift, gift.gift_taken_back - owed_units, order_lines, return_lines)


def _promotion_caps_given_back(order_lines: dict[int, OrderLine], picked: dict[int, list[ReturnLineIn]]) -> None:
    """What the returned units took off, back into their promotions' budgets (the share of each promotion
    row for the units, cumulatively rounded so a line returned in parts gives back exactly what it took),
    and each promotion's use back once the order is returned in full.  ``order_lines`` hold the quantities
    returned before this return."""
    rows = list(OrderLinePromotion.objects.filter(line_id__in=list(order_lines))
                .values_list("promotion_id", "line_id", "amount"))
    if not rows:
        return
    returning = {line_id: sum(i.qty for i in items) for line_id, items in picked.items()}
    back: dict[int, list] = {}
    for promotion_id, line_id, amount in rows:
        entry = back.setdefault(promotion_id, [0, ZERO])
        qty, ln = returning.get(line_id, 0), order_lines[line_id]
        if qty:
            before, after = ln.qty_returned, ln.qty_returned + qty
            entry[1] = money(entry[1] + money(amount * after / ln.qty) - money(amount * before / ln.qty))
    if all(ln.qty_returned + returning.get(ln.pk, 0) >= ln.qty for ln in order_lines.values()):
        for entry in back.values():
            entry[0] = 1
    promotions_give_back(back={pk: (uses, amount) for pk, (uses, amount) in back.items()})


def _gift_value_take(gift: OrderLinePromotion, units: int, return_lines: list[ReturnLine]) -> None:
    """Withhold ``units`` more gift units' value from the refunds of the goods that earned the gift."""
    per_unit = allocate(gift.amount, [Decimal(1)] * gift.gift_qty)
    owed = money(sum(per_unit[gift.gift_taken_back:gift.gift_taken_back + units], ZERO))
    taken = ZERO
    for rl in return_lines:
        if owed <= 0:
            break
        if rl.order_line.sku_id in gift.earned_by and rl.order_line_id != gift.line_id:
            take = min(owed, rl.refund_amount)
            rl.refund_amount, owed, taken = money(rl.refund_amount - take), money(owed - take), money(taken + take)
            OrderLine.objects.filter(pk=rl.order_line_id).update(refunded_amount=F("refunded_amount") - take)
    OrderLinePromotion.objects.filter(pk=gift.pk).update(
        gift_taken_back=F("gift_taken_back") + units, gift_value_taken_back=F("gift_value_taken_back") + taken)


def _gift_value_give_back(gift: OrderLinePromotion, units: int, order_lines: dict[int, OrderLine],
                          return_lines: list[ReturnLine]) -> None:
    """The gift comes back after its value was withheld: refund that value (the last ``units`` withheld)
    with the gift's return line, and count it as refunded on the goods' lines it was withheld from."""
    per_unit = allocate(gift.amount, [Decimal(1)] * gift.gift_qty)
    left_after = gift.gift_taken_back - units
    back = min(gift.gift_value_taken_back,
               money(sum(per_unit[left_after:gift.gift_taken_back], ZERO)))
    if left_after == 0:
        back = gift.gift_value_taken_back  # all of it: exactly what was withheld, to the fen
    carrier = next(rl for rl in return_lines if rl.order_line_id == gift.line_id)
    carrier.refund_amount = money(carrier.refund_amount + back)
    rest = back
    goods = [ln for ln in order_lines.values() if ln.sku_id in gift.earned_by and ln.pk != gift.line_id]
    for ln in OrderLine.objects.filter(pk__in=[g.pk for g in goods]).order_by("line_no"):
        room = money(min(rest, ln.line_total - ln.refunded_amount))
        if room > 0:
            OrderLine.objects.filter(pk=ln.pk).update(refunded_amount=F("refunded_amount") + room)
            rest = money(rest - room)
    if rest > 0:  # cannot happen: the value was withheld from these very lines' refunds
        raise ReturnExceedsPurchase(params={"line_id": gift.line_id, "returnable": 0})
    OrderLinePromotion.objects.filter(pk=gift.pk).update(
        gift_taken_back=F("gift_taken_back") - units, gift_value_taken_back=F("gift_value_taken_back") - back)


def _refund_return(order: Order, ret: Return, amount: Decimal, *, actor, store: Store, reason: str) -> RefundDone:
    """Refund ``amount`` of the return ``ret`` in the refund order (``_refund_plan``), then book what the
    cash rounding kept (or paid beyond the value) on the return and its lines, so the return's refund,
    the lines' refunded amounts and the order's refunded total all equal the money that moved."""
    lines = list(ret.lines.select_related("order_line").order_by("-refund_amount", "pk"))
    room = money(sum((ln.line_total - ln.refunded_amount
                      for ln in OrderLine.objects.filter(pk__in={rl.order_line_id for rl in lines})), ZERO))
    everything = not OrderLine.objects.filter(order=order, qty_returned__lt=F("qty")).exists()
    done = _refund(order, amount, actor=actor, store=store, reason=reason, room=room, everything=everything)
    if done.rounding:
        _rounding_book(order, lines, done.rounding)
        ret.cash_rounding = money(ret.cash_rounding + done.rounding)
        ret.refund_total = money(ret.refund_total - done.rounding)
        ret.save(update_fields=["cash_rounding", "refund_total"])
    return done


def _rounding_book(order: Order, lines: list[ReturnLine], rounding: Decimal) -> None:
    """Take the cash rounding out of the return's line refunds (largest first) and the order lines'
    refunded amounts.  Paid beyond the value (negative), it goes on order lines that still have value
    not refunded: the return's own first, then the order's others (a last return paying back what earlier
    roundings kept)."""
    left = rounding
    for rl in lines:
        take = min(left, rl.refund_amount) if rounding > 0 else left
        if take:
            ReturnLine.objects.filter(pk=rl.pk).update(refund_amount=F("refund_amount") - take)
            left = money(left - take)
        if not left:
            break
    returned = [rl.order_line_id for rl in lines]
    left = rounding
    for ln in sorted(OrderLine.objects.filter(order=order), key=lambda ln: (ln.pk not in returned, ln.pk)):
        take = min(left, ln.refunded_amount) if rounding > 0 else max(left, ln.refunded_amount - ln.line_total)
        if take:
            OrderLine.objects.filter(pk=ln.pk).update(refunded_amount=F("refunded_amount") - take)
            left = money(left - take)
        if not left:
            break


def _after_return(order: Order, ret: Return, *, actor, store: Store, reason: str = "") -> None:
    left = sum(ln.qty - ln.qty_returned for ln in OrderLine.objects.filter(order=order))
    membership.on_returned(order, refund=ret.refund_total, reference=ret.number, fully_returned=left == 0,
                           actor=actor, store_id=store.pk, reason=reason or f"return {ret.number}")


@dataclass
class ExchangeResult:
    ret: Return
    order: Order
    credit: Decimal
    refunded: Decimal


def exchange_member(order: Order, chosen: Member | None) -> Member | None:
    """The member an exchange sale belongs to: the original order's, or the one the clerk attached
    when the original had none.  Raises ExchangeMemberMismatch for another member than the original's."""
    if order.member_id is None:
        return chosen
    original = membership.member_resolve(order.member_id)  # a merged duplicate: the member it became
    if chosen is not None and chosen.pk != original.pk:
        raise ExchangeMemberMismatch(field="member", params={"order": order.number})
    return original


@service
def exchange_create(*, order: Order | int, store: Store, return_lines: Sequence[ReturnLineIn],
                    tenders: Sequence[TenderIn], client_uuid: uuid.UUID | str, new_lines: Sequence[LineIn] = (),
                    priced: PricedSale | None = None, actor=None, reason: str = "exchange",
                    approved_by=None, member=None, guide_id: int | None = None) -> ExchangeResult:
    """Return goods and sell new ones in one operation; only the price difference changes hands.

    The returned value R pays for the new sale (total N) as exchange credit up to
    min(R, N): the original order is refunded that part with method "exchange"
    (no money moves, and points or wallet money that paid for it stay in the credit:
    they are not given back as well) and the new sale takes it as an
    ``exchange_credit`` payment.  If N > R the customer pays N − R with ``tenders``;
    if N < R the rest, R − N, is refunded to the original tenders as in any return.
    The new sale belongs to the original order's member (a ``member`` — or the
    ``priced`` sale's — may be attached only when the original had none), so it
    earns points, counts in the member's spend and is attributed to ``guide_id`` or
    else the member's bound guide, like any sale; the returned lines' points and
    commission are reversed as in any return.  Idempotent on the new sale's
    ``client_uuid``.  ``priced``: the new goods as the counter priced them (else
    ``new_lines`` are priced here).  Raises exchange_member_mismatch and what
    return_create and pos_sale_create raise.
    """
    order = locks.order_for_update(order)
    chosen = priced.member if priced is not None and priced.member is not None else membership.member_resolve(member)
    member = exchange_member(order, chosen)
    ret = _return_goods(order, store=store, lines=return_lines, actor=actor, reason=reason, client_uuid=None,
                        approved_by=approved_by)
    if priced is None:
        priced = sale_price(demand=_demand(new_lines), channel=Channel.POS, store_id=store.pk, member=member)
    elif priced.member != member:
        priced = replace(priced, member=member)
    credit = min(ret.refund_total, priced.total)
    sale_tenders = ([TenderIn("exchange_credit", credit)] if credit > 0 else []) + list(tenders)
    sale = pos_sale_create(store=store, client_uuid=client_uuid, priced=priced, tenders=sale_tenders,
                           actor=actor, customer_phone=member.phone if member else order.customer_phone,
                           guide_id=guide_id)
    if not sale.created:
        raise DuplicateDifferentPayload(message="This sale id was already used.", params={"order": sale.order.number})
    policies = [_refund(order, credit, actor=actor, store=store, reason=f"exchange {ret.number}",
                        exchange=True).policy]
    rest = money(ret.refund_total - credit)
    done = _refund_return(order, ret, rest, actor=actor, store=store, reason=f"return {ret.number}")
    policies.append(done.policy)
    rest = done.refunded
    ret.exchange_order = sale.order
    ret.refund_policy = "; ".join(p for p in policies if p)
    ret.save(update_fields=["exchange_order", "refund_policy"])
    _after_return(order, ret, actor=actor, store=store,
                  reason=f"exchange {ret.number}: new sale {sale.order.number}")
    order_event(order, OrderEvent.Kind.RETURN, actor=actor, store=store, reason=reason,
                data={"return": ret.number, "refund": str(ret.refund_total), "exchange_order": sale.order.number,
                      "credit": str(credit)}, emit="order.returned")
    return ExchangeResult(ret=ret, order=sale.order, credit=credit, refunded=rest)
