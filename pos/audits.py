"""Invariant 5 of DESIGN.md for offline sales: each is one order, at the price the customer paid;
and a stock shortfall it brought back was booked in, so the level still equals its moves."""

from django.db import connection

from o2o.audit import audit_check


@audit_check("5", "every offline sale has exactly one order, of its store, at the price paid")
def offline_sales_one_order():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT s.receipt_number, s.client_uuid, o.number, o.store_id, s.store_id, o.total, s.paid_total, "
            "       (SELECT COUNT(*) FROM orders_order x WHERE x.client_uuid = s.client_uuid) "
            "FROM pos_offlinesale s LEFT JOIN orders_order o ON o.id = s.order_id "
            "WHERE o.id IS NULL OR o.client_uuid IS DISTINCT FROM s.client_uuid OR o.store_id <> s.store_id "
            "   OR o.total <> s.paid_total "
            "   OR (SELECT COUNT(*) FROM orders_order x WHERE x.client_uuid = s.client_uuid) <> 1 "
            "ORDER BY s.id"
        )
        for receipt, key, number, order_store, store, total, paid, orders in cur.fetchall():
            if number is None:
                yield f"offline sale {receipt} ({key}) has no order"
            else:
                yield (f"offline sale {receipt} ({key}): order {number} of store {order_store} (sale's store {store}), "
                       f"total {total} against {paid} paid, {orders} orders with its client id")


@audit_check("1", "every stock shortfall of an offline sale was booked in for the count")
def offline_shortfalls_booked():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT s.receipt_number, c.sku_id, c.qty_short, COALESCE(SUM(m.qty), 0) "
            "FROM pos_offlineconflict c JOIN pos_offlinesale s ON s.id = c.offline_sale_id "
            "JOIN stores_store st ON st.id = s.store_id "
            "LEFT JOIN inventory_stockmove m ON m.reference = s.receipt_number AND m.sku_id = c.sku_id "
            "     AND m.warehouse_id = st.warehouse_id AND m.reason = 'adjustment' "
            "WHERE c.kind = 'stock_short' GROUP BY s.receipt_number, c.sku_id, c.qty_short "
            "HAVING COALESCE(SUM(m.qty), 0) <> c.qty_short ORDER BY 1, 2"
        )
        for receipt, sku, short, booked in cur.fetchall():
            yield f"offline sale {receipt}, sku {sku}: {short} units short but {booked} booked in for the count"
