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


@audit_check("3", "an exchange sale belongs to the original order's member")
def exchange_sales_keep_their_member():
    """The new sale of an exchange is the original customer's: the same member (or the one that member
    was merged into); when the original had no member, the clerk may have attached one."""
    with connection.cursor() as cur:
        cur.execute(
            """
            WITH RECURSIVE survivor(id, final) AS (
                SELECT id, id FROM members_member WHERE merged_into_id IS NULL
                UNION ALL
                SELECT m.id, s.final FROM members_member m JOIN survivor s ON m.merged_into_id = s.id
            )
            SELECT r.number, o.number, o.member_id, n.number, n.member_id
            FROM orders_return r
            JOIN orders_order o ON o.id = r.order_id
            JOIN orders_order n ON n.id = r.exchange_order_id
            LEFT JOIN survivor so ON so.id = o.member_id
            LEFT JOIN survivor sn ON sn.id = n.member_id
            WHERE o.member_id IS NOT NULL AND sn.final IS DISTINCT FROM so.final
            ORDER BY r.id
            """
        )
        for ret, original, member, new, new_member in cur.fetchall():
            yield (f"exchange {ret}: order {original} is member {member}'s but the new sale {new} "
                   f"belongs to {new_member or 'nobody'}")


@audit_check("3", "points paying for returned goods come back once: to the member or into the exchange credit")
def returned_points_given_back_once():
    """A points payment refunded to the member restores exactly the points that refund stands for; a
    part credited to an exchange sale restores none (the credit carries it); together never more than
    the points the order spent."""
    with connection.cursor() as cur:
        cur.execute(
            """
            WITH rate AS (
                SELECT COALESCE((SELECT points_per_yuan_redeemed FROM members_pointsconfig WHERE id = 1), 100) AS r
            ), paid AS (
                SELECT p.reference, SUM(p.amount) AS spent,
                       SUM(COALESCE(f.back, 0)) AS back, SUM(COALESCE(f.credited, 0)) AS credited,
                       SUM(COALESCE(f.back_points, 0)) AS back_points
                FROM payments_payment p
                LEFT JOIN (
                    SELECT payment_id,
                           SUM(amount) FILTER (WHERE method <> 'exchange') AS back,
                           SUM(amount) FILTER (WHERE method = 'exchange') AS credited,
                           SUM(CEIL(amount * (SELECT r FROM rate))) FILTER (WHERE method <> 'exchange') AS back_points
                    FROM payments_refund WHERE status = 'succeeded' GROUP BY payment_id
                ) f ON f.payment_id = p.id
                WHERE p.tender = 'points' AND p.status = 'captured'
                GROUP BY p.reference
            ), restored AS (
                SELECT order_number, SUM(available_delta) AS points
                FROM members_pointsentry WHERE kind = 'restore' GROUP BY order_number
            )
            SELECT paid.reference, paid.spent, paid.back, paid.credited, paid.back_points,
                   COALESCE(restored.points, 0)
            FROM paid LEFT JOIN restored ON restored.order_number = paid.reference
            WHERE COALESCE(restored.points, 0) <> paid.back_points OR paid.back + paid.credited > paid.spent
            ORDER BY 1
            """
        )
        for number, spent, back, credited, back_points, restored in cur.fetchall():
            yield (f"order {number}: paid ¥{spent} in points, ¥{back} refunded to the member "
                   f"({back_points} points) and ¥{credited} into an exchange credit, but {restored} points "
                   f"were restored")


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


@audit_check("4", "a cash-on-delivery order paid by the courier has one remittance, equal to what was due")
def cod_orders_have_one_remittance():
    """Every captured COD payment was captured by exactly one courier remittance of the same amount and
    tracking number; the order is marked paid; and the remittance plus the order's other captured
    payments (less what was given back as overpayment) come to the order's total: what was due."""
    with connection.cursor() as cur:
        cur.execute(
            f"""
            WITH cod AS (
                SELECT o.id, o.number, o.total, o.paid_at,
                       COUNT(DISTINCT py.id) FILTER (WHERE py.status = 'captured') AS captured_cod,
                       COUNT(DISTINCT r.id) AS remittances,
                       COUNT(DISTINCT r.id) FILTER (WHERE py.id = r.payment_id AND py.status = 'captured'
                                                    AND py.amount = r.amount
                                                    AND py.provider_txn_id = r.tracking_number) AS matching,
                       COALESCE(SUM(DISTINCT r.amount), 0) AS remitted
                FROM orders_order o
                JOIN payments_payment py ON py.reference = o.number AND py.tender = 'cash_on_delivery'
                LEFT JOIN orders_codremittance r ON r.order_id = o.id
                GROUP BY o.id
            )
            SELECT c.number, c.total, c.paid_at IS NOT NULL, c.captured_cod, c.remittances, c.matching,
                   c.remitted, COALESCE(p.captured, 0) - COALESCE(x.excess, 0)
            FROM cod c
            JOIN orders_order o ON o.id = c.id
            {_PAYMENTS_BY_ORDER}
            WHERE (c.captured_cod > 0 OR c.remittances > 0) AND (
                   c.captured_cod <> 1 OR c.remittances <> 1 OR c.matching <> 1 OR c.paid_at IS NULL
                OR COALESCE(p.captured, 0) - COALESCE(x.excess, 0) <> c.total)
            ORDER BY c.id
            """
        )
        for number, total, paid, captured, remittances, matching, remitted, kept in cur.fetchall():
            yield (f"order {number}: total {total}, marked paid {paid}; {captured} COD payments captured, "
                   f"{remittances} remittances ({matching} matching a capture) for {remitted}; "
                   f"captured in all {kept}")


@audit_check("4", "a return's refund equals its lines' and the cash rounding stays a rounding")
def returns_add_up():
    """A return's ``refund_total`` is what left the store: the sum of its lines' refunds (the cash
    rounding booked on it is kept out of them).  An order's 抹零 is less than the largest cash unit
    (¥1.00) and part of the order's discount."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT 'return ' || r.number, r.refund_total, COALESCE(SUM(rl.refund_amount), 0), r.cash_rounding
            FROM orders_return r LEFT JOIN orders_returnline rl ON rl.ret_id = r.id
            GROUP BY r.id
            HAVING r.refund_total <> COALESCE(SUM(rl.refund_amount), 0)
            UNION ALL
            SELECT 'order ' || o.number, o.total, o.discount_total, o.cash_rounding FROM orders_order o
            WHERE o.cash_rounding < 0 OR o.cash_rounding >= 1 OR o.cash_rounding > o.discount_total
            """
        )
        for what, amount, parts, rounding in cur.fetchall():
            yield f"{what}: {amount} against {parts}, cash rounding {rounding}"


@audit_check("4", "a promotion's counters equal what its standing sales took, net of returns")
def promotion_counters_match_sales():
    """Uses: the orders that took the promotion and are not all returned.  Budget used: what it took off
    their lines, less the returned units' share (rounded as a return gives it back).  The counters move
    only with the sales and returns, in their transactions, so any difference is a lost update."""
    with connection.cursor() as cur:
        cur.execute(
            """
            WITH rows AS (
                SELECT lp.promotion_id, l.order_id, lp.amount - round(lp.amount * l.qty_returned / l.qty, 2) AS left_
                  FROM orders_orderlinepromotion lp JOIN orders_orderline l ON l.id = lp.line_id
            ), standing AS (
                SELECT DISTINCT order_id FROM orders_orderline WHERE qty_returned < qty
                   AND order_id IN (SELECT order_id FROM rows)
            ), s AS (
                SELECT r.promotion_id, sum(r.left_) AS amount,
                       count(DISTINCT r.order_id) FILTER (WHERE st.order_id IS NOT NULL) AS uses
                  FROM rows r LEFT JOIN standing st ON st.order_id = r.order_id
                 GROUP BY r.promotion_id
            )
            SELECT p.code, p.used_count, COALESCE(s.uses, 0), p.used_amount, COALESCE(s.amount, 0)
              FROM promotions_promotion p LEFT JOIN s ON s.promotion_id = p.id
             WHERE p.used_count <> COALESCE(s.uses, 0) OR p.used_amount <> COALESCE(s.amount, 0)
             ORDER BY p.id
            """
        )
        for code, uses, standing, used, amount in cur.fetchall():
            yield (f"promotion {code}: counts {uses} uses and {used} used, but its standing sales took "
                   f"{standing} uses and {amount}")


@audit_check("4", "a gift brought back keeps none of the value withheld for it")
def gifts_back_keep_nothing_withheld():
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT o.number, lp.code, lp.gift_taken_back, lp.gift_value_taken_back
              FROM orders_orderlinepromotion lp JOIN orders_orderline l ON l.id = lp.line_id
              JOIN orders_order o ON o.id = l.order_id
             WHERE lp.gift_qty > 0 AND l.qty_returned >= l.qty
               AND (lp.gift_taken_back > 0 OR lp.gift_value_taken_back > 0)
             ORDER BY lp.id
            """
        )
        for number, code, units, value in cur.fetchall():
            yield (f"order {number}: the gift of {code} is back but {units} unit(s), {value}, are still "
                   f"withheld")
