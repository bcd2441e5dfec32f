"""Invariant 1 of DESIGN.md: on_hand == Σ moves; reserved == Σ active reservations; 0 <= reserved <= on_hand;
an applied count moved exactly counted − the book figure when counted."""

from django.db import connection

from o2o.audit import audit_check


@audit_check("1", "stock on_hand equals the sum of its moves")
def on_hand_matches_moves():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT l.id, l.warehouse_id, l.sku_id, l.bucket, l.on_hand, COALESCE(m.total, 0) "
            "FROM inventory_stocklevel l LEFT JOIN (SELECT level_id, SUM(qty) AS total FROM inventory_stockmove "
            "GROUP BY level_id) m ON m.level_id = l.id WHERE l.on_hand <> COALESCE(m.total, 0) ORDER BY l.id"
        )
        for level_id, w, s, b, on_hand, total in cur.fetchall():
            yield f"level {level_id} (warehouse {w}, sku {s}, {b}): on_hand {on_hand} != moves {total}"


@audit_check("1", "stock reserved equals the sum of active reservations")
def reserved_matches_reservations():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT l.id, l.warehouse_id, l.sku_id, l.reserved, COALESCE(r.total, 0) FROM inventory_stocklevel l "
            "FULL JOIN (SELECT warehouse_id, sku_id, SUM(qty) AS total FROM inventory_reservation "
            "WHERE status = 'active' GROUP BY warehouse_id, sku_id) r "
            "ON r.warehouse_id = l.warehouse_id AND r.sku_id = l.sku_id AND l.bucket = 'sellable' "
            "WHERE (l.bucket = 'sellable' OR l.id IS NULL) AND COALESCE(l.reserved, 0) <> COALESCE(r.total, 0)"
        )
        for level_id, w, s, reserved, total in cur.fetchall():
            yield f"level {level_id} (warehouse {w}, sku {s}): reserved {reserved} != active reservations {total}"


@audit_check("1", "0 <= reserved <= on_hand")
def level_bounds():
    with connection.cursor() as cur:
        cur.execute("SELECT id, on_hand, reserved FROM inventory_stocklevel "
                    "WHERE on_hand < 0 OR reserved < 0 OR reserved > on_hand")
        for level_id, on_hand, reserved in cur.fetchall():
            yield f"level {level_id}: on_hand {on_hand}, reserved {reserved}"


@audit_check("1", "applied counts posted counted minus the book figure when counted")
def counts_applied_against_their_snapshot():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.number, l.sku_id, l.counted, l.expected, l.difference, COALESCE(m.moved, 0) "
            "FROM inventory_stockcountline l JOIN inventory_stockcount c ON c.id = l.count_id "
            "LEFT JOIN (SELECT mv.reference, lv.warehouse_id, lv.sku_id, SUM(mv.qty) AS moved "
            "           FROM inventory_stockmove mv JOIN inventory_stocklevel lv ON lv.id = mv.level_id "
            "           WHERE mv.reason = 'count' AND lv.bucket = 'sellable' GROUP BY 1, 2, 3) m "
            "ON m.reference = c.number AND m.warehouse_id = c.warehouse_id AND m.sku_id = l.sku_id "
            "WHERE c.status = 'applied' AND (l.difference IS DISTINCT FROM l.counted - l.expected "
            "                                OR COALESCE(m.moved, 0) <> l.counted - l.expected) "
            "ORDER BY c.id, l.sku_id"
        )
        for number, sku, counted, expected, difference, moved in cur.fetchall():
            yield (f"count {number}, sku {sku}: counted {counted} against {expected} on the books when counted, "
                   f"difference {difference}, but the count moved {moved}")
