"""Invariant 4 of DESIGN.md: for every paid order, Σ captured payments − Σ refunds ==
order total − refunded value, to the fen; no order keeps more than it is due; and the order's own
sums hold."""

from django.db import connection

from o2o.audit import audit_check
from orders.models import OPEN_PICKUP_STATUSES

PAID_STATES = ("paid", "ready_for_pickup", "partially_shipped", "shipped", "picked_up", "completed", "cancelled")


# Money captured beyond what an order was due and given back (``Refund.overpayment``, not failed)
# never counted towards the order: it is taken out of the captured sum before comparing.
_PAYMENTS_BY_ORDER = """
    LEFT JOIN (
        SELECT reference,
               SUM(amount) FILTER (WHERE status = 'captured') AS captured,
               SUM(refunded_amount + refunding_amount) AS refunded
        FROM payments_payment GROUP BY reference
    ) p ON p.reference = o.number
    LEFT JOIN (
        SELECT py.reference, SUM(r.amount) AS excess
        FROM payments_refund r JOIN payments_payment py ON py.id = r.payment_id
        WHERE r.overpayment AND r.status <> 'failed' GROUP BY py.reference
    ) x ON x.reference = o.number
"""


@audit_check("4", "payments minus refunds equal order total minus refunded value")
def payments_match_orders():
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT o.number, o.status, o.total, o.paid_total, o.refunded_total,
                   COALESCE(p.captured, 0), COALESCE(p.refunded, 0), COALESCE(x.excess, 0)
            FROM orders_order o
            {_PAYMENTS_BY_ORDER}
            WHERE o.paid_at IS NOT NULL AND (
                   COALESCE(p.captured, 0) - COALESCE(x.excess, 0) <> o.paid_total
                OR o.paid_total <> o.total
                OR COALESCE(p.captured, 0) - COALESCE(p.refunded, 0) <> o.total - o.refunded_total)
            ORDER BY o.id
            """
        )
        for number, status, total, paid, refunded, captured, p_refunded, excess in cur.fetchall():
            yield (f"order {number} ({status}): total {total}, paid {paid}, refunded {refunded}; "
                   f"payments captured {captured}, refunded {p_refunded} (of which overpayment {excess})")


@audit_check("4", "no order keeps more money than it is due")
def orders_keep_at_most_their_due():
    """Captured − refunded ≤ due, for every order: an unpaid order is due at most its total, a paid
    one its total less what was refunded, one closed unpaid (cancelled, expired) nothing."""
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT o.number, o.status, due, COALESCE(p.captured, 0) - COALESCE(p.refunded, 0)
            FROM orders_order o
            {_PAYMENTS_BY_ORDER}
            CROSS JOIN LATERAL (SELECT CASE
                WHEN o.paid_at IS NOT NULL THEN o.total - o.refunded_total
                WHEN o.status IN ('cancelled', 'expired') THEN 0
                ELSE o.total END AS due) d
            WHERE COALESCE(p.captured, 0) - COALESCE(p.refunded, 0) > due
            ORDER BY o.id
            """
        )
        for number, status, due, kept in cur.fetchall():
            yield f"order {number} ({status}): keeps {kept} but is due {due}"


@audit_check("4", "order lines add up to the order and refunds stay within lines")
def order_lines_add_up():
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT o.number, o.total, o.refunded_total, SUM(l.line_total), SUM(l.refunded_amount)
            FROM orders_order o JOIN orders_orderline l ON l.order_id = o.id
            GROUP BY o.id
            HAVING SUM(l.line_total) <> o.total
                OR (o.status <> 'cancelled' AND SUM(l.refunded_amount) <> o.refunded_total)
            """
        )
        for number, total, refunded, lines_total, lines_refunded in cur.fetchall():
            yield (f"order {number}: total {total} vs lines {lines_total}; "
                   f"refunded {refunded} vs lines {lines_refunded}")


@audit_check("1", "returned units were restocked where they were received")
def returns_restocked():
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT r.number, COALESCE(SUM(rl.qty), 0), COALESCE(m.moved, 0)
            FROM orders_return r
            JOIN orders_returnline rl ON rl.ret_id = r.id
            LEFT JOIN (SELECT reference, SUM(qty) AS moved FROM inventory_stockmove
                       WHERE reason = 'return' GROUP BY reference) m ON m.reference = r.number
            GROUP BY r.number, m.moved
            HAVING COALESCE(SUM(rl.qty), 0) <> COALESCE(m.moved, 0)
            """
        )
        for number, qty, moved in cur.fetchall():
            yield f"return {number}: {qty} units returned but {moved} restocked"


@audit_check("5", "a pickup code belongs to one open order")
def pickup_codes_open_once():
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT pickup_code, array_agg(number ORDER BY id)
            FROM orders_order
            WHERE pickup_code IS NOT NULL AND status = ANY(%s)
            GROUP BY pickup_code HAVING COUNT(*) > 1
            """,
            [list(OPEN_PICKUP_STATUSES)],
        )
        for code, numbers in cur.fetchall():
            yield f"pickup code {code} is held by open orders {', '.join(numbers)}"
