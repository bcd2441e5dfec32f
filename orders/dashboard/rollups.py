"""Refresh the daily sales roll-up with one set-based statement per run.

``sales_rollup_refresh`` recomputes whole business days: an ``INSERT … SELECT … GROUP BY``
upserts each (day, store, channel) with ``ON CONFLICT DO UPDATE``, then rows of those
days that the recomputation no longer produced (all their orders cancelled) are deleted.
Running it twice for the same days leaves the same rows, so the beat job can simply
re-run the last few days every time.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from orders.models import Status

# Business days are Shanghai days whatever the server's zone.
UPSERT_SQL = """
WITH sales AS (
    SELECT (o.paid_at AT TIME ZONE %(tz)s)::date AS day, o.store_id, o.channel,
           count(*) AS orders,
           coalesce(sum((SELECT sum(l.qty) FROM orders_orderline l WHERE l.order_id = o.id)), 0) AS units,
           sum(o.subtotal) AS gross, sum(o.discount_total) AS discounts,
           0::numeric AS returns, 0 AS returned_orders
      FROM orders_order o
     WHERE o.paid_at >= %(start)s AND o.paid_at < %(end)s AND o.status <> %(cancelled)s
     GROUP BY 1, 2, 3
), returned AS (
    SELECT (r.created_at AT TIME ZONE %(tz)s)::date AS day, o.store_id, o.channel,
           0 AS orders, 0 AS units, 0::numeric AS gross, 0::numeric AS discounts,
           sum(r.refund_total) AS returns, count(*) AS returned_orders
      FROM orders_return r JOIN orders_order o ON o.id = r.order_id
     WHERE r.created_at >= %(start)s AND r.created_at < %(end)s
     GROUP BY 1, 2, 3
)
INSERT INTO orders_dailysalesrollup
       (day, store_id, channel, orders, units, gross, discounts, returns, returned_orders, net, refreshed_at)
SELECT day, store_id, channel, sum(orders), sum(units), sum(gross), sum(discounts), sum(returns),
       sum(returned_orders), sum(gross) - sum(discounts) - sum(returns), %(now)s
  FROM (SELECT * FROM sales UNION ALL SELECT * FROM returned) AS facts
 GROUP BY day, store_id, channel
ON CONFLICT ON CONSTRAINT daily_sales_rollup_key DO UPDATE SET
       orders = EXCLUDED.orders, units = EXCLUDED.units, gross = EXCLUDED.gross,
       discounts = EXCLUDED.discounts, returns = EXCLUDED.returns,
       returned_orders = EXCLUDED.returned_orders, net = EXCLUDED.net, refreshed_at = EXCLUDED.refreshed_at
"""

DELETE_STALE_SQL = """
DELETE FROM orders_dailysalesrollup
 WHERE day >= %(first)s AND day <= %(last)s AND refreshed_at < %(now)s
"""


def business_today() -> date:
    return timezone.localdate(timezone.now(), ZoneInfo(settings.TIME_ZONE))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


def sales_rollup_refresh(*, first: date, last: date) -> int:
    """Recompute the roll-up for business days ``first``..``last`` (inclusive).  Returns rows written.

    Takes row locks only on the roll-up rows it upserts; no side effects; idempotent.
    """
    if last < first:
        raise ValueError("last must not be before first")
    now = timezone.now()
    params = {"tz": settings.TIME_ZONE, "start": _day_start(first), "end": _day_start(last + timedelta(days=1)),
              "cancelled": Status.CANCELLED.value, "now": now, "first": first, "last": last}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(UPSERT_SQL, params)
        written = cursor.rowcount
        cursor.execute(DELETE_STALE_SQL, params)
    return written


def sales_rollup_refresh_recent(*, days: int = 3) -> int:
    """Refresh today and the ``days`` business days before it (late payments, cancellations, returns)."""
    today = business_today()
    return sales_rollup_refresh(first=today - timedelta(days=days), last=today)
