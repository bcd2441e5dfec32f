"""Online payments whose notification was lost: the provider is asked, its answer applied.

``payments_query_pending`` runs from the beat (``payments-query-pending``, o2o/schedule.py) and
from the payments admin (*Ask the provider*).  Each payment is asked outside any transaction
(``payments.queries.payment_ask``), then the answer goes through ``order_payment_query_apply``,
the notification's own path: a paid payment is captured and its order paid, a payment we had
cancelled (the order cancelled or expired, or superseded by another start) is captured and
refunded as an over-capture, and a notification arriving afterwards is a duplicate.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Iterable

from payments import queries
from orders.services.payment import order_payment_query_apply

log = logging.getLogger(__name__)


def payments_query_pending(*, now: datetime | None = None, payment_ids: Iterable[int] | None = None) -> dict[str, int]:
    """Ask about the payments due (or ``payment_ids``, e.g. chosen in the admin) and apply the answers.

    Not a service: it calls providers, each answer is applied in its own transaction.  Idempotent.
    Returns counts: ``captured`` (paid, now on our books), ``closed`` (closed at the provider),
    ``unchanged`` (not paid yet, or already applied), ``errors`` (the provider could not answer).
    """
    ids = list(payment_ids) if payment_ids is not None else queries.payments_to_query(now=now)
    counts = {"captured": 0, "closed": 0, "unchanged": 0, "errors": 0}
    for payment_id in ids:
        asked = queries.payment_ask(payment_id=payment_id)
        if asked is None or asked.note is None:
            counts["errors" if asked is not None and asked.error else "unchanged"] += 1
            if asked is not None and asked.error:
                log.warning("payment %s not asked at %s: %s", asked.payment.number, asked.payment.provider,
                            asked.error)
            continue
        before = asked.payment.status
        order_payment_query_apply(provider=asked.payment.provider, note=asked.note)
        asked.payment.refresh_from_db(fields=["status"])
        if asked.payment.status == before:
            counts["unchanged"] += 1
        else:
            counts["captured" if asked.payment.status == "captured" else "closed"] += 1
    return counts
