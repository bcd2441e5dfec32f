"""Promotion cost by bearer in settlement: the set-based SQL that settles what each promotion took off
each order line, and who bears it (head office, e-commerce, the store, a supplier).

Like the split, each insert is one ``INSERT … SELECT`` for one store step over one window, aggregated in
the same statement from its ``RETURNING`` rows.  The events are the split's: an order paid (its lines'
explanation rows, ``orders_orderlinepromotion``), a return line (the returned units' share, cumulatively
rounded over the line's earlier return lines, so a line returned in parts reverses exactly what the
promotion took off it) and a paid order cancelled (the sale negated).  The statement is the order's
store and channel, as for its split lines.  Placeholders as in :mod:`settlement.sql`.
"""

from __future__ import annotations

BEARERS = ("hq", "ecommerce", "store", "supplier")

_ST = "st AS (SELECT * FROM unnest(%(st_channel)s::text[], %(st_id)s::bigint[]) AS t(channel, id))"

_INSERT = """
INSERT INTO settlement_promotioncostline
       (statement_id, kind, order_id, order_line_id, line_promotion_id, return_line_id, promotion_id, bearer,
        store_id, event_at, adjustment, amount)"""

_RESULT = """
    RETURNING statement_id, bearer, amount
) SELECT statement_id, bearer, count(*), sum(amount) FROM ins GROUP BY statement_id, bearer"""

SALES_SQL = f"""
WITH {_ST}, ins AS ({_INSERT}
    SELECT st.id, 'sale', o.id, l.id, lp.id, NULL, lp.promotion_id, lp.bearer, o.store_id, o.paid_at,
           o.paid_at < %(day_lo)s, lp.amount
      FROM orders_order o
      JOIN orders_orderline l ON l.order_id = o.id
      JOIN orders_orderlinepromotion lp ON lp.line_id = l.id
      JOIN st ON st.channel = o.channel
     WHERE {{pred}} AND o.paid_at >= %(lo)s AND o.paid_at < %(hi)s {{late}}{_RESULT}"""

SALES_LATE = ("AND NOT EXISTS (SELECT 1 FROM settlement_promotioncostline x "
              "WHERE x.line_promotion_id = lp.id AND x.kind = 'sale')")

CANCELS_SQL = f"""
WITH {_ST}, cancelled AS (
    SELECT e.order_id, min(e.created_at) AS at FROM orders_orderevent e
     WHERE e.to_status = 'cancelled' AND e.created_at >= %(lo)s AND e.created_at < %(hi)s
     GROUP BY e.order_id
), ins AS ({_INSERT}
    SELECT st.id, 'cancel', o.id, l.id, lp.id, NULL, lp.promotion_id, lp.bearer, o.store_id, c.at,
           c.at < %(day_lo)s, -lp.amount
      FROM cancelled c
      JOIN orders_order o ON o.id = c.order_id AND o.paid_at IS NOT NULL
      JOIN orders_orderline l ON l.order_id = o.id
      JOIN orders_orderlinepromotion lp ON lp.line_id = l.id
      JOIN st ON st.channel = o.channel
     WHERE {{pred}} {{late}}{_RESULT}"""

CANCELS_LATE = ("AND NOT EXISTS (SELECT 1 FROM settlement_promotioncostline x "
                "WHERE x.line_promotion_id = lp.id AND x.kind = 'cancel')")

# The returned units' share of a row: what the units up to this return line took, less what the
# line's earlier return lines took (the same rounding as the caps a return gives back).
RETURNED_SHARE = ("(round(lp.amount * (c.qty + rl.qty) / l.qty, 2) - round(lp.amount * c.qty / l.qty, 2))")
EARLIER_RETURNS = """
      CROSS JOIN LATERAL (SELECT COALESCE(sum(x.qty), 0) AS qty FROM orders_returnline x
                           WHERE x.order_line_id = rl.order_line_id AND x.id < rl.id) c"""

RETURNS_SQL = f"""
WITH {_ST}, ins AS ({_INSERT}
    SELECT st.id, 'return', o.id, l.id, lp.id, rl.id, lp.promotion_id, lp.bearer, o.store_id, r.created_at,
           r.created_at < %(day_lo)s, -{RETURNED_SHARE}
      FROM orders_return r
      JOIN orders_returnline rl ON rl.ret_id = r.id
      JOIN orders_order o ON o.id = r.order_id
      JOIN orders_orderline l ON l.id = rl.order_line_id
      JOIN orders_orderlinepromotion lp ON lp.line_id = l.id
      JOIN st ON st.channel = o.channel
      {EARLIER_RETURNS}
     WHERE r.created_at >= %(lo)s AND r.created_at < %(hi)s AND {{pred}} {{late}}{_RESULT}"""

RETURNS_LATE = ("AND NOT EXISTS (SELECT 1 FROM settlement_promotioncostline x WHERE x.line_promotion_id = lp.id "
                "AND x.kind = 'return' AND COALESCE(x.return_line_id, 0) = rl.id)")

# (event name as the store step counts it, template, store column, anti-join for late events)
DETAIL = [
    ("orders_paid", SALES_SQL, "o.store_id", SALES_LATE),
    ("cancels", CANCELS_SQL, "o.store_id", CANCELS_LATE),
    ("returns", RETURNS_SQL, "o.store_id", RETURNS_LATE),
]

# What the explanation rows say a window owes each (store, bearer): sales paid, less returns and
# cancellations of the window, by the same rules; against the settled promotion cost lines whose
# events fall in the window.  Used by the audit.
SOURCE_VS_SETTLED_SQL = f"""
WITH source AS (
    SELECT o.store_id, lp.bearer, lp.amount AS amount
      FROM orders_order o JOIN orders_orderline l ON l.order_id = o.id
      JOIN orders_orderlinepromotion lp ON lp.line_id = l.id
     WHERE o.paid_at >= %(lo)s AND o.paid_at < %(hi)s
    UNION ALL
    SELECT o.store_id, lp.bearer, -{RETURNED_SHARE}
      FROM orders_return r JOIN orders_returnline rl ON rl.ret_id = r.id
      JOIN orders_order o ON o.id = r.order_id JOIN orders_orderline l ON l.id = rl.order_line_id
      JOIN orders_orderlinepromotion lp ON lp.line_id = l.id
      {EARLIER_RETURNS}
     WHERE r.created_at >= %(lo)s AND r.created_at < %(hi)s
    UNION ALL
    SELECT o.store_id, lp.bearer, -lp.amount
      FROM orders_order o JOIN orders_orderline l ON l.order_id = o.id
      JOIN orders_orderlinepromotion lp ON lp.line_id = l.id
     WHERE o.paid_at IS NOT NULL AND o.id IN (
           SELECT e.order_id FROM orders_orderevent e
            WHERE e.to_status = 'cancelled' AND e.created_at >= %(lo)s AND e.created_at < %(hi)s)
), a AS (SELECT store_id, bearer, sum(amount) AS amount FROM source GROUP BY store_id, bearer),
b AS (
    SELECT ss.store_id, p.bearer, sum(p.amount) AS amount
      FROM settlement_promotioncostline p
      JOIN orders_settlementstatement st ON st.id = p.statement_id
      JOIN orders_storesettlement ss ON ss.id = st.store_settlement_id
     WHERE p.event_at >= %(lo)s AND p.event_at < %(hi)s
     GROUP BY ss.store_id, p.bearer
)
SELECT COALESCE(a.store_id, b.store_id), COALESCE(a.bearer, b.bearer), a.amount, b.amount
  FROM a FULL JOIN b ON COALESCE(a.store_id, 0) = COALESCE(b.store_id, 0) AND a.bearer = b.bearer
 WHERE a.amount IS DISTINCT FROM b.amount
"""

# A statement's promotion columns against its promotion cost lines.
STATEMENT_SQL = """
WITH p AS (
    SELECT statement_id, sum(amount) AS total,
           COALESCE(sum(amount) FILTER (WHERE bearer = 'hq'), 0) AS hq,
           COALESCE(sum(amount) FILTER (WHERE bearer = 'ecommerce'), 0) AS ecommerce,
           COALESCE(sum(amount) FILTER (WHERE bearer = 'store'), 0) AS store,
           COALESCE(sum(amount) FILTER (WHERE bearer = 'supplier'), 0) AS supplier
      FROM settlement_promotioncostline WHERE statement_id = ANY(%(ids)s) GROUP BY statement_id
)
SELECT st.id, st.business_day, st.store_id, st.channel
  FROM orders_settlementstatement st LEFT JOIN p ON p.statement_id = st.id
 WHERE st.id = ANY(%(ids)s) AND (
       st.promotion_discount <> COALESCE(p.total, 0) OR st.promotion_cost_hq <> COALESCE(p.hq, 0)
    OR st.promotion_cost_ecommerce <> COALESCE(p.ecommerce, 0) OR st.promotion_cost_store <> COALESCE(p.store, 0)
    OR st.promotion_cost_supplier <> COALESCE(p.supplier, 0))
"""
