"""What an order does to its member, coupon and guide, in the order's own transaction.

* At placement/sale: the coupon the sale was priced with (``orders.pricing``) is
  redeemed with that quote (atomic; a code used twice at once succeeds once); the
  guide is the one chosen at the POS or else the member's bound guide.
* When paid: the paid amount (points excluded: points are not money) counts
  toward the member's tier.
* When the goods are handed over: points are earned on the money paid and the
  guide's commission accrues, both frozen until the return window ends.
* On a return: earned points and commission are reversed in proportion to the
  value returned, spend is reduced, and a fully returned order gives its
  coupon back (a partial return keeps it redeemed: see members.services.coupons).
  Redeemed points and wallet money come back through the refund of their tender.
* On cancellation or expiry: the coupon is restored.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from members import selectors as member_read
from members.services import coupons, guides, members, points
from o2o.money import ZERO, allocate, money
from orders.models import Order, OrderLine
from orders.pricing import PricedSale
from payments.models import Payment
from stores.models import StaffProfile

NON_MONEY_TENDERS = {"points"}


def member_resolve(member) -> object | None:
    return None if member in (None, "") else member_read.member_get(member)


def guide_resolve(*, member, chosen_guide_id: int | None) -> StaffProfile | None:
    return guides.guide_for_order(member=member, chosen_guide_id=chosen_guide_id, at=timezone.now())


def coupon_redeem(order: Order, priced: PricedSale, *, actor, partner: str = "") -> None:
    """Redeem the coupon the sale was priced with, recording that very quote (nothing re-priced)."""
    if not priced.coupon:
        return
    coupons.coupon_redeem(code=priced.coupon.code, member=order.member_id, order_number=order.number,
                          channel=order.channel, store_id=order.store_id, actor=actor, partner=partner,
                          lines=priced.coupon_lines(), quote=priced.coupon)


def coupon_restore(order: Order, *, actor, store_id: int | None = None) -> None:
    if order.coupon_code:
        coupons.coupon_restore(order_number=order.number, actor=actor, store_id=store_id)


def money_paid(payments) -> Decimal:
    """What the customer paid in money (points excluded) in ``payments``, net of nothing refunded yet."""
    return money(sum((p.amount for p in payments
                      if p.status == Payment.Status.CAPTURED and p.tender not in NON_MONEY_TENDERS), ZERO))


def _money_paid(order: Order) -> Decimal:
    return money_paid(Payment.objects.filter(reference=order.number, status=Payment.Status.CAPTURED)
                      .only("tender", "amount", "status"))


def on_paid(order: Order, *, paid: Decimal | None = None, locked_member=None) -> None:
    """Record the member's spend.  ``paid``: the money paid, when the caller already knows it;
    ``locked_member``: the order's member, locked by the caller in this transaction."""
    if order.member_id:
        members.member_spend_record(member=locked_member or order.member_id, order_number=order.number,
                                    channel=order.channel, locked=locked_member is not None,
                                    amount=_money_paid(order) if paid is None else paid, at=timezone.now())


def on_handed_over(order: Order, lines: list[OrderLine], *, frozen_until, paid: Decimal | None = None,
                   locked_member=None, store=None, new_order: bool = False) -> None:
    """Earn points on the money paid and accrue the guide's commission, frozen until ``frozen_until``.

    ``locked_member``: the order's member, locked by the caller; ``store``: the order's store as
    loaded; ``new_order``: the order was created in this transaction (nothing earned on it yet)."""
    if order.member_id:
        paid = _money_paid(order) if paid is None else paid
        bases = allocate(paid, [ln.line_total for ln in lines]) if order.total > 0 else [ZERO] * len(lines)
        points.points_earn(member=locked_member or order.member_id, order_number=order.number,
                           channel=order.channel, store_id=store or order.store_id, frozen_until=frozen_until,
                           locked=locked_member is not None, first=new_order,
                           lines=[(ln.category_id_snapshot, ln.sku_id, base) for ln, base in zip(lines, bases)])
    if order.guide_id:
        guides.commission_accrue(guide=order.guide_id, order_number=order.number, channel=order.channel,
                                 store_id=order.store_id, frozen_until=frozen_until,
                                 lines=[(ln.sku_id, ln.category_id_snapshot, ln.line_total) for ln in lines])


def on_returned(order: Order, *, refund: Decimal, reference: str, fully_returned: bool, actor,
                store_id: int | None, reason: str = "") -> None:
    if order.total <= 0 or refund <= 0:
        return
    fraction = refund / order.total
    if order.member_id:
        if member_read.points_earned_for_order(order.number) is not None:
            points.points_reverse_earned(member=order.member_id, order_number=order.number, fraction=fraction,
                                         reference=reference, reason=reason)
        members.member_spend_record(member=order.member_id, order_number=order.number, channel=order.channel,
                                    amount=-money(_money_paid(order) * fraction), at=timezone.now(),
                                    reference=reference)
    if order.guide_id:
        guides.commission_clawback(order_number=order.number, fraction=fraction, reference=reference)
    if fully_returned:
        coupon_restore(order, actor=actor, store_id=store_id)
