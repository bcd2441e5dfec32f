"""Refresh the dashboard's daily roll-ups with set-based statements.

``sales_rollup_refresh`` recomputes whole business days of every roll-up: an
``INSERT … SELECT … GROUP BY`` upserts each (day, store, channel) of sales, each
(day, warehouse, SKU) of units sold from the stock move ledger and each (day, guide) of
commission from the commission ledger with ``ON CONFLICT DO UPDATE``,
then rows of those days that the recomputation no longer produced (all their orders cancelled)
are deleted.  The O2O, guide sales, coupon and member-channel roll-ups of those days are rebuilt
the same way.  Then the distinct-member counts (``MemberActivityCount``, over every store and
over each region's, city's and store's stores) and the per-tier member balances
(``MemberTierRollup``) are rebuilt whole.  Running it twice for the same days leaves the same
rows, so the beat job can simply re-run the last few days every time.

Most facts are stamped when they happen (payments, returns, issues, redemptions, ledger rows),
but a few change an older order after its payment day: a pickup handed over, an order cancelled
or refunded, a coupon given back by a return.  Every such change bumps the order's
``updated_at`` (or sets the redemption's ``restored_at``), so ``sales_rollup_refresh_recent``
also recomputes the payment days of orders changed since the start of its window.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from inventory.models import MoveReason
from orders.models import Channel, Fulfillment, Status
from reporting.models import MemberActivityCount

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


# Sale moves are immutable ledger rows stamped when the stock left, so only the days being
# refreshed can change.
STOCK_SOLD_UPSERT_SQL = """
INSERT INTO orders_dailystocksoldrollup (day, warehouse_id, sku_id, units, refreshed_at)
SELECT (m.created_at AT TIME ZONE %(tz)s)::date, m.warehouse_id, m.sku_id, -sum(m.qty), %(now)s
  FROM inventory_stockmove m
 WHERE m.created_at >= %(start)s AND m.created_at < %(end)s AND m.reason = %(sale)s
 GROUP BY 1, 2, 3
ON CONFLICT ON CONSTRAINT daily_stock_sold_rollup_key DO UPDATE SET
       units = EXCLUDED.units, refreshed_at = EXCLUDED.refreshed_at
"""

STOCK_SOLD_DELETE_STALE_SQL = """
DELETE FROM orders_dailystocksoldrollup
 WHERE day >= %(first)s AND day <= %(last)s AND refreshed_at < %(now)s
"""


# Commission entries are likewise append-only, stamped when accrued, released or clawed back.
COMMISSION_UPSERT_SQL = """
INSERT INTO orders_dailycommissionrollup (day, guide_id, amount, refreshed_at)
SELECT (e.created_at AT TIME ZONE %(tz)s)::date, e.guide_id, sum(e.frozen_delta + e.released_delta), %(now)s
  FROM members_commissionentry e
 WHERE e.created_at >= %(start)s AND e.created_at < %(end)s
 GROUP BY 1, 2
ON CONFLICT ON CONSTRAINT daily_commission_rollup_key DO UPDATE SET
       amount = EXCLUDED.amount, refreshed_at = EXCLUDED.refreshed_at
"""

COMMISSION_DELETE_STALE_SQL = """
DELETE FROM orders_dailycommissionrollup
 WHERE day >= %(first)s AND day <= %(last)s AND refreshed_at < %(now)s
"""


# One bit per channel in DailyMemberChannels.channels; a member bought through more than one
# channel in a range when the OR of their rows has more than one bit set.
CHANNEL_BITS = {channel.value: 1 << n for n, channel in enumerate(Channel)}
_CHANNEL_BIT_SQL = "CASE o.channel " + " ".join(f"WHEN '{c}' THEN {b}" for c, b in CHANNEL_BITS.items()) + " END"

# Orders paid that day against the order's store, returns received that day against the store
# that took them back (see DailyO2ORollup).
O2O_SQL = """
DELETE FROM orders_dailyo2orollup WHERE day >= %(first)s AND day <= %(last)s;
INSERT INTO orders_dailyo2orollup
       (day, store_id, channel, fulfillment, orders, picked_up, pickup_seconds, returns, returns_amount)
SELECT day, store_id, channel, fulfillment, sum(orders), sum(picked_up), sum(pickup_seconds), sum(returns),
       sum(returns_amount)
  FROM (SELECT (o.paid_at AT TIME ZONE %(tz)s)::date AS day, o.store_id, o.channel, o.fulfillment,
               count(*) AS orders,
               count(*) FILTER (WHERE o.fulfillment = %(pickup)s AND o.handed_over_at IS NOT NULL) AS picked_up,
               coalesce(sum(extract(epoch FROM o.handed_over_at - o.paid_at))
                        FILTER (WHERE o.fulfillment = %(pickup)s AND o.handed_over_at IS NOT NULL), 0)
                   AS pickup_seconds,
               0 AS returns, 0::numeric AS returns_amount
          FROM orders_order o
         WHERE o.paid_at >= %(start)s AND o.paid_at < %(end)s AND o.status <> %(cancelled)s
         GROUP BY 1, 2, 3, 4
         UNION ALL
        SELECT (r.created_at AT TIME ZONE %(tz)s)::date, r.store_id, o.channel, o.fulfillment,
               0, 0, 0, count(*), sum(r.refund_total)
          FROM orders_return r JOIN orders_order o ON o.id = r.order_id
         WHERE r.created_at >= %(start)s AND r.created_at < %(end)s
         GROUP BY 1, 2, 3, 4) AS facts
 GROUP BY day, store_id, channel, fulfillment;
"""

GUIDE_SALES_SQL = """
DELETE FROM orders_dailyguidesalesrollup WHERE day >= %(first)s AND day <= %(last)s;
INSERT INTO orders_dailyguidesalesrollup (day, guide_id, store_id, orders, sales)
SELECT (o.paid_at AT TIME ZONE %(tz)s)::date, o.guide_id, o.store_id, count(*), sum(o.total - o.refunded_total)
  FROM orders_order o
 WHERE o.paid_at >= %(start)s AND o.paid_at < %(end)s AND o.status <> %(cancelled)s AND o.guide_id IS NOT NULL
 GROUP BY 1, 2, 3;
"""

# A coupon counts against the store and channel of its issue event (one per coupon; no store for
# coupons issued without one, no channel for head-office campaigns).
COUPON_SQL = """
DELETE FROM orders_dailycouponrollup WHERE day >= %(first)s AND day <= %(last)s;
INSERT INTO orders_dailycouponrollup
       (day, store_id, channel, issued, redeemed, discount, ecommerce_amount, store_amount)
SELECT day, store_id, channel, sum(issued), sum(redeemed), sum(discount), sum(ecommerce_amount), sum(store_amount)
  FROM (SELECT (c.issued_at AT TIME ZONE %(tz)s)::date AS day, ie.store_id,
               COALESCE(ie.channel, '') AS channel, count(*) AS issued, 0 AS redeemed, 0::numeric AS discount,
               0::numeric AS ecommerce_amount, 0::numeric AS store_amount
          FROM members_issuedcoupon c
          LEFT JOIN LATERAL (SELECT e.store_id, e.channel FROM members_couponevent e
                              WHERE e.coupon_id = c.id AND e.kind = 'issued'
                              ORDER BY e.id LIMIT 1) AS ie ON true
         WHERE c.issued_at >= %(start)s AND c.issued_at < %(end)s
         GROUP BY 1, 2, 3
         UNION ALL
        SELECT (r.redeemed_at AT TIME ZONE %(tz)s)::date, r.store_id, r.channel, 0, count(*), sum(r.discount),
               sum(r.ecommerce_amount), sum(r.store_amount)
          FROM members_couponredemption r
         WHERE r.redeemed_at >= %(start)s AND r.redeemed_at < %(end)s AND r.restored_at IS NULL
         GROUP BY 1, 2, 3) AS facts
 GROUP BY day, store_id, channel;
"""

# Upserted rather than rewritten: rows that did not change keep their heap pages all-visible,
# so the range scans in the selectors stay index-only between vacuums.
MEMBER_CHANNELS_SQL = f"""
WITH fresh AS (
    SELECT (o.paid_at AT TIME ZONE %(tz)s)::date AS day, o.member_id, o.store_id,
           bit_or({_CHANNEL_BIT_SQL})::smallint AS channels
      FROM orders_order o
     WHERE o.paid_at >= %(start)s AND o.paid_at < %(end)s AND o.status <> %(cancelled)s
       AND o.member_id IS NOT NULL
     GROUP BY 1, 2, 3
), gone AS (
    DELETE FROM orders_dailymemberchannels t
     WHERE t.day >= %(first)s AND t.day <= %(last)s
       AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.day = t.day AND f.member_id = t.member_id
                                               AND coalesce(f.store_id, 0) = coalesce(t.store_id, 0))
)
INSERT INTO orders_dailymemberchannels (day, member_id, store_id, channels)
SELECT day, member_id, store_id, channels FROM fresh
ON CONFLICT (day, member_id, store_id) DO UPDATE SET channels = EXCLUDED.channels
 WHERE orders_dailymemberchannels.channels <> EXCLUDED.channels
"""

# Rebuilt for every member with a day in the refreshed span (now or before), from ``first`` on:
# a new or vanished day moves later days' ``last_<channel>`` and the previous day's ``next_day``.
# Each member's last day before ``first`` carries their earlier history, so only their rows from
# ``first`` on are recomputed, and only rows that changed are written (the rest stay all-visible).
_LAST = {c: f"last_{c}" for c in CHANNEL_BITS}
LAST_COLUMNS = tuple(_LAST.values())
_COLUMNS = ", ".join(LAST_COLUMNS)
MEMBER_ACTIVITY_SQL = f"""
WITH affected AS (
    SELECT member_id FROM orders_dailymemberchannels WHERE day >= %(first)s AND day <= %(last)s
     UNION
    SELECT member_id FROM orders_memberactivityday WHERE day >= %(first)s AND day <= %(last)s
), base AS (
    SELECT b.* FROM affected a
     CROSS JOIN LATERAL (SELECT t.member_id, t.day, t.next_day, {", ".join(f"t.{c}" for c in LAST_COLUMNS)}
                           FROM orders_memberactivityday t
                          WHERE t.member_id = a.member_id AND t.day < %(first)s
                          ORDER BY t.day DESC LIMIT 1) AS b
), days AS (
    SELECT m.member_id, m.day, bit_or(m.channels) AS channels
      FROM orders_dailymemberchannels m
     WHERE m.day >= %(first)s AND m.member_id IN (SELECT member_id FROM affected)
     GROUP BY 1, 2
), fresh AS (
    SELECT d.member_id, d.day, lead(d.day) OVER w AS next_day,
           {", ".join(f"greatest(b.{_LAST[c]}, max(d.day) FILTER (WHERE d.channels & {bit} <> 0) OVER w) AS {_LAST[c]}"
                      for c, bit in CHANNEL_BITS.items())}
      FROM days d LEFT JOIN base b ON b.member_id = d.member_id
    WINDOW w AS (PARTITION BY d.member_id ORDER BY d.day)
), gone AS (
    DELETE FROM orders_memberactivityday t USING affected a
     WHERE t.member_id = a.member_id AND t.day >= %(first)s
       AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.member_id = t.member_id AND f.day = t.day)
)
, first_new AS (
    SELECT member_id, min(day) AS day FROM days GROUP BY member_id
), relinked AS (
    UPDATE orders_memberactivityday t
       SET next_day = n.day
      FROM base b LEFT JOIN first_new n ON n.member_id = b.member_id
     WHERE t.member_id = b.member_id AND t.day = b.day AND t.next_day IS DISTINCT FROM n.day
)
INSERT INTO orders_memberactivityday (member_id, day, next_day, {_COLUMNS})
SELECT member_id, day, next_day, {_COLUMNS} FROM fresh
ON CONFLICT (member_id, day) DO UPDATE SET
       next_day = EXCLUDED.next_day, {", ".join(f"{c} = EXCLUDED.{c}" for c in LAST_COLUMNS)}
 WHERE (orders_memberactivityday.next_day, {", ".join(f"orders_memberactivityday.{c}" for c in LAST_COLUMNS)})
       IS DISTINCT FROM (EXCLUDED.next_day, {", ".join(f"EXCLUDED.{c}" for c in LAST_COLUMNS)})
"""


# Second latest of a row's last_<channel> days: the pairwise earlier days' latest (no channel day
# compares as -infinity, and none of two gives NULL).
_PAIRS = [(a, b) for i, a in enumerate(LAST_COLUMNS) for b in LAST_COLUMNS[i + 1:]]
_SECOND_LAST = ("nullif(greatest(" + ", ".join(f"least(coalesce({a}, '-infinity'), coalesce({b}, '-infinity'))"
                                                for a, b in _PAIRS) + "), '-infinity')")

# Whole table each time: a refreshed span can relink a member's day long before it.  Days further
# apart than any range can span are stored as none (see MemberActivityCount).
_COUNT_ROWS = """
SELECT scope, day, CASE WHEN next_day - day < %(span)s THEN next_day END,
       CASE WHEN day - omni_since < %(span)s THEN omni_since END, count(*)
  FROM chain GROUP BY 1, 2, 3, 4
"""

# The store sets a dashboard scope can be: each store, each city's stores, each region's stores.
_SCOPES_CTE = """
WITH st AS (
    SELECT s.id AS store_id, s.city_id, c.region_id FROM stores_store s JOIN stores_city c ON c.id = s.city_id
), cities AS (
    SELECT city_id, string_agg(store_id::text, ',' ORDER BY store_id) AS scope FROM st GROUP BY city_id
), regions AS (
    SELECT region_id, string_agg(store_id::text, ',' ORDER BY store_id) AS scope FROM st GROUP BY region_id
), member_of AS (
    SELECT store_id, store_id::text AS scope FROM st
     UNION
    SELECT st.store_id, c.scope FROM st JOIN cities c USING (city_id)
     UNION
    SELECT st.store_id, r.scope FROM st JOIN regions r USING (region_id)
)"""

MEMBER_ACTIVITY_COUNT_SQL = f"""
DELETE FROM reporting_memberactivitycount;
DELETE FROM reporting_memberactivityscope;
WITH chain AS (
    SELECT ''::text AS scope, day, next_day, {_SECOND_LAST} AS omni_since FROM orders_memberactivityday
)
INSERT INTO reporting_memberactivitycount (scope, day, next_day, omni_since, members)
{_COUNT_ROWS};
{_SCOPES_CTE}
INSERT INTO reporting_memberactivityscope (scope) SELECT DISTINCT scope FROM member_of;
{_SCOPES_CTE}, days AS (
    SELECT g.scope, m.member_id, m.day, bit_or(m.channels) AS channels
      FROM orders_dailymemberchannels m JOIN member_of g ON g.store_id = m.store_id
     GROUP BY 1, 2, 3
), lasts AS (
    SELECT scope, day, lead(day) OVER w AS next_day,
           {", ".join(f"max(day) FILTER (WHERE channels & {bit} <> 0) OVER w AS {_LAST[c]}"
                      for c, bit in CHANNEL_BITS.items())}
      FROM days
    WINDOW w AS (PARTITION BY scope, member_id ORDER BY day)
), chain AS (
    SELECT scope, day, next_day, {_SECOND_LAST} AS omni_since FROM lasts
)
INSERT INTO reporting_memberactivitycount (scope, day, next_day, omni_since, members)
{_COUNT_ROWS};
"""

MEMBER_TIER_SQL = """
DELETE FROM reporting_membertierrollup;
INSERT INTO reporting_membertierrollup
       (tier_id, members, points_available, points_frozen, wallet_principal, wallet_bonus, refreshed_at)
SELECT m.tier_id, count(*), coalesce(sum(m.points_available), 0), coalesce(sum(m.points_frozen), 0),
       coalesce(sum(m.wallet_principal), 0), coalesce(sum(m.wallet_bonus), 0), %(now)s
  FROM members_member m
 WHERE m.merged_into_id IS NULL
 GROUP BY m.tier_id;
"""

# Payment days before ``since`` whose orders (or coupon redemptions) changed since then.
CHANGED_DAYS_SQL = """
SELECT (o.paid_at AT TIME ZONE %(tz)s)::date FROM orders_order o
 WHERE o.updated_at >= %(since)s AND o.paid_at < %(since)s
UNION
SELECT (r.redeemed_at AT TIME ZONE %(tz)s)::date FROM members_couponredemption r
 WHERE r.restored_at >= %(since)s AND r.redeemed_at < %(since)s
 ORDER BY 1
"""


def business_today() -> date:
    return timezone.localdate(timezone.now(), ZoneInfo(settings.TIME_ZONE))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


def sales_rollup_refresh(*, first: date, last: date) -> int:
    """Recompute the roll-ups for business days ``first``..``last`` (inclusive), then the member
    counts and balances.  Returns sales rows written.

    Takes row locks only on the roll-up rows it upserts; no side effects; idempotent.
    """
    with transaction.atomic():
        written = _refresh_days(first=first, last=last)
        _refresh_members()
    return written


def _refresh_days(*, first: date, last: date) -> int:
    if last < first:
        raise ValueError("last must not be before first")
    now = timezone.now()
    params = {"tz": settings.TIME_ZONE, "start": _day_start(first), "end": _day_start(last + timedelta(days=1)),
              "cancelled": Status.CANCELLED.value, "now": now, "first": first, "last": last,
              "sale": MoveReason.SALE.value, "pickup": Fulfillment.PICKUP.value}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(UPSERT_SQL, params)
        written = cursor.rowcount
        cursor.execute(DELETE_STALE_SQL, params)
        cursor.execute(STOCK_SOLD_UPSERT_SQL, params)
        cursor.execute(STOCK_SOLD_DELETE_STALE_SQL, params)
        cursor.execute(COMMISSION_UPSERT_SQL, params)
        cursor.execute(COMMISSION_DELETE_STALE_SQL, params)
        cursor.execute(O2O_SQL, params)
        cursor.execute(GUIDE_SALES_SQL, params)
        cursor.execute(COUPON_SQL, params)
        cursor.execute(MEMBER_CHANNELS_SQL, params)
        cursor.execute(MEMBER_ACTIVITY_SQL, params)
    return written


def _refresh_members() -> None:
    """The distinct-member counts (from the member activity days) and the per-tier balances."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Rebuilt whole: overlapping refreshes take turns (the page's reads are not blocked), so the
        # second one deletes the rows the first inserted instead of adding to them.
        cursor.execute("LOCK TABLE reporting_memberactivitycount, reporting_memberactivityscope, "
                       "reporting_membertierrollup IN EXCLUSIVE MODE")
        cursor.execute(MEMBER_ACTIVITY_COUNT_SQL, {"span": MemberActivityCount.MAX_SPAN_DAYS})
        cursor.execute(MEMBER_TIER_SQL, {"now": timezone.now()})


def rollup_changed_days(*, since: datetime) -> list[date]:
    """Payment days before ``since`` of orders changed since then (handed over, cancelled, refunded)
    and redemption days of coupons given back since then: the older days whose roll-ups moved."""
    with connection.cursor() as cursor:
        cursor.execute(CHANGED_DAYS_SQL, {"tz": settings.TIME_ZONE, "since": since})
        return [row[0] for row in cursor.fetchall()]


def sales_rollup_refresh_recent(*, days: int = 3) -> int:
    """Refresh today and the ``days`` business days before it (late payments, cancellations, returns),
    then every older day whose orders changed within that window.

    Looking back over the whole window rather than since the last run needs no bookkeeping and
    still catches changes a missed run would have seen.
    """
    today = business_today()
    first = today - timedelta(days=days)
    written = _refresh_days(first=first, last=today)
    for day in rollup_changed_days(since=_day_start(first)):
        written += _refresh_days(first=day, last=day)
    _refresh_members()
    return written
