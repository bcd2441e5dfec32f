"""Writes of promotions: take a sale's uses and spend from the caps, pause and resume.

``promotions_consume`` runs inside the sale's transaction: one conditional UPDATE per promotion, in
id order, each checked by its row count, so no cap is ever passed whatever the number of tills and
partner systems selling at once.  It holds each promotion row's lock until the sale commits.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from o2o.db import service
from o2o.money import money
from promotions.exceptions import PromotionExhausted
from promotions.models import Promotion


def promotions_consume(*, uses: dict[int, Decimal]) -> None:
    """Count one use of each promotion and add what it took off, within its caps.

    ``uses``: {promotion id: amount taken off by this sale}.  Not a service: it runs in the
    caller's (the sale's) transaction, in a savepoint of its own, so on refusal nothing of it
    is left and the caller may price the sale again without the promotions named in the error.
    Locks: each promotion row (UPDATE), in id order.  Raises PromotionExhausted with
    ``params["promotions"]`` the ids that ran out (paused or ended meanwhile counts as run out).
    """
    if not uses:
        return
    now = timezone.now()
    with transaction.atomic():
        for pk in sorted(uses):
            amount = money(uses[pk])
            taken = (Promotion.objects.filter(pk=pk, status=Promotion.Status.ACTIVE, valid_from__lte=now,
                                              valid_until__gt=now)
                     .filter(Q(max_uses__isnull=True) | Q(used_count__lt=F("max_uses")))
                     .filter(Q(budget__isnull=True) | Q(used_amount__lte=F("budget") - amount))
                     .update(used_count=F("used_count") + 1, used_amount=F("used_amount") + amount))
            if taken != 1:
                raise PromotionExhausted(params={"promotions": [pk]})


def promotions_release(*, uses: dict[int, Decimal]) -> None:
    """Give back what ``promotions_consume`` took for a sale that was not made after all."""
    for pk in sorted(uses):
        Promotion.objects.filter(pk=pk).update(used_count=F("used_count") - 1,
                                               used_amount=F("used_amount") - money(uses[pk]))


def promotions_give_back(*, back: dict[int, tuple[int, Decimal]]) -> None:
    """Give back to each promotion's caps what a return takes back: {promotion id: (uses, amount)}.

    The policy (docs/returns.md): an order returned in full gives each of its promotions its use
    back; every return gives back, in proportion to the units returned, what the promotions took
    off those units.  Not a service: it runs in the return's transaction, so the caps and the refund
    commit together.  Locks: each promotion row (UPDATE), in id order, the order a sale takes them in,
    so a return and a sale racing at the cap wait for each other rather than deadlock; a sale waiting
    on the row re-checks its cap against the value the return left.  Never below zero.
    """
    for pk in sorted(back):
        uses, amount = back[pk]
        if uses <= 0 and money(amount) <= 0:
            continue
        Promotion.objects.filter(pk=pk).update(
            used_count=Greatest(F("used_count") - max(uses, 0), Value(0)),
            used_amount=Greatest(F("used_amount") - max(money(amount), Decimal("0.00")), Value(Decimal("0.00"))))


@service
def promotion_pause(*, promotion: Promotion | int, actor=None) -> Promotion:
    """Stop a promotion now: the next priced basket no longer sees it.  Idempotent."""
    promotion = Promotion.objects.select_for_update().get(pk=getattr(promotion, "pk", promotion))
    if promotion.status != Promotion.Status.PAUSED:
        promotion.status, promotion.paused_at = Promotion.Status.PAUSED, timezone.now()
        promotion.paused_by = actor if getattr(actor, "pk", None) else None
        promotion.save(update_fields=["status", "paused_at", "paused_by"])
    return promotion


@service
def promotion_resume(*, promotion: Promotion | int, actor=None) -> Promotion:
    """Run a paused promotion again (within its window and caps).  Idempotent."""
    promotion = Promotion.objects.select_for_update().get(pk=getattr(promotion, "pk", promotion))
    if promotion.status != Promotion.Status.ACTIVE:
        promotion.status = Promotion.Status.ACTIVE
        promotion.save(update_fields=["status"])
    return promotion
