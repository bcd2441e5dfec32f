"""Named locking queries.  Lock order: payments by id, then a payment's refunds by id.

Every write to a payment's money (capture, cancel, refund, refund completion)
first locks that payment row, so the cached refunded/refunding amounts are
only ever moved by one transaction at a time.
"""

from __future__ import annotations

from typing import Iterable

from payments.models import Payment, Refund


def payment_for_update(payment_id: int) -> Payment:
    return Payment.objects.select_for_update(of=("self",)).get(pk=payment_id)


def payments_for_update(payment_ids: Iterable[int]) -> list[Payment]:
    # list() evaluates the queryset: an unevaluated select_for_update locks nothing.
    return list(Payment.objects.filter(pk__in=set(payment_ids)).order_by("pk")
                .select_for_update(of=("self",)))


def refund_for_update(refund_id: int) -> Refund:
    return Refund.objects.select_for_update(of=("self",)).get(pk=refund_id)
