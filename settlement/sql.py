"""The set-based SQL of settlement.

Each detail insert is one ``INSERT … SELECT`` over a time window for one store
(or for "no store"), wrapped in a data-modifying CTE whose ``RETURNING`` rows
are aggregated in the same statement: the database writes the lines and hands
back the statement totals without anyone reading the lines again.

Placeholders: ``%(lo)s``/``%(hi)s`` the window being read, ``%(day_lo)s`` the start
of the day being settled (events before it are late: adjustments), ``%(store)s``
the store of the step, ``st_*`` the statement ids by channel, ``rm_*`` the split
rule chosen for every (channel, fulfillment, fulfilling store, guide elsewhere).
``{pred}``-style slots are filled by :func:`store_pred` (``= %(store)s`` or ``IS NULL``),
``{late}`` by nothing or by the anti-join that skips events already settled.
"""

from __future__ import annotations

# Whose statement an event is on.  Revenue: the order's store (where sold or picked up).
# Money: where it moved — a payment where it was taken, a cash or exchange refund where
# it was handed out, any other refund back where its payment was taken.
REFUND_LOCATION = ("(CASE WHEN r.method IN ('cash', 'exchange') THEN COALESCE(r.store_id, p.store_id) "
                   "ELSE p.store_id END)")
REFUND_TENDER = "(CASE r.method WHEN 'cash' THEN 'cash' WHEN 'exchange' THEN 'exchange_credit' ELSE p.tender END)"


def store_pred(column: str, store_id: int | None) -> str:
    return f"{column} = %(store)s" if store_id is not None else f"{column} IS NULL"


COMMON_CTES = """
gh AS (  -- a guide's home store: their first store membership
    SELECT DISTINCT ON (staff_id) staff_id, store_id
      FROM stores_storemembership ORDER BY staff_id, since, id
), rm AS (  -- the rule of every (channel, fulfillment, fulfilling store or 0, guide elsewhere) as one key
    SELECT * FROM unnest(%(rm_key)s::text[], %(rm_rule)s::bigint[], %(rm_ecom)s::numeric[], %(rm_guide)s::numeric[],
                         %(rm_credit)s::boolean[], %(rm_trade)s::numeric[])
           AS t(key, rule_id, ecom, guide, credit, trade)
), st AS (
    SELECT * FROM unnest(%(st_channel)s::text[], %(st_id)s::bigint[]) AS t(channel, id)
)"""

# What every kind needs of an order line (aliases: o order, l line, ws the line's store if shipped from one).
LINE_COLUMNS = """
        o.id AS order_id, l.id AS order_line_id, o.channel, o.fulfillment, o.guide_id,
        l.unit_price, l.qty AS line_qty, l.coupon_discount AS line_coupon, l.line_total,
        CASE o.fulfillment WHEN 'ship_warehouse' THEN NULL::bigint
             WHEN 'ship_store' THEN COALESCE(ws.id, o.store_id) ELSE o.store_id END AS party_store,
        o.coupon_discount AS order_coupon, o.coupon_cost_ecommerce AS order_coupon_ecommerce,
        cb.amount AS coupon_before, pr.line AS product_line, tr.store_id AS trade_store"""

# The coupon discount of the order's earlier lines, looked up only for orders with a coupon
# (a lateral join, so the planner evaluates it once per line however often it is used).
COUPON_BEFORE = """
      LEFT JOIN LATERAL (SELECT COALESCE(sum(x.coupon_discount), 0) AS amount FROM orders_orderline x
                          WHERE o.coupon_discount > 0 AND x.order_id = o.id AND x.line_no < l.line_no) cb ON true"""

# The line's product line and the trade-area store of where the order is shipped (rules use both):
# the store with the longest postcode prefix matching the order's postcode (a tie: the store in the
# city shipped to, then the lowest id), or else the store whose trade area is the city shipped to.
TRADE_STORE = """COALESCE(
                 (SELECT pc.store_id FROM stores_tradeareapostcode pc JOIN stores_store ps ON ps.id = pc.store_id
                   WHERE o.ship_postcode <> '' AND left(o.ship_postcode, length(pc.prefix)) = pc.prefix
                   ORDER BY length(pc.prefix) DESC, (ps.city_id = o.ship_city_id) IS TRUE DESC, pc.store_id
                   LIMIT 1),
                 (SELECT ta.store_id FROM stores_tradearea ta WHERE ta.city_id = o.ship_city_id))"""
# Whether the order is shipped somewhere a trade area could cover (only then is TRADE_STORE looked up).
SHIPPED_TO = "(o.ship_postcode <> '' OR o.ship_city_id IS NOT NULL)"
PRODUCT_JOIN = """
      JOIN catalog_sku sk ON sk.id = l.sku_id JOIN catalog_product pr ON pr.id = sk.product_id"""
TERRITORY_JOIN = PRODUCT_JOIN + f"""
      LEFT JOIN LATERAL (SELECT {TRADE_STORE} AS store_id) tr ON {SHIPPED_TO}"""

# Lines are reached order by order through their index: a step reads its own orders' lines only.
LINE_JOIN = """
      CROSS JOIN LATERAL (SELECT * FROM orders_orderline l0 WHERE l0.order_id = o.id OFFSET 0) l
      LEFT JOIN stores_store ws ON o.fulfillment = 'ship_store' AND ws.warehouse_id = l.warehouse_id""" + \
    COUPON_BEFORE + TERRITORY_JOIN

# The store part of a rule-map key: 0 none, the store if a rule names it, -1 any other store.
RULE_STORE = ("(CASE WHEN {party} IS NULL THEN 0 WHEN {party} = ANY(%(rm_special)s::bigint[]) THEN {party} "
              "ELSE -1 END)")
# Whether split rules are switched on for a line: at its fulfilling store, or (no store: shipped from a
# warehouse) by the global default.  Off: no rule applies, the fulfilling store (or e-commerce) keeps all.
SPLIT_ON = ("(CASE WHEN {party} IS NULL THEN %(split_default)s "
            "ELSE NOT ({party} = ANY(%(split_off)s::bigint[])) END)")
# The key's tail: the product line and whether the order goes to a trade area.
RULE_TAIL = "{a}.product_line, CASE WHEN {a}.trade_store IS NULL THEN 0 ELSE 1 END"
# The store credited: the fulfilling store, or the trade-area store when the rule says so.
CREDITED = "CASE WHEN {a}.{party} IS NULL AND COALESCE(rm.credit, false) THEN {a}.trade_store ELSE {a}.{party} END"

# The split a line gets today (rule map, guide's store, its share of the order's coupon cost),
# then what applies: the sale's own rule and parties when the sale was settled.
FRESH_CTES = f"""
fresh AS (
    SELECT b.*,
           CASE WHEN b.order_coupon > 0 THEN
                round(b.order_coupon_ecommerce * (b.coupon_before + b.line_coupon) / b.order_coupon, 2)
              - round(b.order_coupon_ecommerce * b.coupon_before / b.order_coupon, 2)
           ELSE 0 END AS f_line_ce,
           CASE WHEN gh.store_id IS NOT NULL AND gh.store_id IS DISTINCT FROM b.party_store
                THEN gh.store_id END AS f_guide_store
      FROM base b LEFT JOIN gh ON gh.staff_id = b.guide_id
), eff AS (
    SELECT f.*,
           CASE WHEN f.sale_id IS NOT NULL THEN f.s_rule ELSE rm.rule_id END AS e_rule,
           CASE WHEN f.sale_id IS NOT NULL THEN COALESCE(sr.ecommerce_percent, 0)
                ELSE COALESCE(rm.ecom, 0) END AS e_ecom,
           CASE WHEN f.sale_id IS NOT NULL THEN COALESCE(sr.guide_store_percent, 0)
                ELSE COALESCE(rm.guide, 0) END AS e_guide,
           CASE WHEN f.sale_id IS NOT NULL THEN f.s_store ELSE {CREDITED.format(a="f", party="party_store")}
           END AS e_party,
           CASE WHEN f.sale_id IS NOT NULL THEN f.s_guide_store ELSE f.f_guide_store END AS e_guide_store,
           CASE WHEN f.sale_id IS NOT NULL THEN f.s_line_ce ELSE f.f_line_ce END AS e_line_ce,
           CASE WHEN f.sale_id IS NOT NULL THEN COALESCE(sr.trade_area_percent, 0)
                ELSE COALESCE(rm.trade, 0) END AS e_trade,
           CASE WHEN f.sale_id IS NOT NULL THEN f.s_trade_store
                WHEN COALESCE(rm.trade, 0) > 0 AND f.trade_store IS NOT NULL
                     AND f.trade_store IS DISTINCT FROM ({CREDITED.format(a="f", party="party_store")})
                THEN f.trade_store END AS e_trade_store
      FROM fresh f
      LEFT JOIN rm ON rm.key = concat_ws(':', f.channel, f.fulfillment, {RULE_STORE.format(party="f.party_store")},
                                         CASE WHEN f.f_guide_store IS NULL THEN 0 ELSE 1 END,
                                         {RULE_TAIL.format(a="f")})
                  AND {SPLIT_ON.format(party="f.party_store")}
      LEFT JOIN orders_splitrule sr ON sr.id = f.s_rule
), amounts AS (
    -- Every amount is sign × (share of the cumulative amount after − share of the amount before),
    -- so the parts of a line returned in pieces add up exactly to what the sale split.
    SELECT e.*,
           e.sign * (e.amt_after - e.amt_before) AS a_net,
           e.sign * e.unit_price * (e.qty_after - e.qty_before) AS a_gross,
           e.sign * (round(e.line_coupon * e.qty_after / e.line_qty, 2)
                     - round(e.line_coupon * e.qty_before / e.line_qty, 2)) AS a_coupon,
           e.sign * (round(e.e_line_ce * e.qty_after / e.line_qty, 2)
                     - round(e.e_line_ce * e.qty_before / e.line_qty, 2)) AS a_ce,
           CASE WHEN e.e_guide_store IS NOT NULL
                THEN e.sign * (round(e.amt_after * e.e_guide / 100, 2) - round(e.amt_before * e.e_guide / 100, 2))
                ELSE 0 END AS a_guide,
           CASE WHEN e.e_trade_store IS NOT NULL
                THEN e.sign * (round(e.amt_after * e.e_trade / 100, 2) - round(e.amt_before * e.e_trade / 100, 2))
                ELSE 0 END AS a_trade,
           e.sign * (round(e.amt_after * e.e_ecom / 100, 2) - round(e.amt_before * e.e_ecom / 100, 2)) AS a_ecom_raw
      FROM eff e
)"""

SPLIT_RETURNING = """statement_id, kind, order_id, rule_id, adjustment, gross, discount, coupon_discount,
              coupon_cost_ecommerce, net, ecommerce_amount, store_id, store_amount, guide_store_id,
              guide_store_amount, trade_store_id, trade_store_amount"""

# Statement totals, each party's share and the rules used, from the rows just written.  The rows are
# read once, into one group per (statement, kind, adjustment, parties, rule) — a few hundred however
# many lines — and every total is summed from those groups.  ``{orders}``: the orders counted — 0 for
# the day's own window (a cheap count of the orders paid does it) or the distinct orders of late lines.
SPLIT_RESULT = """, g AS (
    SELECT statement_id, kind, adjustment, store_id, guide_store_id, trade_store_id, rule_id, count(*) AS n,
           sum(gross) AS gross, sum(discount) AS discount, sum(coupon_discount) AS coupon,
           sum(coupon_cost_ecommerce) AS ce, sum(net) AS net, sum(ecommerce_amount) AS ecom,
           sum(store_amount) AS store, sum(guide_store_amount) AS guide, sum(trade_store_amount) AS trade
      FROM ins GROUP BY statement_id, kind, adjustment, store_id, guide_store_id, trade_store_id, rule_id
)
SELECT 'statement', statement_id, kind, adjustment, NULL::bigint, sum(n)::bigint, {orders},
       sum(gross), sum(discount), sum(coupon), sum(ce), 0, sum(net), sum(ecom), sum(store), sum(guide), sum(trade)
  FROM g GROUP BY statement_id, kind, adjustment
UNION ALL
SELECT 'party', NULL, NULL, NULL, store_id, sum(n)::bigint, 0, 0, 0, 0, 0, 0, 0, 0, sum(store), 0, 0
  FROM g WHERE store_id IS NOT NULL GROUP BY store_id
UNION ALL
SELECT 'party', NULL, NULL, NULL, NULL, sum(n)::bigint, 0, 0, 0, 0, 0, 0, 0, 0, sum(ecom), 0, 0 FROM g
HAVING count(*) > 0
UNION ALL
SELECT 'party', NULL, NULL, NULL, guide_store_id, sum(n)::bigint, 0, 0, 0, 0, 0, 0, 0, 0, 0, sum(guide), 0
  FROM g WHERE guide_store_id IS NOT NULL GROUP BY guide_store_id
UNION ALL
SELECT 'party', NULL, NULL, NULL, trade_store_id, sum(n)::bigint, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, sum(trade)
  FROM g WHERE trade_store_id IS NOT NULL GROUP BY trade_store_id
UNION ALL
SELECT 'rule', NULL, NULL, NULL, rule_id, sum(n)::bigint, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
  FROM g WHERE rule_id IS NOT NULL GROUP BY rule_id
"""
# The distinct orders of a statement group's late lines (few: only for events settled late).
LATE_ORDERS = ("(SELECT count(DISTINCT i.order_id) FROM ins i WHERE i.statement_id = g.statement_id "
               "AND i.kind = g.kind AND i.adjustment = g.adjustment)")

SPLIT_INSERT = """
ins AS (
    INSERT INTO orders_splitline
           (statement_id, kind, order_id, order_line_id, return_line_id, sale_line_id, rule_id, event_at,
            adjustment, gross, discount, coupon_discount, coupon_cost_ecommerce, coupon_cost_store, net,
            ecommerce_amount, store_id, store_amount, guide_store_id, guide_store_amount, trade_store_id,
            trade_store_amount)
    SELECT st.id, a.kind, a.order_id, a.order_line_id, a.return_line_id, a.sale_id, a.e_rule, a.event_at,
           a.event_at < %(day_lo)s, a.a_gross, a.a_gross - a.a_net, a.a_coupon, a.a_ce, a.a_coupon - a.a_ce,
           a.a_net,
           CASE WHEN a.e_party IS NULL THEN a.a_net - a.a_guide - a.a_trade ELSE a.a_ecom_raw END,
           a.e_party,
           CASE WHEN a.e_party IS NULL THEN 0 ELSE a.a_net - a.a_ecom_raw - a.a_guide - a.a_trade END,
           a.e_guide_store, a.a_guide, a.e_trade_store, a.a_trade
      FROM amounts a JOIN st ON st.channel = a.channel
    RETURNING """ + SPLIT_RETURNING + """
) """ + SPLIT_RESULT

NO_SALE = """NULL::bigint AS sale_id, NULL::bigint AS s_rule, NULL::bigint AS s_store,
             NULL::bigint AS s_guide_store, NULL::numeric AS s_line_ce, NULL::bigint AS s_trade_store"""
SALE_ROW = """s.id AS sale_id, s.rule_id AS s_rule, s.store_id AS s_store, s.guide_store_id AS s_guide_store,
             s.coupon_cost_ecommerce AS s_line_ce, s.trade_store_id AS s_trade_store"""

# The step's lines, read once: its orders through their index, each order's lines through theirs, the
# trade-area store looked up only for orders shipped somewhere.  Materialized, so the small tables
# (SKUs, stores, rules) are joined to the lines once by hash instead of order by order.
SALE_LINES = f"""lines AS MATERIALIZED (
    SELECT o.id AS order_id, o.channel, o.fulfillment, o.guide_id, o.paid_at, o.store_id,
           o.coupon_discount AS order_coupon, o.coupon_cost_ecommerce AS order_ce,
           l.id AS line_id, l.line_no, l.sku_id, l.warehouse_id, l.unit_price, l.qty, l.discount,
           l.coupon_discount, l.line_total,
           CASE WHEN {SHIPPED_TO} THEN {TRADE_STORE} END AS trade_store
      FROM orders_order o
      CROSS JOIN LATERAL (SELECT * FROM orders_orderline l0 WHERE l0.order_id = o.id OFFSET 0) l
     WHERE {{pred}} AND o.paid_at >= %(lo)s AND o.paid_at < %(hi)s {{late}}
)"""

# Sales are most of the rows, so they take a direct path: no sale to look up, nothing before.
SALES_SQL = f"""
WITH {COMMON_CTES}, {SALE_LINES}, base AS (
    SELECT l.order_id, l.line_id AS order_line_id, l.channel, l.fulfillment, l.guide_id, l.paid_at AS event_at,
           l.unit_price * l.qty AS gross, l.discount, l.coupon_discount, l.line_total AS net,
           CASE l.fulfillment WHEN 'ship_warehouse' THEN NULL::bigint
                WHEN 'ship_store' THEN COALESCE(ws.id, l.store_id) ELSE l.store_id END AS party,
           CASE WHEN l.order_coupon > 0 THEN
                round(l.order_ce * (cb.amount + l.coupon_discount) / l.order_coupon, 2)
              - round(l.order_ce * cb.amount / l.order_coupon, 2)
           ELSE 0 END AS ce,
           pr.line AS product_line, l.trade_store
      FROM lines l
      LEFT JOIN stores_store ws ON l.fulfillment = 'ship_store' AND ws.warehouse_id = l.warehouse_id
      LEFT JOIN LATERAL (SELECT COALESCE(sum(x.coupon_discount), 0) AS amount FROM orders_orderline x
                          WHERE l.order_coupon > 0 AND x.order_id = l.order_id AND x.line_no < l.line_no) cb ON true
      {PRODUCT_JOIN}
), guided AS (
    SELECT b.*, CASE WHEN gh.store_id IS DISTINCT FROM b.party THEN gh.store_id END AS guide_store
      FROM base b LEFT JOIN gh ON gh.staff_id = b.guide_id
), ruled AS (
    SELECT g.*, rm.rule_id, round(g.net * COALESCE(rm.ecom, 0) / 100, 2) AS ecom,
           {CREDITED.format(a="g", party="party")} AS e_party,
           CASE WHEN g.guide_store IS NULL THEN 0 ELSE round(g.net * COALESCE(rm.guide, 0) / 100, 2) END AS guide,
           COALESCE(rm.trade, 0) AS trade_pct
      FROM guided g
      LEFT JOIN rm ON rm.key = concat_ws(':', g.channel, g.fulfillment, {RULE_STORE.format(party="g.party")},
                                         CASE WHEN g.guide_store IS NULL THEN 0 ELSE 1 END,
                                         {RULE_TAIL.format(a="g")})
                  AND {SPLIT_ON.format(party="g.party")}
), traded AS (  -- the trade-area store's own share, when the rule gives one and it is not the credited store
    SELECT r.*, CASE WHEN r.trade_pct > 0 AND r.trade_store IS NOT NULL AND r.trade_store IS DISTINCT FROM r.e_party
                     THEN r.trade_store END AS t_store
      FROM ruled r
), shared AS (
    SELECT t.*, CASE WHEN t.t_store IS NULL THEN 0 ELSE round(t.net * t.trade_pct / 100, 2) END AS trade
      FROM traded t
), ins AS (
    INSERT INTO orders_splitline
           (statement_id, kind, order_id, order_line_id, return_line_id, sale_line_id, rule_id, event_at,
            adjustment, gross, discount, coupon_discount, coupon_cost_ecommerce, coupon_cost_store, net,
            ecommerce_amount, store_id, store_amount, guide_store_id, guide_store_amount, trade_store_id,
            trade_store_amount)
    SELECT st.id, 'sale', r.order_id, r.order_line_id, NULL, NULL, r.rule_id, r.event_at, r.event_at < %(day_lo)s,
           r.gross, r.discount, r.coupon_discount, r.ce, r.coupon_discount - r.ce, r.net,
           CASE WHEN r.e_party IS NULL THEN r.net - r.guide - r.trade ELSE r.ecom END, r.e_party,
           CASE WHEN r.e_party IS NULL THEN 0 ELSE r.net - r.ecom - r.guide - r.trade END, r.guide_store, r.guide,
           r.t_store, r.trade
      FROM shared r JOIN st ON st.channel = r.channel
    RETURNING {SPLIT_RETURNING}
) {SPLIT_RESULT}"""

SALES_LATE = ("AND NOT EXISTS (SELECT 1 FROM orders_splitline x "
              "WHERE x.order_line_id = l.id AND x.kind = 'sale')")

# A paid order cancelled before handover: every line's sale negated.
CANCELS_SQL = f"""
WITH {COMMON_CTES}, cancelled AS (
    SELECT e.order_id, min(e.created_at) AS at FROM orders_orderevent e
     WHERE e.to_status = 'cancelled' AND e.created_at >= %(lo)s AND e.created_at < %(hi)s
     GROUP BY e.order_id
), base AS (
    SELECT 'cancel'::text AS kind, c.at AS event_at, NULL::bigint AS return_line_id, {LINE_COLUMNS},
           -1 AS sign, 0::numeric AS amt_before, l.line_total AS amt_after, 0 AS qty_before, l.qty AS qty_after,
           {SALE_ROW}
      FROM cancelled c JOIN orders_order o ON o.id = c.order_id AND o.paid_at IS NOT NULL {LINE_JOIN}
      LEFT JOIN orders_splitline s ON s.order_line_id = l.id AND s.kind = 'sale'
     WHERE {{pred}} {{late}}
), {FRESH_CTES}, {SPLIT_INSERT}"""

CANCELS_LATE = ("AND NOT EXISTS (SELECT 1 FROM orders_splitline x "
                "WHERE x.order_line_id = l.id AND x.kind = 'cancel')")

# A return line: the refund reverses the sale's split; amounts before it are the line's earlier returns.
RETURNS_SQL = f"""
WITH {COMMON_CTES}, base AS (
    SELECT 'return'::text AS kind, r.created_at AS event_at, rl.id AS return_line_id, {LINE_COLUMNS},
           -1 AS sign, c.amt AS amt_before, c.amt + rl.refund_amount AS amt_after,
           c.qty AS qty_before, c.qty + rl.qty AS qty_after,
           {SALE_ROW}
      FROM orders_return r
      JOIN orders_returnline rl ON rl.ret_id = r.id
      JOIN orders_order o ON o.id = r.order_id
      JOIN orders_orderline l ON l.id = rl.order_line_id
      LEFT JOIN stores_store ws ON o.fulfillment = 'ship_store' AND ws.warehouse_id = l.warehouse_id
      {COUPON_BEFORE}{TERRITORY_JOIN}
      LEFT JOIN orders_splitline s ON s.order_line_id = l.id AND s.kind = 'sale'
      CROSS JOIN LATERAL (SELECT COALESCE(sum(x.refund_amount), 0) AS amt, COALESCE(sum(x.qty), 0) AS qty
                            FROM orders_returnline x
                           WHERE x.order_line_id = rl.order_line_id AND x.id < rl.id) c
     WHERE r.created_at >= %(lo)s AND r.created_at < %(hi)s AND {{pred}} {{late}}
), {FRESH_CTES}, {SPLIT_INSERT}"""

RETURNS_LATE = ("AND NOT EXISTS (SELECT 1 FROM orders_splitline x WHERE x.order_line_id = rl.order_line_id "
                "AND x.kind = 'return' AND COALESCE(x.return_line_id, 0) = rl.id)")

# The channel of the order a payment is for, looked up by its unique number (one index probe each).
ORDER_CHANNEL_LOOKUP = "COALESCE((SELECT o.channel FROM orders_order o WHERE o.number = p.reference), 'other')"
# The same for a step's few refunds, as a join planned with the rest.
ORDER_CHANNEL = "COALESCE(o.channel, 'other')"

# A refund's payment, reached by its key refund by refund: a day has few refunds, and a hash join
# would read every payment ever taken, once per store step.
REFUND_PAYMENT = "CROSS JOIN LATERAL (SELECT p0.* FROM payments_payment p0 WHERE p0.id = r.payment_id OFFSET 0) p"

TENDER_RESULT = """
SELECT statement_id, tender, kind, adjustment, count(*), sum(amount) FROM ins
 GROUP BY statement_id, tender, kind, adjustment"""

PAYMENTS_SQL = f"""
WITH st AS (SELECT * FROM unnest(%(st_channel)s::text[], %(st_id)s::bigint[]) AS t(channel, id)),
ins AS (
    INSERT INTO orders_tenderline (statement_id, kind, payment_id, refund_id, tender, amount, event_at, adjustment)
    SELECT st.id, 'payment', p.id, NULL, p.tender, p.amount, p.captured_at, p.captured_at < %(day_lo)s
      FROM (SELECT p.id, p.tender, p.amount, p.captured_at, {ORDER_CHANNEL_LOOKUP} AS channel
              FROM payments_payment p
             WHERE p.status = 'captured' AND {{pred}} AND p.captured_at >= %(lo)s AND p.captured_at < %(hi)s {{late}}
            OFFSET 0) p  -- the order's channel looked up once per payment, then joined to the statements by hash
      JOIN st ON st.channel = p.channel
    RETURNING statement_id, tender, kind, adjustment, amount
) {TENDER_RESULT}"""

PAYMENTS_LATE = ("AND NOT EXISTS (SELECT 1 FROM orders_tenderline x WHERE x.payment_id = p.id "
                 "AND x.kind = 'payment' AND COALESCE(x.refund_id, 0) = 0)")

# Whether a refund could be on the step's statement judging by the refund alone: a cash or exchange
# refund handed out at a store is on that store's (never on "no store"'s).  A necessary condition of
# REFUND_LOCATION, checked before the refund's payment is fetched, so a store step fetches the payments
# of its own refunds and of those that follow their payment, not of every refund of the day.
REFUND_MAYBE_HERE = ("(CASE WHEN r.method IN ('cash', 'exchange') AND r.store_id IS NOT NULL "
                     "THEN r.store_id IS NOT DISTINCT FROM %(store)s ELSE true END)")

# The step's refunds, found once: the lines are written from them, and their number (counted the way
# COUNT_SQL counts them) comes back as a row of kind 'found', so the step does not find them twice.
REFUNDS_SQL = f"""
WITH st AS (SELECT * FROM unnest(%(st_channel)s::text[], %(st_id)s::bigint[]) AS t(channel, id)),
found AS MATERIALIZED (
    SELECT r.id AS refund_id, p.id AS payment_id, {REFUND_TENDER} AS tender, r.amount, r.completed_at, p.reference
      FROM payments_refund r
      {REFUND_PAYMENT}
     WHERE r.status = 'succeeded' AND r.completed_at >= %(lo)s AND r.completed_at < %(hi)s AND {REFUND_MAYBE_HERE}
       AND {{pred}} {{late}}
), ins AS (
    INSERT INTO orders_tenderline (statement_id, kind, payment_id, refund_id, tender, amount, event_at, adjustment)
    SELECT st.id, 'refund', f.payment_id, f.refund_id, f.tender, -f.amount, f.completed_at,
           f.completed_at < %(day_lo)s
      FROM found f
      LEFT JOIN orders_order o ON o.number = f.reference
      JOIN st ON st.channel = {ORDER_CHANNEL}
    RETURNING statement_id, tender, kind, adjustment, amount
) {TENDER_RESULT}
UNION ALL
SELECT NULL, NULL, 'found', false, count(*), 0 FROM found"""

REFUNDS_LATE = ("AND NOT EXISTS (SELECT 1 FROM orders_tenderline x WHERE x.payment_id = p.id "
                "AND x.kind = 'refund' AND COALESCE(x.refund_id, 0) = r.id)")

# Events of a window, counted the way the inserts select them (so a later recount that
# finds more means some committed after their day was settled).
COUNT_SQL = {
    "orders_paid": "SELECT count(*) FROM orders_order o WHERE {pred} AND o.paid_at >= %(lo)s AND o.paid_at < %(hi)s",
    "returns": ("SELECT count(*) FROM orders_return r JOIN orders_order o ON o.id = r.order_id "
                "WHERE r.created_at >= %(lo)s AND r.created_at < %(hi)s AND {pred}"),
    "cancels": ("SELECT count(DISTINCT e.order_id) FROM orders_orderevent e JOIN orders_order o ON o.id = e.order_id "
                "WHERE e.to_status = 'cancelled' AND e.created_at >= %(lo)s AND e.created_at < %(hi)s "
                "AND o.paid_at IS NOT NULL AND {pred}"),
    "payments": ("SELECT count(*) FROM payments_payment p WHERE p.status = 'captured' AND {pred} "
                 "AND p.captured_at >= %(lo)s AND p.captured_at < %(hi)s"),
    "refunds": (f"SELECT count(*) FROM payments_refund r {REFUND_PAYMENT} "
                "WHERE r.status = 'succeeded' AND r.completed_at >= %(lo)s AND r.completed_at < %(hi)s "
                f"AND {REFUND_MAYBE_HERE} AND {{pred}}"),
}
ORDERS_BY_CHANNEL_SQL = """
SELECT o.channel, count(*) FROM orders_order o WHERE {pred} AND o.paid_at >= %(lo)s AND o.paid_at < %(hi)s
 GROUP BY o.channel"""

COUNT_COLUMN = {"orders_paid": "o.store_id", "returns": "o.store_id", "cancels": "o.store_id",
                "payments": "p.store_id", "refunds": REFUND_LOCATION}

# Informational window totals of the store (not event-by-event).
POINTS_ISSUED_SQL = """
SELECT COALESCE(NULLIF(lot.channel, ''), 'other'), COALESCE(sum(e.available_delta + e.frozen_delta), 0)
  FROM members_pointsentry e JOIN members_pointslot lot ON lot.id = e.lot_id
 WHERE e.kind = 'earn' AND e.created_at >= %(lo)s AND e.created_at < %(hi)s AND {pred}
 GROUP BY 1"""

# Points redeemed count where their tender was taken (the points payment of the order).
POINTS_REDEEMED_SQL = """
SELECT COALESCE(o.channel, 'other'), COALESCE(-sum(e.available_delta), 0)
  FROM members_pointsentry e LEFT JOIN orders_order o ON o.number = e.order_number
 WHERE e.kind IN ('redeem', 'restore') AND e.created_at >= %(lo)s AND e.created_at < %(hi)s
   AND {pred}
 GROUP BY 1"""
POINTS_PAYMENT_STORE = ("(SELECT p.store_id FROM payments_payment p WHERE p.reference = e.order_number "
                        "AND p.tender = 'points' ORDER BY p.id LIMIT 1)")

SHIFTS_SQL = """
SELECT count(*), COALESCE(sum(s.expected_cash), 0), COALESCE(sum(s.counted_cash), 0),
       COALESCE(sum(s.over_short), 0), COALESCE(sum(m.sale), 0), COALESCE(sum(m.refund), 0)
  FROM payments_posshift s
  LEFT JOIN LATERAL (SELECT sum(amount) FILTER (WHERE kind = 'sale') AS sale,
                            sum(amount) FILTER (WHERE kind = 'refund') AS refund
                       FROM payments_cashmovement WHERE shift_id = s.id) m ON true
 WHERE s.store_id = %(store)s AND s.status = 'closed' AND s.closed_at >= %(lo)s AND s.closed_at < %(hi)s"""

WALLET_RECHARGES_SQL = """
SELECT COALESCE(sum(e.principal_delta) FILTER (WHERE e.kind = 'recharge'), 0),
       COALESCE(sum(e.bonus_delta) FILTER (WHERE e.kind = 'recharge'), 0),
       COALESCE(-sum(e.principal_delta) FILTER (WHERE e.kind = 'recharge_refund'), 0)
  FROM members_walletentry e JOIN members_walletrecharge r ON r.id = e.recharge_id
 WHERE e.kind IN ('recharge', 'recharge_refund') AND e.created_at >= %(lo)s AND e.created_at < %(hi)s
   AND {pred}"""

# Wallet money spent (or refunded back) at the store, by the store that sold the recharge.
WALLET_SPENT_SQL = """
SELECT a.sold_store_id, COALESCE(sum(a.principal), 0), COALESCE(sum(a.bonus), 0)
  FROM members_walletspendallocation a JOIN members_walletentry e ON e.id = a.entry_id
 WHERE e.kind IN ('spend', 'refund_spend') AND a.created_at >= %(lo)s AND a.created_at < %(hi)s AND {pred}
 GROUP BY a.sold_store_id"""

# The store's recharges spent at other stores.
WALLET_SPENT_ELSEWHERE_SQL = """
SELECT COALESCE(sum(a.principal), 0), COALESCE(sum(a.bonus), 0)
  FROM members_walletspendallocation a JOIN members_walletentry e ON e.id = a.entry_id
 WHERE e.kind IN ('spend', 'refund_spend') AND a.created_at >= %(lo)s AND a.created_at < %(hi)s
   AND {pred} AND {other}"""

# Commission whose return window ended within the day, released (by this run or an earlier one).
COMMISSION_SQL = """
SELECT count(*), COALESCE(sum(rel.released_delta), 0)
  FROM members_commissionentry acc
  JOIN members_commissionentry rel ON rel.accrual_id = acc.id AND rel.kind = 'release'
 WHERE acc.kind = 'accrual' AND acc.frozen_until >= %(lo)s AND acc.frozen_until < %(hi)s AND {pred}"""

# Money a store took at its own counter on a settled day (payments less refunds handed out), which
# it holds for HQ: every tender but points and exchange credit (no money changed hands), and not
# wallet recharges (the member's money until spent; a spend counts where it is spent, and the
# selling store answers for it through the cross-store wallet journal).
# The recharges' payments are found from the recharges (by the payment's number), not the other way
# round: the day's tender lines are then summed without reading the payment of each (payments are
# never deleted, so every tender line's payment exists).
COLLECTED_SQL = """
SELECT ss.store_id, sum(t.amount)
  FROM orders_tenderline t
  JOIN orders_settlementstatement st ON st.id = t.statement_id
  JOIN orders_storesettlement ss ON ss.id = st.store_settlement_id
 WHERE ss.day_id = %(day)s AND ss.store_id IS NOT NULL AND t.tender NOT IN ('points', 'exchange_credit')
   AND t.payment_id NOT IN (SELECT p.id FROM members_walletrecharge w JOIN payments_payment p ON p.number = w.reference)
 GROUP BY ss.store_id
 ORDER BY ss.store_id"""
