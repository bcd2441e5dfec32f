"""Invariants 4 and 5 of DESIGN.md as far as payments hold them.

4: a payment's cached refunded (refunding) amount equals the sum of its
succeeded (pending) refunds and never exceeds the payment; only captured
payments have refunds.  5: a provider transaction applies once, which the
unique constraint enforces; here we check the other side: every notification
logged as applied points at a payment in the state it claims, with the same
transaction id and amount.
"""

from django.db import connection

from o2o.audit import audit_check
from payments.micropay import ORPHAN_AFTER, SALE_PREFIX
from payments.models import ShiftHandover
from payments.shifts import handover_expected_cash


def _rows(sql: str, params=()):
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _refund_sum_mismatches(column: str, status: str):
    return _rows(
        f"SELECT p.id, p.number, p.{column}, COALESCE(r.total, 0) FROM payments_payment p "
        "LEFT JOIN (SELECT payment_id, SUM(amount) AS total FROM payments_refund WHERE status = %s "
        "GROUP BY payment_id) r ON r.payment_id = p.id "
        f"WHERE p.{column} <> COALESCE(r.total, 0) ORDER BY p.id",
        [status],
    )


@audit_check("4", "payment refunded_amount equals the sum of its succeeded refunds")
def refunded_matches_refunds():
    for pid, number, cached, total in _refund_sum_mismatches("refunded_amount", "succeeded"):
        yield f"payment {pid} ({number}): refunded_amount {cached} != succeeded refunds {total}"


@audit_check("4", "payment refunding_amount equals the sum of its pending refunds")
def refunding_matches_refunds():
    for pid, number, cached, total in _refund_sum_mismatches("refunding_amount", "pending"):
        yield f"payment {pid} ({number}): refunding_amount {cached} != pending refunds {total}"


@audit_check("4", "refunds never exceed the payment")
def refunds_within_amount():
    for pid, number, amount, refunded, refunding in _rows(
            "SELECT id, number, amount, refunded_amount, refunding_amount FROM payments_payment "
            "WHERE refunded_amount < 0 OR refunding_amount < 0 "
            "OR refunded_amount + refunding_amount > amount "
            "ORDER BY id"):
        yield f"payment {pid} ({number}): amount {amount}, refunded {refunded}, pending refunds {refunding}"


@audit_check("4", "only captured payments have refunds")
def refunds_only_on_captured():
    for rid, number, pid, status in _rows(
            "SELECT r.id, r.number, p.id, p.status FROM payments_refund r "
            "JOIN payments_payment p ON p.id = r.payment_id WHERE p.status <> 'captured' ORDER BY r.id"):
        yield f"refund {rid} ({number}) on payment {pid} which is {status}"


@audit_check("5", "every applied capture notification matches a captured payment")
def applied_notifications_match():
    for nid, pid, reason in _rows(
            "SELECT n.id, n.payment_id, CASE "
            "WHEN p.id IS NULL THEN 'no payment' "
            "WHEN p.status <> 'captured' THEN 'payment is ' || p.status "
            "WHEN p.provider <> n.provider OR p.provider_txn_id IS DISTINCT FROM n.provider_txn_id "
            "THEN 'transaction id differs' "
            "WHEN p.amount IS DISTINCT FROM n.amount THEN 'amount differs' END "
            "FROM payments_paymentnotification n LEFT JOIN payments_payment p ON p.id = n.payment_id "
            "WHERE n.outcome = 'applied' AND n.status_reported = 'success' AND (p.id IS NULL "
            "OR p.status <> 'captured' OR p.provider <> n.provider "
            "OR p.provider_txn_id IS DISTINCT FROM n.provider_txn_id OR p.amount IS DISTINCT FROM n.amount) "
            "ORDER BY n.id"):
        yield f"notification {nid} (payment {pid}): {reason}"


@audit_check("5", "one applied notification per provider transaction")
def one_applied_notification_per_txn():
    for provider, txn, count in _rows(
            "SELECT provider, provider_txn_id, COUNT(*) FROM payments_paymentnotification "
            "WHERE outcome = 'applied' AND status_reported = 'success' "
            "GROUP BY provider, provider_txn_id HAVING COUNT(*) > 1 ORDER BY provider, provider_txn_id"):
        yield f"{provider} transaction {txn} applied {count} times"


@audit_check("4", "every payment-code charge at the counter paid its sale or went back to the customer")
def micropay_charges_used():
    for pid, number, reference, amount in _rows(
            "SELECT id, number, reference, amount FROM payments_payment "
            "WHERE reference LIKE %s AND status = 'captured' AND refunded_amount + refunding_amount < amount "
            "AND captured_at < now() - %s ORDER BY id",
            [f"{SALE_PREFIX}%", ORPHAN_AFTER]):
        yield (f"payment {pid} ({number}): {amount} taken for {reference} "
               "but neither used by a sale nor refunded")


@audit_check("4", "no payment-code charge is left unsettled with its provider")
def payment_codes_settled():
    """A counter charge whose answer was lost is settled with the provider within minutes
    (``micropay_stale_resolve``, every two minutes); one still pending after an hour means the
    money's fate is unknown to the books: the job is not running or the provider not answering."""
    for pid, number, provider, created in _rows(
            "SELECT id, number, provider, created_at FROM payments_payment "
            "WHERE reference LIKE %s AND status = 'pending' AND created_at < now() - interval '1 hour' "
            "ORDER BY id", [SALE_PREFIX + "%"]):
        yield f"payment {pid} ({number}, {provider}): a payment-code charge pending since {created:%Y-%m-%d %H:%M}"


@audit_check("4", "a shift hand-over's expected cash is the drawer at that moment")
def handover_expected_cash_adds_up():
    """The figure the outgoing clerk signed off must be what the drawer's ledger says: float, cash
    in and out, cash sales and refunds of the shift up to the hand-over."""
    for handover in ShiftHandover.objects.select_related("shift").order_by("id").iterator():
        drawer = handover_expected_cash(handover)
        if drawer != handover.expected_cash:
            yield (f"hand-over {handover.pk} of shift {handover.shift_id}: expected cash {handover.expected_cash}"
                   f" recorded, the drawer's ledger says {drawer}")


@audit_check("4", "every cash sale, cash refund and expected drawer of a shift is in the shift's cash unit")
def shift_cash_in_unit():
    """A shift counts the drawer in the notes and coins of its cash unit (the store's cash rounding when
    it opened): a cash movement in fen at a store rounding to the jiao can never be counted, and the
    drawer never balances.  Cash sales (captured) and cash refunds handed out (succeeded) at the store
    inside a shift's window, and each closed shift's expected cash, must be whole units."""
    for kind, number, amount, shift_id, unit in _rows(
            "SELECT 'payment', p.number, p.amount, s.id, s.cash_unit FROM payments_payment p "
            "JOIN payments_posshift s ON s.store_id = p.store_id AND p.captured_at >= s.opened_at "
            "AND (s.closed_at IS NULL OR p.captured_at < s.closed_at) "
            "WHERE p.tender = 'cash' AND p.status = 'captured' AND MOD(p.amount, s.cash_unit) <> 0 "
            "UNION ALL "
            "SELECT 'refund', r.number, r.amount, s.id, s.cash_unit FROM payments_refund r "
            "JOIN payments_posshift s ON s.store_id = r.store_id AND r.completed_at >= s.opened_at "
            "AND (s.closed_at IS NULL OR r.completed_at < s.closed_at) "
            "WHERE r.method = 'cash' AND r.status = 'succeeded' AND MOD(r.amount, s.cash_unit) <> 0 "
            "UNION ALL "
            "SELECT 'expected cash of shift', s.id::text, s.expected_cash, s.id, s.cash_unit FROM payments_posshift s "
            "WHERE s.status = 'closed' AND MOD(s.expected_cash, s.cash_unit) <> 0 "
            "ORDER BY 4, 2"):
        yield f"shift {shift_id} (cash unit {unit}): {kind} {number} of {amount} is not a whole number of units"


@audit_check("6", "each reconciliation run's payments, refunds, fees and net equal its statement rows")
def reconciliation_totals_add_up():
    """The run's totals (shown to finance per day) are cached from its rows; net is payments less
    refunds less fees.  A row edited or a total written by hand shows here."""
    for rid, provider, file_name, problem in _rows(
            "SELECT r.id, r.provider, r.file_name, CASE "
            "WHEN r.their_payments <> COALESCE(s.paid, 0) THEN 'payments ' || r.their_payments || ' != rows ' "
            "|| COALESCE(s.paid, 0) "
            "WHEN r.their_refunds <> COALESCE(s.refunded, 0) THEN 'refunds ' || r.their_refunds || ' != rows ' "
            "|| COALESCE(s.refunded, 0) "
            "WHEN r.their_fees <> COALESCE(s.fees, 0) THEN 'fees ' || r.their_fees || ' != rows ' || COALESCE(s.fees, 0) "
            "ELSE 'net ' || r.their_net || ' != payments - refunds - fees ' "
            "|| (r.their_payments - r.their_refunds - r.their_fees) END "
            "FROM payments_reconciliationrun r LEFT JOIN ("
            "  SELECT run_id, SUM(CASE WHEN kind = 'payment' THEN amount ELSE 0 END) AS paid, "
            "  SUM(CASE WHEN kind = 'refund' THEN amount ELSE 0 END) AS refunded, "
            "  SUM(CASE WHEN kind IN ('payment', 'refund') THEN fee ELSE 0 END) AS fees "
            "  FROM payments_statementrow GROUP BY run_id) s ON s.run_id = r.id "
            "WHERE r.their_payments <> COALESCE(s.paid, 0) OR r.their_refunds <> COALESCE(s.refunded, 0) "
            "OR r.their_fees <> COALESCE(s.fees, 0) "
            "OR r.their_net <> r.their_payments - r.their_refunds - r.their_fees ORDER BY r.id"):
        yield f"reconciliation run {rid} ({provider} {file_name}): {problem}"
