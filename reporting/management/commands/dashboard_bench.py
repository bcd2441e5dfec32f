"""Benchmark the head-office dashboard over a generated order book (1M orders by default).

Runs in its own scratch database (created from the migrations; kept with --keep and reused with
--reuse, dropped otherwise).  The order book is generated day by day with settlement_bench's
set-based generator (its ``ORDERS_SQL``: channel mix, 1–3 lines, payments, coupons, guides,
returns, cancellations) over --days business days ending today, a little busier at weekends;
this command then adds, also set-based, what the dashboard reads besides orders: members (with
tiers, points and wallet balances) attached to the orders, a second region, issued coupons and
their redemptions, guide bindings and commission accruals, stock levels with their sale, return
and opening moves, replenishment rules, transfers in transit and damaged stock.

Then it refreshes the roll-ups as the beat task does (a full backfill of every day, and the
beat task itself, timed) and times every dashboard figure as an HQ user: the page through the
Django test client under several filters, and each selector on its own, reporting median and
p95 over --repeat runs and the query count.  Writes bench/results/dashboard.json.

    python manage.py dashboard_bench --orders 1000000 --days 75 --keep
    python manage.py dashboard_bench --reuse --keep      # time again on the kept data set
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import date, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import OperationalError
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from reporting import rollups, selectors, tasks
from orders.management import orderbook
from stores.models import City, Region, Role, StaffProfile, Store, Warehouse

GOAL_MS = 200

# Run once before the first day: what the generated orders will point at.
SETUP_SQL = """
UPDATE catalog_sku SET cost_price = round(list_price * 0.55, 2) WHERE code LIKE 'BK-%%';
INSERT INTO members_tier (code, name, min_spend, points_multiplier, is_active) VALUES
       ('B-1', '银卡', 0, 1, true), ('B-2', '金卡', 2000, 1.5, true), ('B-3', '白金卡', 10000, 2, true);
CREATE TEMP TABLE bench_ds ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY s.id) - 1 AS no, s.id, s.warehouse_id, p.id AS guide_id
  FROM stores_store s JOIN stores_staffprofile p ON p.employee_no = 'BG-' || s.id;
CREATE TEMP TABLE bench_dt ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY min_spend) - 1 AS no, id FROM members_tier WHERE code LIKE 'B-%%';
INSERT INTO members_member (id, phone, name, registration_channel, registration_partner, spend_12m,
                            points_available, points_frozen, points_debt, wallet_principal, wallet_bonus,
                            created_at, updated_at, registration_store_id, tier_id)
SELECT i, '+86139' || lpad(i::text, 8, '0'), '',
       CASE i %% 4 WHEN 0 THEN 'mini_program' WHEN 1 THEN 'web' ELSE 'pos' END, '', 0,
       (i * 37) %% 5000, (i * 11) %% 300, 0,
       CASE WHEN i %% 20 = 0 THEN 1000.00 ELSE 0 END, CASE WHEN i %% 20 = 0 THEN 100.00 ELSE 0 END,
       %(lo)s, %(lo)s, s.id, t.id
  FROM generate_series(1, %(members)s) i
  JOIN bench_ds s ON s.no = i %% %(stores)s
  LEFT JOIN bench_dt t ON t.no = CASE WHEN i %% 7 = 0 THEN -1 WHEN i %% 10 < 6 THEN 0 WHEN i %% 10 < 9 THEN 1
                                     ELSE 2 END;
SELECT setval(pg_get_serial_sequence('members_member', 'id'), %(members)s);
INSERT INTO members_guidebinding (source, valid_from, valid_to, ended_reason, created_at, guide_id, member_id,
                                  store_id)
SELECT 'qr', %(lo)s, NULL, '', %(lo)s, s.guide_id, i, s.id
  FROM generate_series(3, %(members)s, 3) i JOIN bench_ds s ON s.no = i %% %(stores)s;
INSERT INTO members_coupontemplate (code, name, description, kind, amount, threshold, channels, validity,
                                   valid_days, per_member_limit, issued_count, bearer, ecommerce_share_percent,
                                   claimable_online, guide_can_issue, shareable, is_active, stacks_with_promotions,
                                   created_at)
VALUES ('BENCH10', '满减10元', '', 'fixed', 10.00, 0, '{}', 'days', 30, NULL, 0, 'split', 50, true, true, false,
        true, true, %(lo)s);
INSERT INTO inventory_stocklevel (bucket, on_hand, reserved, updated_at, sku_id, warehouse_id)
SELECT b.bucket, 0, 0, %(lo)s, k.id, w.id
  FROM stores_warehouse w CROSS JOIN catalog_sku k
 CROSS JOIN (VALUES ('sellable'), ('damaged')) b (bucket)
 WHERE w.code LIKE 'BW-%%' AND k.code LIKE 'BK-%%' AND (b.bucket = 'sellable' OR (k.id + w.id) %% 9 = 0);
INSERT INTO inventory_replenishmentrule (min_qty, max_qty, sku_id, warehouse_id)
SELECT 60, 200, k.id, w.id
  FROM stores_warehouse w CROSS JOIN catalog_sku k
 WHERE w.code LIKE 'BW-%%' AND w.kind = 'store' AND k.code LIKE 'BK-%%';
"""

# Run after each generated day (orders with ids above base_o): members, pickups, refunds,
# coupons, commission and stock moves of that day.
DAY_SQL = """
UPDATE orders_order o
   SET member_id = CASE WHEN o.coupon_code <> '' OR o.channel <> 'pos' OR o.id %% 2 = 0
                        THEN 1 + (o.id * 7919) %% %(members)s END,
       handed_over_at = CASE WHEN o.fulfillment = 'pickup' AND o.status <> 'cancelled'
                             THEN o.paid_at + make_interval(hours => 1 + (o.id %% 30)::int)
                             WHEN o.fulfillment = 'pickup' THEN NULL ELSE o.handed_over_at END,
       refunded_total = CASE WHEN o.status = 'cancelled' THEN o.paid_total
                             ELSE coalesce((SELECT sum(r.refund_total) FROM orders_return r WHERE r.order_id = o.id),
                                           0) END
 WHERE o.id > %(base_o)s;
INSERT INTO members_issuedcoupon (code, status, source, valid_from, valid_until, issued_at, updated_at,
                                  issued_to_id, member_id, template_id)
SELECT 'BC' || o.id, CASE WHEN o.status = 'cancelled' THEN 'issued' ELSE 'redeemed' END,
       CASE WHEN o.guide_id IS NULL THEN 'claim' ELSE 'guide' END,
       o.paid_at - interval '3 days', o.paid_at + interval '27 days', o.paid_at - interval '3 days', o.paid_at,
       o.member_id, o.member_id, t.id
  FROM orders_order o, members_coupontemplate t
 WHERE o.id > %(base_o)s AND o.coupon_code = 'BENCH10' AND t.code = 'BENCH10';
INSERT INTO members_issuedcoupon (code, status, source, valid_from, valid_until, issued_at, updated_at,
                                  issued_to_id, member_id, template_id)
SELECT 'BU' || (%(base_o)s + g), 'issued', 'hq', at, at + interval '30 days', at, at, m, m, t.id
  FROM generate_series(1, %(n)s / 8) g, members_coupontemplate t,
       LATERAL (SELECT %(lo)s::timestamptz + make_interval(secs => (g * 8 * 86000.0 / %(n)s)) AS at,
                       1 + (g * 104729) %% %(members)s AS m) x
 WHERE t.code = 'BENCH10';
INSERT INTO members_couponevent (kind, at, channel, partner, order_number, note, store_id, coupon_id)
SELECT 'issued', c.issued_at, '', '', '', '', m.registration_store_id, c.id
  FROM members_issuedcoupon c JOIN members_member m ON m.id = c.member_id
 WHERE c.issued_at >= %(lo)s - interval '3 days' AND c.id > %(base_c)s;
INSERT INTO members_couponredemption (order_number, channel, eligible_amount, discount, ecommerce_amount,
                                      store_amount, partner, redeemed_at, restored_at, member_id, store_id,
                                      coupon_id)
SELECT o.number, o.channel, o.subtotal, o.coupon_discount, o.coupon_cost_ecommerce, o.coupon_cost_store, '',
       o.paid_at, CASE WHEN o.status = 'cancelled' THEN o.paid_at + interval '10 minutes' END, o.member_id,
       o.store_id, c.id
  FROM orders_order o JOIN members_issuedcoupon c ON c.code = 'BC' || o.id
 WHERE o.id > %(base_o)s;
INSERT INTO members_commissionentry (kind, order_number, line_no, channel, base_amount, rate_percent, frozen_delta,
                                     released_delta, frozen_until, reference, created_at, guide_id, store_id,
                                     sku_id)
SELECT 'accrual', o.number, l.line_no, o.channel, l.line_total, 5.00, round(l.line_total * 0.05, 2), 0,
       o.paid_at + interval '7 days', '', o.paid_at, o.guide_id, o.store_id, l.sku_id
  FROM orders_order o JOIN orders_orderline l ON l.order_id = o.id
 WHERE o.id > %(base_o)s AND o.guide_id IS NOT NULL AND o.status <> 'cancelled';
INSERT INTO inventory_stockmove (bucket, qty, reason, reference, note, created_at, level_id, sku_id, warehouse_id)
SELECT 'sellable', -l.qty, 'sale', o.number, '', o.paid_at, sl.id, l.sku_id, l.warehouse_id
  FROM orders_order o JOIN orders_orderline l ON l.order_id = o.id
  JOIN inventory_stocklevel sl ON sl.warehouse_id = l.warehouse_id AND sl.sku_id = l.sku_id
                              AND sl.bucket = 'sellable'
 WHERE o.id > %(base_o)s AND o.status <> 'cancelled';
INSERT INTO inventory_stockmove (bucket, qty, reason, reference, note, created_at, level_id, sku_id, warehouse_id)
SELECT 'sellable', rl.qty, 'return', r.number, '', r.created_at, sl.id, sl.sku_id, sl.warehouse_id
  FROM orders_return r JOIN orders_returnline rl ON rl.ret_id = r.id
  JOIN orders_orderline l ON l.id = rl.order_line_id JOIN stores_store s ON s.id = r.store_id
  JOIN inventory_stocklevel sl ON sl.warehouse_id = s.warehouse_id AND sl.sku_id = l.sku_id
                              AND sl.bucket = 'sellable'
 WHERE r.order_id > %(base_o)s;
"""

# Run after the last day: opening stock so every level ends positive, on_hand = Σ moves, transfers.
FINISH_SQL = """
INSERT INTO inventory_stockmove (bucket, qty, reason, reference, note, created_at, level_id, sku_id, warehouse_id)
SELECT bucket, qty, 'opening', 'BENCH', '', %(opening)s, id, sku_id, warehouse_id
  FROM (SELECT sl.*, coalesce(-m.qty, 0) + CASE WHEN sl.bucket = 'damaged' THEN 3
                                                ELSE 20 + (sl.sku_id * 13 + sl.warehouse_id * 7) %% 150 END AS qty
          FROM inventory_stocklevel sl
          LEFT JOIN (SELECT level_id, sum(qty) AS qty FROM inventory_stockmove GROUP BY level_id) m
            ON m.level_id = sl.id) opening
 WHERE qty <> 0;
UPDATE inventory_stocklevel sl SET on_hand = m.qty
  FROM (SELECT level_id, sum(qty) AS qty FROM inventory_stockmove GROUP BY level_id) m WHERE m.level_id = sl.id;
INSERT INTO inventory_transfer (number, status, note, reference, created_at, shipped_at, source_id, destination_id)
SELECT 'BT-' || w.id, 'shipped', '', '', %(now)s, %(now)s, c.id, w.id
  FROM stores_warehouse w, stores_warehouse c
 WHERE w.code IN ('BW-1', 'BW-2', 'BW-3', 'BW-11', 'BW-12') AND c.code = 'BW-C';
INSERT INTO inventory_transferline (qty, qty_received, qty_damaged, sku_id, transfer_id)
SELECT 5 + k.id %% 7, 0, 0, k.id, t.id
  FROM inventory_transfer t JOIN catalog_sku k ON k.code IN ('BK-1', 'BK-2', 'BK-3', 'BK-4', 'BK-5')
 WHERE t.number LIKE 'BT-%%';
"""

MARKER = "dashboard_bench"


class Command(orderbook.OrderBookCommand):
    help = "Time every dashboard figure over a generated order book (scratch database); writes " \
           "bench/results/dashboard.json."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=1_000_000)
        parser.add_argument("--days", type=int, default=75)
        parser.add_argument("--stores", type=int, default=20)
        parser.add_argument("--members", type=int, default=150_000)
        parser.add_argument("--repeat", type=int, default=7, help="timed runs per figure (after one warm-up)")
        parser.add_argument("--keep", action="store_true", help="keep the scratch database")
        parser.add_argument("--reuse", action="store_true",
                            help="reuse a kept scratch database holding the same data set")
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "bench" / "results" /
                                                   "dashboard.json"))

    def handle(self, *args, orders, days, stores, members, repeat, keep, reuse, output, **options):
        base = dict(settings.DATABASES["default"])  # a copy: _use() changes the live settings
        scratch = f"{base['NAME']}_dashboard_bench"[:63]
        wanted = {"orders": orders, "days": days, "stores": stores, "members": members}
        load_start = os.getloadavg()
        try:
            self._use(scratch)
            existing = self._dataset() if reuse else None
        except OperationalError:
            existing = None
        try:
            if existing and existing["params"] == wanted:
                self.stdout.write(f"reusing {scratch}: {existing}")
                call_command("migrate", verbosity=0)  # roll-up tables or indexes added since it was built
                generation = existing
            else:
                self._use(base["NAME"])
                self._recreate(base, scratch)
                self._use(scratch)
                call_command("migrate", verbosity=0)
                generation = self._generate(**wanted)
            version = self._server_version()
            refresh = self._refresh(generation["first_day"], generation["last_day"])
            figures = self._time_figures(generation, repeat)
        finally:
            self._use(base["NAME"])
            if not keep:
                self._drop(base, scratch)
        load_end = os.getloadavg()
        slowest = max(f["median_ms"] for f in figures)
        report = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgres": version,
                        "loadavg_start": [round(x, 2) for x in load_start],
                        "loadavg_end": [round(x, 2) for x in load_end]},
            "measured_at": timezone.now().isoformat(timespec="seconds"),
            "dataset": generation, "rollup_refresh": refresh, "repeat": repeat, "goal_ms": GOAL_MS,
            "slowest_median_ms": slowest, "all_under_goal": all(f["p95_ms"] < GOAL_MS for f in figures
                                                                if f["kind"] == "page"),
            "note": "page: GET /dashboard/ through the Django test client as an HQ admin (all figures, template "
                    "rendered); selector: one figure's reads alone. median/p95 over the timed runs after one "
                    "warm-up; queries counted on the warm-up run. The machine is shared: see loadavg.",
            "figures": figures,
        }
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        self.stdout.write(f"written to {output}")

    # --- the data set -------------------------------------------------------------------------------

    def _dataset(self) -> dict | None:
        with connection.cursor() as cur:
            cur.execute("SELECT to_regclass('bench_dataset')")
            if cur.fetchone()[0] is None:
                return None
            cur.execute("SELECT doc FROM bench_dataset WHERE name = %s", [MARKER])
            row = cur.fetchone()
        return json.loads(row[0]) if row else None

    def _generate(self, *, orders: int, days: int, stores: int, members: int) -> dict:
        started = time.perf_counter()
        self._setup(stores)
        self._second_region(stores)
        last = rollups.business_today()
        first = last - timedelta(days=days - 1)
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(SETUP_SQL, {"lo": rollups._day_start(first), "members": members, "stores": stores})
        per_day = self._orders_per_day(first, days, orders)
        for i, n in enumerate(per_day):
            self._one_day(first + timedelta(days=i), n, stores, members)
            if i % 10 == 9:
                self.stdout.write(f"  {i + 1}/{days} days generated, {time.perf_counter() - started:.0f} s")
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(FINISH_SQL, {"opening": rollups._day_start(first) - timedelta(days=1),
                                     "now": timezone.now()})
        with connection.cursor() as cur:
            for table in ("orders_order", "orders_orderline", "payments_payment"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            cur.execute("VACUUM ANALYZE")
        counts = self._counts()
        doc = {"params": {"orders": orders, "days": days, "stores": stores, "members": members},
               "first_day": first.isoformat(), "last_day": last.isoformat(), **counts,
               "generate_seconds": round(time.perf_counter() - started, 1)}
        with connection.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS bench_dataset (name text PRIMARY KEY, doc text NOT NULL)")
            cur.execute("INSERT INTO bench_dataset VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET doc = "
                        "EXCLUDED.doc", [MARKER, json.dumps(doc)])
        self.stdout.write(json.dumps(doc))
        return doc

    @staticmethod
    def _orders_per_day(first: date, days: int, orders: int) -> list[int]:
        """Weekends a third busier than weekdays; the counts add up to ``orders``."""
        weights = [4 if (first + timedelta(days=i)).weekday() >= 5 else 3 for i in range(days)]
        counts = [orders * w // sum(weights) for w in weights]
        counts[-1] += orders - sum(counts)
        return counts

    def _second_region(self, stores: int) -> None:
        """Move the second half of the stores (and their warehouses) to a city in another region."""
        region = Region.objects.create(code="BR2", name="基准二区")
        city = City.objects.create(code="BC2", name="基准二市", region=region)
        codes = [f"BS-{i}" for i in range(stores // 2 + 1, stores + 1)]
        Store.objects.filter(code__in=codes).update(city=city)
        Warehouse.objects.filter(store__code__in=codes).update(city=city)

    def _one_day(self, day: date, n: int, stores: int, members: int) -> None:
        lo, hi = rollups._day_start(day), rollups._day_start(day + timedelta(days=1))
        with connection.cursor() as cur:
            cur.execute("SELECT COALESCE(max(id), 0) FROM orders_order")
            base_o = cur.fetchone()[0]
            cur.execute("SELECT COALESCE(max(id), 0) FROM orders_orderline")
            base_l = cur.fetchone()[0]
            cur.execute("SELECT COALESCE(max(id), 0) FROM members_issuedcoupon")
            base_c = cur.fetchone()[0]
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(orderbook.ORDERS_SQL, {"n": n, "base_o": base_o, "base_l": base_l, "lo": lo,
                                                      "hi": hi, "stores": stores})
            cur.execute(DAY_SQL, {"n": n, "base_o": base_o, "base_c": base_c, "lo": lo, "members": members})

    def _counts(self) -> dict:
        tables = {"orders": "orders_order", "order_lines": "orders_orderline", "payments": "payments_payment",
                  "returns": "orders_return", "members": "members_member", "issued_coupons": "members_issuedcoupon",
                  "coupon_redemptions": "members_couponredemption", "commission_entries": "members_commissionentry",
                  "stock_moves": "inventory_stockmove", "stock_levels": "inventory_stocklevel"}
        out = {}
        with connection.cursor() as cur:
            for key, table in tables.items():
                cur.execute(f"SELECT count(*) FROM {table}")
                out[key] = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM orders_order WHERE member_id IS NOT NULL")
            out["orders_with_member"] = cur.fetchone()[0]
            cur.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            out["database_size"] = cur.fetchone()[0]
        return out

    # --- the roll-ups -------------------------------------------------------------------------------

    def _refresh(self, first: str, last: str) -> dict:
        started = time.perf_counter()
        rows = rollups.sales_rollup_refresh(first=date.fromisoformat(first), last=date.fromisoformat(last))
        backfill = time.perf_counter() - started
        beat = []
        for _ in range(3):
            started = time.perf_counter()
            tasks.sales_rollup_refresh.apply().get()
            beat.append((time.perf_counter() - started) * 1000)
        with connection.cursor() as cur:
            # As autovacuum would soon after a backfill: the visibility map lets the member-channel
            # range scans run index-only.
            for table in ("orders_dailymemberchannels", "orders_dailyo2orollup", "orders_dailyguidesalesrollup",
                          "orders_dailycouponrollup", "orders_dailysalesrollup", "reporting_memberactivitycount",
                          "reporting_membertierrollup"):
                cur.execute(f"VACUUM (ANALYZE) {table}")
            cur.execute("ANALYZE")
        return {"backfill_all_days_seconds": round(backfill, 2), "backfill_rows": rows,
                "beat_task_ms": [round(x) for x in beat], "beat_task_median_ms": round(statistics.median(beat)),
                "beat_task": "orders.dashboard.tasks.sales_rollup_refresh (today and the 3 days before), "
                             "run eagerly in this process"}

    # --- the figures --------------------------------------------------------------------------------

    def _hq_user(self):
        user, _ = get_user_model().objects.get_or_create(username="bench-hq", defaults={"is_staff": True})
        StaffProfile.objects.get_or_create(user=user, defaults={"employee_no": "BHQ", "display_name": "总部",
                                                                "role": Role.HQ_ADMIN})
        return user

    def _time_figures(self, generation: dict, repeat: int) -> list[dict]:
        user = self._hq_user()
        last = date.fromisoformat(generation["last_day"])
        first = date.fromisoformat(generation["first_day"])
        store = Store.objects.get(code="BS-3")
        region = Region.objects.get(code="BR2")
        city = City.objects.get(code="BC")
        pages = {
            "page: last 28 days (default)": {},
            "page: last 7 days": {"start": (last - timedelta(days=6)).isoformat(), "end": last.isoformat()},
            f"page: all {generation['params']['days']} days": {"start": first.isoformat(), "end": last.isoformat()},
            "page: 28 days, one region": {"region": region.pk},
            "page: 28 days, one city": {"city": city.pk},
            "page: 28 days, one store": {"store": store.pk},
            f"page: all {generation['params']['days']} days, one store": {
                "start": first.isoformat(), "end": last.isoformat(), "store": store.pk},
        }
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
        url = reverse("dashboard:index")
        out = []
        # As bench.settings: no collected manifest is needed to render the page's static URLs.
        storages = {**settings.STORAGES, "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
        with override_settings(ALLOWED_HOSTS=["localhost"], STORAGES=storages):
            for name, params in pages.items():
                def get(params=params):
                    response = client.get(url, params, secure=True)
                    if response.status_code != 200 or b'class="errornote"' in response.content:
                        raise RuntimeError(f"{name}: HTTP {response.status_code} or the filter was refused")
                out.append(self._measure(name, "page", get, repeat, {k: str(v) for k, v in params.items()}))
        scopes = {
            "28 days": selectors.scope_for(user, start=last - timedelta(days=27), end=last),
            f"all {generation['params']['days']} days": selectors.scope_for(user, start=first, end=last),
            "28 days, one store": selectors.scope_for(user, start=last - timedelta(days=27), end=last,
                                                      store_id=store.pk),
        }
        figures = {"sales by day/channel/store": selectors.sales_summary, "O2O metrics": selectors.o2o_metrics,
                   "coupon funnel": selectors.coupon_funnel, "guide leaderboard": selectors.guide_leaderboard,
                   "stock": selectors.stock_metrics,
                   "members in more than one channel (part of O2O)": selectors.omni_member_counts}
        for label, scope in scopes.items():
            for name, fn in figures.items():
                out.append(self._measure(f"{name}: {label}", "selector", lambda fn=fn, scope=scope: fn(scope),
                                         repeat))
        out.append(self._measure("members", "selector", selectors.member_metrics, repeat))
        out.append(self._measure("filter choices", "selector", lambda: selectors.filter_choices(user), repeat))
        return out

    def _measure(self, name: str, kind: str, fn, repeat: int, params: dict | None = None) -> dict:
        queries = []

        def count(execute, sql, params, many, context):
            queries.append(sql)
            return execute(sql, params, many, context)

        # Counted with a wrapper, not the debug query log: a request resets that log when it starts.
        with connection.execute_wrapper(count):
            fn()
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        row = {"name": name, "kind": kind, **({"params": params} if params is not None else {}),
               "median_ms": round(statistics.median(times), 1),
               "p95_ms": round(times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], 1),
               "max_ms": round(times[-1], 1), "queries": len(queries), "runs": repeat}
        self.stdout.write(json.dumps(row, ensure_ascii=False))
        return row
