"""A generated order book for the benchmarks (settlement, dashboard): a scratch database and one day of
orders at a time, generated set-based in SQL.  See ``settlement_bench`` for the shares it produces."""

from __future__ import annotations

from decimal import Decimal

import psycopg2
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import connection, connections

from catalog.models import Category, Product, Sku
from stores.models import City, Region, Role, StaffProfile, Store, StoreMembership, Warehouse

# Per-order choices derived from g, so a run is reproducible.
ORDERS_SQL = """
CREATE TEMP TABLE bench_s ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY s.id) AS no, s.id, s.warehouse_id, p.id AS guide_id
  FROM stores_store s JOIN stores_staffprofile p ON p.employee_no = 'BG-' || s.id;
CREATE TEMP TABLE bench_k ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY id) - 1 AS no, id, code, list_price FROM catalog_sku WHERE code LIKE 'BK-%%';
CREATE TEMP TABLE bench_o ON COMMIT DROP AS
SELECT g, %(base_o)s + g AS id,
       CASE WHEN g %% 20 < 12 THEN 'pos' WHEN g %% 20 < 17 THEN 'mini_program' WHEN g %% 20 < 19 THEN 'web'
            ELSE 'marketplace' END AS channel,
       s1.id AS store_id, s1.warehouse_id, s1.guide_id AS own_guide, s2.id AS other_store_id,
       s2.guide_id AS other_guide, s3.warehouse_id AS ship_warehouse_id, 1 + g %% 3 AS nlines,
       %(lo)s::timestamptz + make_interval(secs => (g * 86000.0 / %(n)s)) AS paid_at
  FROM generate_series(1, %(n)s) g
  JOIN bench_s s1 ON s1.no = (g / 20) %% %(stores)s + 1
  JOIN bench_s s2 ON s2.no = ((g / 20) %% %(stores)s + 1) %% %(stores)s + 1
  JOIN bench_s s3 ON s3.no = (g * 3) %% %(stores)s + 1;
CREATE TEMP TABLE bench_l ON COMMIT DROP AS
SELECT o.id AS order_id, %(base_l)s + o.g * 4 + n AS id, n AS line_no, k.id AS sku_id, k.code AS sku_code,
       k.list_price AS unit_price, 1 + (o.g + n) %% 2 AS qty,
       CASE WHEN n = 1 AND o.g %% 10 = 3 THEN 10.00 ELSE 0 END AS coupon,
       CASE WHEN o.channel IN ('pos', 'mini_program') THEN o.warehouse_id
            WHEN o.channel = 'web' THEN (SELECT id FROM stores_warehouse WHERE code = 'BW-C')
            ELSE o.ship_warehouse_id END AS warehouse_id
  FROM bench_o o CROSS JOIN generate_series(1, 3) n
  JOIN bench_k k ON k.no = (o.g + n) %% 50
 WHERE n <= o.nlines;
INSERT INTO orders_order (id, number, channel, partner, request_hash, store_id, fulfillment, status, guide_id,
                          coupon_code, coupon_discount, coupon_cost_ecommerce, coupon_cost_store, customer_name,
                          customer_phone, ship_address, ship_postcode, subtotal, discount_total, total, paid_total,
                          refunded_total, currency, needs_transfer, created_at, updated_at, paid_at,
                          handed_over_at, version, cash_rounding, remark)
SELECT o.id, 'BO' || o.id, o.channel, '', '',
       CASE WHEN o.channel IN ('pos', 'mini_program') THEN o.store_id END,
       CASE o.channel WHEN 'pos' THEN 'in_store' WHEN 'mini_program' THEN 'pickup' WHEN 'web' THEN 'ship_warehouse'
            ELSE 'ship_store' END,
       CASE WHEN o.channel = 'mini_program' AND o.g %% 100 = 7 THEN 'cancelled'
            WHEN o.channel = 'pos' THEN 'completed' WHEN o.channel = 'mini_program' THEN 'picked_up'
            ELSE 'shipped' END,
       CASE o.g %% 5 WHEN 1 THEN o.other_guide WHEN 2 THEN o.own_guide END,
       CASE WHEN l.coupon > 0 THEN 'BENCH10' ELSE '' END, l.coupon,
       CASE WHEN o.channel = 'pos' THEN 0 ELSE l.coupon END, CASE WHEN o.channel = 'pos' THEN l.coupon ELSE 0 END,
       '', '', '', '', l.subtotal, l.coupon, l.subtotal - l.coupon, l.subtotal - l.coupon, 0, 'CNY', false,
       o.paid_at, o.paid_at, o.paid_at, o.paid_at, 1, 0, ''
  FROM bench_o o
  JOIN (SELECT order_id, sum(unit_price * qty) AS subtotal, sum(coupon) AS coupon FROM bench_l GROUP BY order_id) l
    ON l.order_id = o.id;
INSERT INTO orders_orderline (id, order_id, line_no, sku_id, sku_code, name, unit_price, qty, discount,
                              coupon_discount, category_id_snapshot, line_total, warehouse_id, qty_shipped,
                              qty_returned, refunded_amount)
SELECT id, order_id, line_no, sku_id, sku_code, sku_code, unit_price, qty, coupon, coupon, NULL,
       unit_price * qty - coupon, warehouse_id, qty, 0, 0
  FROM bench_l;
INSERT INTO payments_payment (id, number, reference, tender, provider, amount, currency, status, provider_txn_id,
                              payment_code, refunded_amount, refunding_amount, store_id, created_at, captured_at,
                              method)
SELECT o.id, 'BP' || o.id, 'BO' || o.id, t.tender, t.provider, x.total, 'CNY', 'captured',
       CASE WHEN t.provider <> '' THEN 'T' || o.id END, '', 0, 0,
       CASE WHEN o.channel = 'pos' THEN o.store_id END, o.paid_at, o.paid_at, ''
  FROM bench_o o JOIN orders_order x ON x.id = o.id
 CROSS JOIN LATERAL (SELECT CASE WHEN o.channel = 'pos' AND o.g %% 10 < 5 THEN 'cash'
                                 WHEN o.channel = 'pos' AND o.g %% 10 < 7 THEN 'unionpay_card'
                                 WHEN o.g %% 2 = 0 THEN 'wechat_pay' ELSE 'alipay' END AS tender) tt
 CROSS JOIN LATERAL (SELECT tt.tender, CASE tt.tender WHEN 'cash' THEN '' WHEN 'unionpay_card' THEN 'unionpay'
                                                      ELSE tt.tender END AS provider) t;
INSERT INTO orders_orderevent (order_id, kind, from_status, to_status, reason, data, created_at)
SELECT id, 'status', 'paid', 'cancelled', 'bench', '{}', paid_at + interval '10 minutes'
  FROM orders_order WHERE id > %(base_o)s AND status = 'cancelled';
INSERT INTO payments_refund (number, payment_id, amount, currency, method, status, reason, policy_note, failure,
                             overpayment, store_id, created_at, completed_at, updated_at)
SELECT 'BC' || o.id, o.id, o.total, 'CNY', 'original', 'succeeded', 'cancelled', '', '', false, NULL,
       o.paid_at + interval '10 minutes', o.paid_at + interval '10 minutes', o.paid_at + interval '10 minutes'
  FROM orders_order o WHERE o.id > %(base_o)s AND o.status = 'cancelled';
INSERT INTO orders_return (number, order_id, store_id, reason, refund_total, refund_policy, created_at,
                           updated_at, cash_rounding)
SELECT 'BR' || o.id, o.id, CASE WHEN o.g %% 2 = 0 THEN o.store_id ELSE o.other_store_id END,
       'bench', round(l.line_total / l.qty, 2), '', o.paid_at + (%(hi)s::timestamptz - o.paid_at) / 2,
       o.paid_at + (%(hi)s::timestamptz - o.paid_at) / 2, 0
  FROM bench_o o JOIN orders_orderline l ON l.order_id = o.id AND l.line_no = 1
 WHERE o.g %% 33 = 5 AND o.channel <> 'web';
INSERT INTO orders_returnline (ret_id, order_line_id, qty, condition, refund_amount)
SELECT r.id, l.id, 1, 'sellable', r.refund_total
  FROM orders_return r JOIN orders_orderline l ON l.order_id = r.order_id AND l.line_no = 1
 WHERE r.order_id > %(base_o)s;
INSERT INTO payments_refund (number, payment_id, amount, currency, method, status, reason, policy_note, failure,
                             overpayment, store_id, created_at, completed_at, updated_at)
SELECT 'BF' || r.id, r.order_id, r.refund_total, 'CNY',
       CASE WHEN p.tender = 'cash' THEN 'cash' ELSE 'original' END, 'succeeded', 'return', '', '', false,
       r.store_id, r.created_at, r.created_at, r.created_at
  FROM orders_return r JOIN payments_payment p ON p.id = r.order_id
 WHERE r.order_id > %(base_o)s AND r.refund_total > 0;
"""


class OrderBookCommand(BaseCommand):
    """The scratch database and the places and goods the generated orders point at."""

    def _setup(self, stores: int) -> None:
        """A city with a central warehouse, ``stores`` stores with a guide each, 50 SKUs."""
        region = Region.objects.create(code="BR", name="基准区")
        city = City.objects.create(code="BC", name="基准市", region=region)
        Warehouse.objects.create(code="BW-C", name="总仓", kind=Warehouse.Kind.CENTRAL, city=city)
        for i in range(1, stores + 1):
            warehouse = Warehouse.objects.create(code=f"BW-{i}", name=f"门店仓{i}", kind=Warehouse.Kind.STORE,
                                                 city=city)
            store = Store.objects.create(code=f"BS-{i}", name=f"门店{i}", city=city, warehouse=warehouse)
            user = get_user_model().objects.create(username=f"bench-guide-{store.pk}")
            guide = StaffProfile.objects.create(user=user, employee_no=f"BG-{store.pk}", display_name=f"导购{i}",
                                                role=Role.GUIDE, guide_code=f"BG-{store.pk}")
            StoreMembership.objects.create(staff=guide, store=store)
        category = Category.objects.create(code="BENCH", name="基准类", path="BENCH")
        for k in range(50):
            product = Product.objects.create(code=f"BP-{k}", name=f"基准商品{k}", category=category)
            Sku.objects.create(product=product, code=f"BK-{k}", name=f"基准SKU{k}",
                               list_price=Decimal("19.90") + k * Decimal("7.31"))

    @staticmethod
    def _admin_connection(base: dict):
        conn = psycopg2.connect(dbname="postgres", user=base.get("USER") or None,
                                password=base.get("PASSWORD") or None, host=base.get("HOST") or None,
                                port=base.get("PORT") or None)
        conn.autocommit = True
        return conn

    def _recreate(self, base: dict, name: str) -> None:
        self._drop(base, name)
        conn = self._admin_connection(base)
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    def _drop(self, base: dict, name: str) -> None:
        conn = self._admin_connection(base)
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    @staticmethod
    def _use(name: str) -> None:
        connections["default"].close()
        settings.DATABASES["default"]["NAME"] = name
        connections["default"].settings_dict["NAME"] = name

    @staticmethod
    def _server_version() -> str:
        with connection.cursor() as cur:
            cur.execute("SHOW server_version")
            return cur.fetchone()[0]
