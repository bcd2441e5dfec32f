"""Invariant 1 of DESIGN.md: on_hand == Σ moves; reserved == Σ active reservations; 0 <= reserved <= on_hand."""

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
