"""Benchmark settlement: generate a day of orders in bulk, settle it, record the times.

Runs in a scratch database (created from the migrations, dropped afterwards unless --keep), so it
never touches real data.  Each size in --orders is its own business day, settled in order after
the smaller ones, so later days also carry the history of the earlier ones.  Orders, lines,
payments, returns, refunds and cancellations are generated set-based in SQL (INSERT … SELECT over
generate_series) with realistic shares: 60 % counter sales, 25 % mini-program pickups, 10 % web
orders shipped from the warehouse, 5 % marketplace orders shipped from stores; 1–3 lines per
order; coupons on 10 %, guides on 40 % (half of them from another store); 3 % returned in part
(half at another store); online pickups sometimes cancelled after payment.

    python manage.py settlement_bench --orders 10000 100000 1000000
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from orders.management.orderbook import ORDERS_SQL, OrderBookCommand
from settlement import services
from settlement.models import SettlementDay, SettlementStatement, SplitLine, SplitRule, TenderLine

class Command(OrderBookCommand):
    help = "Time settlement of generated days (scratch database); writes bench/results/settlement.json."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, nargs="+", default=[10_000, 100_000])
        parser.add_argument("--stores", type=int, default=20)
        parser.add_argument("--keep", action="store_true", help="keep the scratch database")
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "bench" / "results" /
                                                   "settlement.json"))

    def handle(self, *args, orders, stores, keep, output, **options):
        base = dict(settings.DATABASES["default"])  # a copy: _use() changes the live settings
        scratch = f"{base['NAME']}_settlement_bench"[:63]
        self._recreate(base, scratch)
        self._use(scratch)
        results = []
        try:
            call_command("migrate", verbosity=0)
            version = self._server_version()
            self._setup(stores)
            first = timezone.localdate() - timedelta(days=len(orders) + 2)
            for i, n in enumerate(orders):
                results.append(self._one_day(first + timedelta(days=i), n, stores))
        finally:
            self._use(base["NAME"])
            if not keep:
                self._drop(base, scratch)
        report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgres": version,
                              "settlement_workers": services.workers()},
                  "stores": stores, "measured_at": timezone.now().isoformat(timespec="seconds"),
                  "note": "settle_seconds: settling the day (all store steps, day close); generation not included",
                  "runs": results}
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(report, indent=2) + "\n")
        self.stdout.write(f"written to {output}")

    def _one_day(self, day: date, n: int, stores: int) -> dict:
        lo, hi = services.day_start(day), services.day_start(day + timedelta(days=1))
        with connection.cursor() as cur:
            cur.execute("SELECT COALESCE(max(id), 0) FROM orders_order")
            base_o = cur.fetchone()[0]
            cur.execute("SELECT COALESCE(max(id), 0) FROM orders_orderline")
            base_l = cur.fetchone()[0]
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(ORDERS_SQL, {"n": n, "base_o": base_o, "base_l": base_l, "lo": lo, "hi": hi,
                                     "stores": stores})
        with connection.cursor() as cur:
            for table in ("orders_order", "orders_orderline", "payments_payment"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            cur.execute("ANALYZE")
        generated = time.perf_counter() - started
        started = time.perf_counter()
        services.settlement_run(until=day, now=hi + timedelta(hours=1))
        settle = time.perf_counter() - started
        started = time.perf_counter()
        services.settlement_run(until=day, now=hi + timedelta(hours=1))
        rerun = time.perf_counter() - started
        settled = SettlementDay.objects.get(day=day)
        counts = self._counts(lo, hi, settled)
        row = {"business_day": day.isoformat(), "orders": n, **counts, "generate_seconds": round(generated, 2),
               "settle_seconds": round(settle, 2), "rerun_seconds": round(rerun, 3),
               "orders_per_second": round(n / settle), "net": str(settled.net),
               "payments_minus_refunds": str(settled.payments_total - settled.refunds_total)}
        self.stdout.write(json.dumps(row))
        return row

    def _counts(self, lo, hi, settled) -> dict:
        statements = SettlementStatement.objects.filter(store_settlement__day=settled)
        return {"order_lines": SplitLine.objects.filter(statement__in=statements, kind="sale").count(),
                "split_lines": SplitLine.objects.filter(statement__in=statements).count(),
                "tender_lines": TenderLine.objects.filter(statement__in=statements).count(),
                "statements": statements.count()}

    def _setup(self, stores: int) -> None:
        """The order book's places and goods, and HQ's split rules."""
        super()._setup(stores)
        SplitRule.objects.create(name="线上订单门店履约", priority=10, fulfillment="pickup",
                                 ecommerce_percent=Decimal("10.50"))
        SplitRule.objects.create(name="门店发货", priority=20, fulfillment="ship_store",
                                 ecommerce_percent=Decimal("10.50"))
        SplitRule.objects.create(name="跨店导购", priority=30, channel="pos", guide_condition="other_store",
                                 guide_store_percent=Decimal("5.00"))

