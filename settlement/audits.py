"""Invariant 6 of DESIGN.md: settlement statements equal the payments and refunds of their day and
store, recomputed from the payments tables; plus the statements' own sums and their lines.

Money is compared by the day the event happened (its time inside a settled day's window) and
the store where it moved, so a late event settled as an adjustment of the next day still counts
for its own day.  Closed days of the last ``SETTLEMENT_AUDIT_DAYS`` (default 31) are checked,
one window at a time.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from o2o.audit import audit_check
from settlement import promotion_costs, sql
from settlement.models import SettlementDay


def _rows(query: str, params=None):
    with connection.cursor() as cur:
        cur.execute(query, params or {})
        return cur.fetchall()


def _days() -> list[SettlementDay]:
    count = int(getattr(settings, "SETTLEMENT_AUDIT_DAYS", 31))
    return list(SettlementDay.objects.filter(status=SettlementDay.Status.CLOSED).order_by("-day")[:count])


# Source money of a window by store where it moved, against the tender lines of events in that window.
MONEY_SQL = f"""
WITH source AS (
    SELECT p.store_id AS store_id, p.amount AS amount FROM payments_payment p
     WHERE p.status = 'captured' AND p.captured_at >= %(lo)s AND p.captured_at < %(hi)s
    UNION ALL
    SELECT {sql.REFUND_LOCATION}, -r.amount FROM payments_refund r JOIN payments_payment p ON p.id = r.payment_id
     WHERE r.status = 'succeeded' AND r.completed_at >= %(lo)s AND r.completed_at < %(hi)s
), a AS (SELECT store_id, sum(amount) AS amount, count(*) AS n FROM source GROUP BY store_id),
b AS (
    SELECT ss.store_id, sum(t.amount) AS amount, count(*) AS n
      FROM orders_tenderline t
      JOIN orders_settlementstatement st ON st.id = t.statement_id
      JOIN orders_storesettlement ss ON ss.id = st.store_settlement_id
     WHERE t.event_at >= %(lo)s AND t.event_at < %(hi)s
     GROUP BY ss.store_id
)
SELECT COALESCE(a.store_id, b.store_id), a.amount, a.n, b.amount, b.n
  FROM a FULL JOIN b ON COALESCE(a.store_id, 0) = COALESCE(b.store_id, 0)
 WHERE a.amount IS DISTINCT FROM b.amount OR a.n IS DISTINCT FROM b.n
"""

# Orders paid, returns and cancellations of a window by the order's store, against the split lines.
REVENUE_SQL = """
WITH source AS (
    SELECT o.store_id, o.total AS amount FROM orders_order o
     WHERE o.paid_at >= %(lo)s AND o.paid_at < %(hi)s
    UNION ALL
    SELECT o.store_id, -r.refund_total FROM orders_return r JOIN orders_order o ON o.id = r.order_id
     WHERE r.created_at >= %(lo)s AND r.created_at < %(hi)s
    UNION ALL
    SELECT o.store_id, -o.total FROM orders_order o
     WHERE o.paid_at IS NOT NULL AND o.id IN (
           SELECT e.order_id FROM orders_orderevent e
            WHERE e.to_status = 'cancelled' AND e.created_at >= %(lo)s AND e.created_at < %(hi)s)
), a AS (SELECT store_id, sum(amount) AS amount FROM source GROUP BY store_id),
b AS (
    SELECT ss.store_id, sum(s.net) AS amount
      FROM orders_splitline s
      JOIN orders_settlementstatement st ON st.id = s.statement_id
      JOIN orders_storesettlement ss ON ss.id = st.store_settlement_id
     WHERE s.event_at >= %(lo)s AND s.event_at < %(hi)s
     GROUP BY ss.store_id
)
SELECT COALESCE(a.store_id, b.store_id), a.amount, b.amount
  FROM a FULL JOIN b ON COALESCE(a.store_id, 0) = COALESCE(b.store_id, 0)
 WHERE a.amount IS DISTINCT FROM b.amount
"""


@audit_check("6", "settlement money equals the payments and refunds of each day and store")
def statement_money_matches_payments():
    for day in _days():
        for store_id, source, n_source, settled, n_settled in _rows(
                MONEY_SQL, {"lo": day.window_start, "hi": day.window_end}):
            yield (f"{day.day} store {store_id or '-'}: payments − refunds {source} ({n_source}) "
                   f"but settled {settled} ({n_settled})")


@audit_check("6", "settlement revenue equals the orders paid, returned and cancelled of each day and store")
def statement_revenue_matches_orders():
    for day in _days():
        for store_id, source, settled in _rows(REVENUE_SQL, {"lo": day.window_start, "hi": day.window_end}):
            yield f"{day.day} store {store_id or '-'}: orders {source} but settled {settled}"


STATEMENT_SUMS_SQL = """
WITH s AS (
    SELECT statement_id,
           COALESCE(sum(net) FILTER (WHERE kind = 'sale'), 0) AS sales_net,
           COALESCE(-sum(net) FILTER (WHERE kind = 'return'), 0) AS returns_net,
           COALESCE(-sum(net) FILTER (WHERE kind = 'cancel'), 0) AS cancelled_net,
           sum(ecommerce_amount) AS ecommerce, sum(store_amount) AS store, sum(guide_store_amount) AS guide,
           sum(trade_store_amount) AS trade
      FROM orders_splitline WHERE statement_id = ANY(%(ids)s) GROUP BY statement_id
), t AS (
    SELECT statement_id, COALESCE(sum(amount) FILTER (WHERE kind = 'payment'), 0) AS paid,
           COALESCE(-sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunded
      FROM orders_tenderline WHERE statement_id = ANY(%(ids)s) GROUP BY statement_id
), tt AS (
    SELECT statement_id, sum(payments_amount) AS paid, sum(refunds_amount) AS refunded
      FROM orders_statementtender WHERE statement_id = ANY(%(ids)s) GROUP BY statement_id
)
SELECT st.id, st.business_day, st.store_id, st.channel
  FROM orders_settlementstatement st
  LEFT JOIN s ON s.statement_id = st.id LEFT JOIN t ON t.statement_id = st.id
  LEFT JOIN tt ON tt.statement_id = st.id
 WHERE st.id = ANY(%(ids)s) AND (
       st.sales_net <> COALESCE(s.sales_net, 0) OR st.returns_net <> COALESCE(s.returns_net, 0)
    OR st.cancelled_net <> COALESCE(s.cancelled_net, 0) OR st.split_ecommerce <> COALESCE(s.ecommerce, 0)
    OR st.split_store <> COALESCE(s.store, 0) OR st.split_guide_store <> COALESCE(s.guide, 0)
    OR st.split_trade_store <> COALESCE(s.trade, 0)
    OR st.payments_total <> COALESCE(t.paid, 0) OR st.refunds_total <> COALESCE(t.refunded, 0)
    OR st.payments_total <> COALESCE(tt.paid, 0) OR st.refunds_total <> COALESCE(tt.refunded, 0))
"""


@audit_check("6", "every settlement statement equals the sum of its lines")
def statements_equal_their_lines():
    ids = list(SettlementDay.objects.filter(pk__in=[d.pk for d in _days()])
               .values_list("stores__statements__id", flat=True))
    ids = [i for i in ids if i is not None]
    for statement_id, day, store_id, channel in _rows(STATEMENT_SUMS_SQL, {"ids": ids}):
        yield f"statement {statement_id} ({day} store {store_id or '-'} {channel}) differs from its lines"


LINES_SQL = """
SELECT 'tender', t.id FROM orders_tenderline t
  JOIN orders_settlementstatement st ON st.id = t.statement_id
  LEFT JOIN payments_payment p ON p.id = t.payment_id
  LEFT JOIN payments_refund r ON r.id = t.refund_id
 WHERE st.business_day >= %(first)s AND (p.id IS NULL
    OR (t.kind = 'payment' AND (p.status <> 'captured' OR t.amount <> p.amount))
    OR (t.kind = 'refund' AND (r.id IS NULL OR r.status <> 'succeeded' OR t.amount <> -r.amount
                               OR r.payment_id <> t.payment_id)))
UNION ALL
SELECT 'split', s.id FROM orders_splitline s
  JOIN orders_settlementstatement st ON st.id = s.statement_id
  LEFT JOIN orders_orderline l ON l.id = s.order_line_id
  LEFT JOIN orders_returnline rl ON rl.id = s.return_line_id
 WHERE st.business_day >= %(first)s AND (l.id IS NULL OR l.order_id <> s.order_id
    OR (s.kind = 'sale' AND s.net <> l.line_total)
    OR (s.kind = 'cancel' AND s.net <> -l.line_total)
    OR (s.kind = 'return' AND (rl.id IS NULL OR rl.order_line_id <> l.id OR s.net <> -rl.refund_amount)))
"""


@audit_check("6", "every settled line matches the payment, refund, order line or return it settles")
def lines_match_their_sources():
    days = _days()
    if not days:
        return
    for kind, line_id in _rows(LINES_SQL, {"first": days[-1].day}):
        yield f"{kind} line {line_id} does not match its source"


@audit_check("6", "settled promotion cost equals the promotions on the day's orders, net of returns, "
                  "by store and bearer")
def promotion_cost_matches_orders():
    """Σ promotion cost lines of a day (by the statement's store and the bearer) == what the explanation
    rows of the orders paid that day took off, less the returned units' share of the returns of the day
    and the orders cancelled that day."""
    for day in _days():
        for store_id, bearer, source, settled in _rows(promotion_costs.SOURCE_VS_SETTLED_SQL,
                                                       {"lo": day.window_start, "hi": day.window_end}):
            yield (f"{day.day} store {store_id or '-'} bearer {bearer}: the orders' promotions {source} "
                   f"but settled {settled}")


@audit_check("6", "every statement's promotion cost by bearer equals its promotion cost lines")
def statement_promotion_costs_equal_their_lines():
    ids = [i for i in SettlementDay.objects.filter(pk__in=[d.pk for d in _days()])
           .values_list("stores__statements__id", flat=True) if i is not None]
    for statement_id, day, store_id, channel in _rows(promotion_costs.STATEMENT_SQL, {"ids": ids}):
        yield (f"statement {statement_id} ({day} store {store_id or '-'} {channel}): promotion cost differs "
               f"from its lines")


# --- the party ledger ---------------------------------------------------------------------------


@audit_check("ledger", "Every journal of the party ledger balances (its postings sum to zero)")
def journals_balance():
    for journal, total in _rows("SELECT journal, sum(amount) FROM settlement_ledgerposting "
                                "GROUP BY journal HAVING sum(amount) <> 0 ORDER BY journal LIMIT 50"):
        yield f"journal {journal}: postings sum to {total}"


@audit_check("ledger", "Every party's balance equals the sum of its postings")
def party_balances():
    for party_id, balance, posted in _rows("""
        SELECT p.id, p.balance, COALESCE(sum(l.amount), 0) FROM settlement_party p
          LEFT JOIN settlement_ledgerposting l ON l.party_id = p.id
         GROUP BY p.id, p.balance HAVING p.balance <> COALESCE(sum(l.amount), 0) ORDER BY p.id"""):
        yield f"party {party_id}: balance {balance}, postings {posted}"


@audit_check("ledger", "The party shares of each settled day add up to its net sales, and were posted")
def party_shares_equal_net():
    for day, net, shares, posted in _rows("""
        SELECT d.day, d.net,
               (SELECT COALESCE(sum(ps.total), 0) FROM orders_partyshare ps
                  JOIN orders_storesettlement ss ON ss.id = ps.store_settlement_id WHERE ss.day_id = d.id),
               (SELECT COALESCE(sum(l.amount), 0) FROM settlement_ledgerposting l JOIN settlement_party p
                    ON p.id = l.party_id
                 WHERE l.day_id = d.id AND l.account = 'split' AND p.kind <> 'clearing')
          FROM orders_settlementday d WHERE d.status = 'closed' ORDER BY d.day"""):
        if not net == shares == posted:
            yield f"day {day}: net {net}, party shares {shares}, split postings {posted}"


@audit_check("ledger", "Each settled day posted the money each store collected at its counter")
def collections_posted():
    for day in _days():  # the recent closed days, like the statement checks
        expected = {store_id: amount for store_id, amount in _rows(sql.COLLECTED_SQL, {"day": day.pk}) if amount}
        posted = dict(_rows("""
            SELECT p.store_id, -sum(l.amount) FROM settlement_ledgerposting l
              JOIN settlement_party p ON p.id = l.party_id
             WHERE l.day_id = %(day)s AND l.account = 'collection' AND p.kind = 'store'
             GROUP BY p.store_id HAVING sum(l.amount) <> 0""", {"day": day.pk}))
        for store_id in sorted(set(expected) | set(posted)):
            if expected.get(store_id) != posted.get(store_id):
                yield (f"day {day.day} store {store_id}: collected {expected.get(store_id, 0)}, "
                       f"collection postings {posted.get(store_id, 0)}")


@audit_check("ledger", "No party was paid out more than was released to it, net of what it collected")
def payouts_within_released():
    # "released" is every non-payout posting, the (negative) collections included: a store holding
    # the cash of its counter is owed only its share less that cash.
    for party_id, released, paid in _rows("""
        SELECT p.id,
               COALESCE(sum(l.amount) FILTER (WHERE l.account <> 'payout'), 0),
               COALESCE(-sum(l.amount) FILTER (WHERE l.account = 'payout'), 0)
          FROM settlement_party p JOIN settlement_ledgerposting l ON l.party_id = p.id
         WHERE p.kind <> 'clearing'
         GROUP BY p.id
        HAVING COALESCE(-sum(l.amount) FILTER (WHERE l.account = 'payout'), 0) > 0
           AND COALESCE(-sum(l.amount) FILTER (WHERE l.account = 'payout'), 0)
             > COALESCE(sum(l.amount) FILTER (WHERE l.account <> 'payout'), 0)
         ORDER BY p.id"""):
        yield f"party {party_id}: paid out {paid}, released net of collections {released}"
    for party_id, approved, posted in _rows("""
        SELECT po.party_id, sum(po.amount),
               (SELECT COALESCE(-sum(l.amount), 0) FROM settlement_ledgerposting l
                 WHERE l.party_id = po.party_id AND l.account = 'payout')
          FROM settlement_payout po WHERE po.status = 'approved' GROUP BY po.party_id ORDER BY po.party_id"""):
        if approved != posted:
            yield f"party {party_id}: approved payouts {approved}, payout postings {posted}"
