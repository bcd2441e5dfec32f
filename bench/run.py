"""``make bench``: every benchmark against real gunicorn, PostgreSQL and Redis over loopback HTTP.

Creates (drops and re-creates) the database ``o2o_bench`` (``BENCH_DB`` to name another) on the
server of DATABASE_URL (or the embedded one) and uses Redis database 13 of REDIS_URL's server
(``BENCH_REDIS_DB`` to pick another), migrates and seeds it, then runs each benchmark with the load generator
(bench/load.py, an httpx asyncio client) in its own process, and pgbench for the SQL floor
in the same run.  Writes bench/results/latest.json and bench/results/README.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import runpy
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from bench.procs import children, hwm_kb
from o2o import embedded

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
# The web tier as production sizes it (gunicorn.conf.py: two sync workers per core) unless BENCH_WORKERS says.
WORKERS = int(os.environ.get("BENCH_WORKERS") or runpy.run_path(str(ROOT / "gunicorn.conf.py"))["workers"])
# A POS sale is seven requests: the tills need longer than one request to reach a steady state.
POS_WARMUP = 5
BENCH_DB = os.environ.get("BENCH_DB", "o2o_bench")
FLOORS = Path(__file__).resolve().parent / "floors"  # hand-written, frozen: never recaptured from the app
FROZEN_POS_STATEMENTS = 7
BENCH_REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "13"))
if not BENCH_DB.replace("_", "").isalnum():
    raise SystemExit(f"BENCH_DB must be a plain identifier, not {BENCH_DB!r}")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def bench_urls() -> tuple[str, str, dict]:
    base_db, base_redis = embedded.resolved_urls()
    parts = urlsplit(base_db)
    db_url = urlunsplit(parts._replace(path="/" + BENCH_DB))
    r = urlsplit(base_redis)
    redis_url = urlunsplit(r._replace(path=f"/{BENCH_REDIS_DB}"))
    query = parse_qs(parts.query)
    pg = {"host": query.get("host", [parts.hostname or "127.0.0.1"])[0], "port": str(parts.port or 5432),
          "user": parts.username or "postgres", "password": parts.password or "", "admin_db_url":
          urlunsplit(parts._replace(path="/postgres"))}
    return db_url, redis_url, pg


def pgbench_bin() -> str:
    for candidate in ("/usr/bin/pgbench", "/usr/lib/postgresql/15/bin/pgbench"):
        if os.path.exists(candidate):
            return candidate
    import pgserver

    return str(Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench")


class Bench:
    def __init__(self) -> None:
        self.db_url, self.redis_url, self.pg = bench_urls()
        self.env = dict(os.environ, DATABASE_URL=self.db_url, REDIS_URL=self.redis_url, O2O_BENCH_URLS="1",
                        DJANGO_SETTINGS_MODULE="bench.settings", DEBUG="0", LOG_LEVEL="ERROR")
        self.tmp = Path(tempfile.mkdtemp(prefix="o2o-bench-"))
        self.results: list[dict] = []
        self.gunicorn: subprocess.Popen | None = None
        self.port = 0

    # --- plumbing -------------------------------------------------------------------------
    def run(self, args: list[str], timeout: float = 600) -> str:
        done = subprocess.run(args, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return done.stdout

    def psql(self, sql: str, db: str = BENCH_DB) -> str:
        env = dict(self.env, PGPASSWORD=self.pg["password"])
        out = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-h", self.pg["host"], "-p", self.pg["port"], "-U",
                              self.pg["user"], "-d", db, "-c", sql], env=env, capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return out.stdout.strip()

    def frozen_floor_vars(self) -> list[str]:
        """The fixture's ids for the hand-written floors (bench/floors/*.sql), as pgbench -D options."""
        fx = self.fx
        values = {"stores": fx["stores"], "blocks": fx["blocks"], "skus": len(fx["skus"]),
                  "store0": fx["store_ids"][0], "warehouse0": fx["warehouse_ids"][0], "level0": fx["store_levels"][0],
                  "sku0": fx["skus"][0][0], "member0": fx["members"][0], "members": len(fx["members"]),
                  "hot_sku": fx["hot_sku"], "hot_level": fx["hot_level"]}
        return [arg for name, value in values.items() for arg in ("-D", f"{name}={value}")]

    def pgbench(self, script: Path, clients: int, seconds: float, *, extra: list[str] = ()) -> dict:
        args = [pgbench_bin(), "-n", "-c", str(clients), "-j", str(clients), "-T", str(int(seconds)), *extra,
                "-P", "100", "--log", "--log-prefix", str(self.tmp / f"pgb{clients}"),
                "-h", self.pg["host"], "-p", self.pg["port"], "-U", self.pg["user"], "-f", str(script), BENCH_DB]
        for old in self.tmp.glob(f"pgb{clients}.*"):
            old.unlink()
        env = dict(self.env, PGPASSWORD=self.pg["password"])
        out = subprocess.run(args, env=env, cwd=self.tmp, capture_output=True, text=True, timeout=seconds + 120)
        tps = next((float(line.split("=")[1].split()[0]) for line in out.stdout.splitlines()
                    if line.startswith("tps")), None)
        lat = []
        for f in self.tmp.glob(f"pgb{clients}.*"):
            lat += [int(line.split()[2]) / 1000 for line in f.read_text().splitlines() if line.strip()]
        lat.sort()
        p95 = round(lat[int(0.95 * (len(lat) - 1))], 2) if lat else None
        shown = [a for a in args if a not in ("--log", "--log-prefix") and not a.startswith(str(self.tmp / "pgb"))]
        return {"tps": tps, "p95_ms": p95, "failed": "aborted" in out.stderr or tps is None,
                "command": "PGPASSWORD=… " + shlex.join(shown).replace(
                    str(script), f"bench/floors/{script.name}" if script.parent == FLOORS else f"<run dir>/{script.name}"),
                "stderr": out.stderr[-500:] if tps is None else ""}

    def start_gunicorn(self, workers: int) -> None:
        self.stop_gunicorn()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.gunicorn = subprocess.Popen(
            [PY, "-m", "gunicorn", "o2o.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
             "--backlog", "2048", "--timeout", "120", "--log-level", "warning"],
            env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.tmp / "gunicorn.log", "a"),
            start_new_session=True)
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        # Let every worker boot and open its database connection.
        self.load("order_pickup", clients=workers, seconds=2, warmup=1)

    def stop_gunicorn(self) -> None:
        if self.gunicorn and self.gunicorn.poll() is None:
            os.killpg(self.gunicorn.pid, signal.SIGTERM)
            try:
                self.gunicorn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.gunicorn.pid, signal.SIGKILL)
        self.gunicorn = None

    def web_worker_hwm_mb(self) -> float:
        return round(max((hwm_kb(p) for p in children(self.gunicorn.pid)), default=0) / 1024, 1)

    def load_cmd(self, kind: str, **kw) -> list[str]:
        args = [PY, "-m", "bench.load", "--url", f"http://127.0.0.1:{self.port}", "--fixture",
                str(self.tmp / "fixture.json"), "--kind", kind]
        if kind in ("pos_sale", "pos_till_sale"):
            args += ["--sessions", str(self.tmp / "sessions.json")]
        if self.gunicorn is not None:
            args += ["--web-pid", str(self.gunicorn.pid)]
        for k, v in kw.items():
            args += [f"--{k}", str(v)]
        return args

    def load(self, kind: str, **kw) -> dict:
        return json.loads(self.run(self.load_cmd(kind, **kw), timeout=900).strip().splitlines()[-1])

    def shown(self, args: list[str]) -> str:
        if "--web-pid" in args:  # the process to read CPU from: not part of the command to repeat
            i = args.index("--web-pid")
            args = args[:i] + args[i + 2:]
        return shlex.join(["python", *args[1:]]).replace(str(self.tmp), "<run dir>")

    # --- the benchmarks ---------------------------------------------------------------------
    def setup(self) -> None:
        log(f"database {BENCH_DB} on {self.pg['host']}:{self.pg['port']}; broker {self.redis_url}")
        self.psql(f"DROP DATABASE IF EXISTS {BENCH_DB}", db="postgres")
        self.psql(f"CREATE DATABASE {BENCH_DB}", db="postgres")
        self.run([PY, "manage.py", "migrate", "--noinput", "-v0"])
        log("seeding")
        self.run([PY, "-m", "bench.seed", str(self.tmp)])
        self.fx = json.loads((self.tmp / "fixture.json").read_text())
        # Statistics as production has them (autovacuum's ANALYZE): without them the planner guesses,
        # and a query on a freshly seeded table can take a plan a thousand times slower.
        self.psql("ANALYZE")
        self.psql("CREATE TABLE bench_hot (id int PRIMARY KEY, on_hand int NOT NULL); "
                  "INSERT INTO bench_hot VALUES (1, 1000000000)")

    # The two ways a till sells the same sale (5 lines, member, points, cash + card): what each
    # request is, and what its load run reports beyond the common figures.
    POS_KINDS = {
        "pos_sale": ("the POS sale page: POST /pos/sale/scan/ ×5, /pos/sale/member/, /pos/sale/complete/ "
                     "(htmx, session + CSRF; each till signed in as its own store's clerk)",
                     ("scan_or_member_mean_ms",)),
        "pos_till_sale": ("the till-held basket: POST /pos/till/price/ (with the member), /pos/till/complete/ "
                          "(JSON, session + CSRF; the catalogue fetched once per till at start)",
                          ("price_p50_ms", "price_p95_ms")),
    }

    def pos_sale(self) -> None:
        """Whole sales on the sale page, against the app's captured complete and the frozen floor."""
        self._pos("pos_sale")

    def pos_till_sale(self) -> None:
        """The same sale with the basket held by the till: catalogue fetched once per till, then per
        sale one price call with the member and the complete JSON; against the same frozen floor."""
        self._pos("pos_till_sale")

    def _pos(self, kind: str) -> None:
        endpoint, own = self.POS_KINDS[kind]
        for clients in (1, 8, 32):
            log(f"{kind}, {clients} clients")
            args = self.load_cmd(kind, clients=clients, seconds=SECONDS, warmup=POS_WARMUP)
            ours = json.loads(self.run(args, timeout=900).strip().splitlines()[-1])
            row = {
                "name": kind, "endpoint": endpoint,
                "lines": 5, "member": True, "points_earned": True, "tenders": "cash + unionpay_card",
                "clients": clients, "gunicorn_workers": WORKERS, "sales_per_s": ours["per_s"],
                "p50_ms": ours["p50_ms"], "p95_ms": ours["p95_ms"], "p99_ms": ours["p99_ms"],
                "latency_of": "the complete request", "flow_p50_ms": ours["flow_p50_ms"],
                "flow_p95_ms": ours["flow_p95_ms"], "flow_p99_ms": ours["flow_p99_ms"],
                **{key: ours[key] for key in own},
                "cpu_ms_per_sale": ours.get("cpu_ms_per_sale"),
                "http_requests_per_s": ours["http_requests_per_s"],
                "errors": ours["errors"], "requests": ours["requests"], "seconds": SECONDS}
            if kind == "pos_sale":
                if clients == 32:
                    self.web_hwm = self.web_worker_hwm_mb()
                floor = self.pgbench(self.tmp / "pos_sale.sql", clients, SECONDS)
                row.update({"floor_tps": floor["tps"], "floor_p95_ms": floor["p95_ms"],
                            "floor_failed": floor["failed"], "floor_statements": self.fx["floor_statements"],
                            "ratio_to_floor": round(ours["per_s"] / floor["tps"], 3) if floor["tps"] else None,
                            "floor_command": floor["command"]})
            frozen = self.pgbench(FLOORS / "pos_sale.sql", clients, SECONDS, extra=self.frozen_floor_vars())
            row.update({
                "frozen_floor_tps": frozen["tps"], "frozen_floor_p95_ms": frozen["p95_ms"],
                "frozen_floor_failed": frozen["failed"], "frozen_floor_statements": FROZEN_POS_STATEMENTS,
                "ratio_to_frozen_floor": round(ours["per_s"] / frozen["tps"], 3) if frozen["tps"] else None,
                "frozen_floor_command": frozen["command"],
                "goal": "ratio >= 0.5; complete p95 <= 50 ms at 8 clients", "command": self.shown(args)})
            self.results.append(row)

    def counts(self) -> tuple[int, int]:
        """(outbox messages, online orders) in the bench database."""
        out = self.psql("SELECT (SELECT count(*) FROM o2o_outboxmessage), "
                        "(SELECT count(*) FROM orders_order WHERE channel <> 'pos')")
        outbox, online = (int(x) for x in out.split("|"))
        return outbox, online

    def orders(self) -> None:
        outbox0, online0 = self.counts()
        self._orders()
        outbox1, online1 = self.counts()
        # What one online order (placed, some paid) gives the relay to drain: compared with its drain rate.
        self.outbox_per_order = round((outbox1 - outbox0) / (online1 - online0), 2) if online1 > online0 else None

    def _orders(self) -> None:
        for kind in ("order_pickup", "order_ship", "order_pay"):
            for clients in ((8,) if kind == "order_pay" else (8, 32)):
                log(f"{kind}, {clients} clients")
                args = self.load_cmd(kind, clients=clients, seconds=SECONDS)
                ours = json.loads(self.run(args, timeout=900).strip().splitlines()[-1])
                self.results.append({
                    "name": kind, "endpoint": "POST /api/v1/orders/ (partner key, Idempotency-Key)" + (
                        ", then POST /api/v1/orders/{id}/payments/ (sandbox) and the sandbox's signed notification "
                        "(POST /api/v1/payments/notify/sandbox/): one unit is a placed and paid order"
                        if kind == "order_pay" else ""), "lines": 2, "clients": clients, "gunicorn_workers": WORKERS,
                    "orders_per_s": ours["per_s"], "p50_ms": ours["p50_ms"], "p95_ms": ours["p95_ms"],
                    "p99_ms": ours["p99_ms"], "errors": ours["errors"], "requests": ours["requests"],
                    "cpu_ms_per_order": ours.get("cpu_ms_per_order"),
                    "seconds": SECONDS, "command": self.shown(args)})

    def hot_sku(self) -> None:
        log("hot SKU: 500 concurrent attempts on 100 units")
        args = self.load_cmd("hot_sku", attempts=500)
        ours = json.loads(self.run(args, timeout=900).strip().splitlines()[-1])
        hot = self.fx["hot_sku"]
        lines = self.psql(f"SELECT COALESCE(SUM(qty), 0) FROM orders_orderline WHERE sku_id = {hot}")
        level = self.psql(f"SELECT on_hand, reserved FROM inventory_stocklevel WHERE sku_id = {hot} "
                          f"AND bucket = 'sellable'")
        on_hand, reserved = (int(x) for x in level.split("|"))
        floor = self.pgbench(self.tmp / "hot_update.sql", 32, 5)
        # The hand-written hot sale runs after the measured one: its stock is what the sale left (none),
        # so it measures the hot row's sale-or-refusal rate, refusals rolled back as the app's are.
        frozen = self.pgbench(FLOORS / "hot_sale.sql", 32, 5, extra=self.frozen_floor_vars())
        codes = {k: v for k, v in ours["results_by_code"].items() if k != "ok"}
        self.results.append({
            "name": "hot_sku", "units": self.fx["hot_units"], "attempts": 500, "mix": "half POS sale completes "
            "(/pos/sale/complete/, baskets filled before), half online pickup orders (POST /api/v1/orders/)", "sold": ours["sold"], "sold_pos": ours["sold_pos"],
            "sold_online": ours["sold_online"], "units_on_order_lines": int(lines), "on_hand_after": on_hand,
            "reserved_after": reserved, "errors_by_code": codes,
            "only_out_of_stock_errors": set(codes) <= {"insufficient_stock"},
            "exactly_100_sold": ours["sold"] == 100 == int(lines),
            "duration_s": ours["duration_s"], "attempts_per_s": ours["attempts_per_s"],
            "baskets_prepared_s": ours["baskets_prepared_s"], "pos_p50_ms": ours["pos_p50_ms"],
            "pos_max_ms": ours["pos_max_ms"], "online_p50_ms": ours["online_p50_ms"],
            "online_max_ms": ours["online_max_ms"],
            "floor_conditional_update_tps": floor["tps"], "floor_clients": 32,
            "ratio_to_floor": round(ours["attempts_per_s"] / floor["tps"], 4) if floor["tps"] else None,
            "frozen_hot_sale_tps": frozen["tps"], "frozen_hot_sale_failed": frozen["failed"],
            "ratio_to_frozen_hot_sale": round(ours["attempts_per_s"] / frozen["tps"], 4) if frozen["tps"] else None,
            "frozen_floor_command": frozen["command"],
            "command": self.shown(args), "floor_command": floor["command"]})
        self.soldout()

    def soldout(self) -> None:
        """The hot SKU is sold out now and its gate set: how fast are further attempts refused?"""
        log("sold-out SKU: refusals per second, POS completes and API orders")
        args = self.load_cmd("soldout", clients=8, seconds=SECONDS, warmup=1)
        ours = json.loads(self.run(args, timeout=900).strip().splitlines()[-1])
        self.results.append({
            "name": "soldout_rejections", "sku": "the hot SKU, sold out by the hot-SKU step",
            "mix": f"{ours['pos_clients']} POS tills completing a basket of it (/pos/sale/complete/) and "
                   f"{ours['api_clients']} API clients ordering it (POST /api/v1/orders/), in a loop",
            "rejections_per_s": ours["rejections_per_s"], "pos_rejections_per_s": ours["pos_rejections_per_s"],
            "api_rejections_per_s": ours["api_rejections_per_s"], "pos_p50_ms": ours["pos_p50_ms"],
            "pos_p95_ms": ours["pos_p95_ms"], "api_p50_ms": ours["api_p50_ms"], "api_p95_ms": ours["api_p95_ms"],
            "other_answers": ours["other_answers"], "only_rejections": not ours["other_answers"],
            "seconds": SECONDS, "goal": "rejections_per_s >= 1000", "command": self.shown(args)})

    def scale_web(self) -> None:
        for workers in (1, 2, 4):
            log(f"gunicorn with {workers} worker(s), pos_sale at 16 clients")
            self.start_gunicorn(workers)
            args = self.load_cmd("pos_sale", clients=16, seconds=SECONDS, warmup=POS_WARMUP)
            ours = json.loads(self.run(args, timeout=900).strip().splitlines()[-1])
            self.results.append({"name": "scale_gunicorn_workers", "gunicorn_workers": workers, "clients": 16,
                                 "sales_per_s": ours["per_s"], "p50_ms": ours["p50_ms"], "p95_ms": ours["p95_ms"],
                                 "flow_p95_ms": ours["flow_p95_ms"],
                                 "p99_ms": ours["p99_ms"], "errors": ours["errors"], "seconds": SECONDS,
                                 "command": f"gunicorn o2o.wsgi -w {workers} (bench settings); " + self.shown(args)})

    def pgbouncer(self) -> None:
        """The POS sale and API orders at 8 clients again, with the web tier on PgBouncer in
        transaction pooling mode (o2o/pgbouncer.py) instead of direct connections."""
        from o2o.pgbouncer import PgBouncer

        bouncer = PgBouncer(self.db_url, pool_size=WORKERS).start()
        direct = self.env
        self.env = dict(direct, DATABASE_URL=bouncer.url, DB_POOLER="pgbouncer")
        try:
            self.start_gunicorn(WORKERS)
            via = (f"gunicorn on PgBouncer (transaction pooling, pool size {WORKERS}; "
                   "DATABASE_URL=<pgbouncer>, DB_POOLER=pgbouncer); ")
            for kind in ("pos_sale", "order_pickup", "order_ship"):
                log(f"{kind} through PgBouncer, 8 clients")
                extra = {"warmup": POS_WARMUP} if kind == "pos_sale" else {}
                args = self.load_cmd(kind, clients=8, seconds=SECONDS, **extra)
                ours = json.loads(self.run(args, timeout=900).strip().splitlines()[-1])
                self.results.append({
                    "name": "pgbouncer", "kind": kind, "clients": 8, "gunicorn_workers": WORKERS,
                    "pool_size": WORKERS, "per_s": ours["per_s"], "unit": "sales/s" if kind == "pos_sale" else
                    "orders/s", "p50_ms": ours["p50_ms"], "p95_ms": ours["p95_ms"], "p99_ms": ours["p99_ms"],
                    "errors": ours["errors"], "requests": ours["requests"], "seconds": SECONDS,
                    "command": via + self.shown(args)})
        finally:
            self.stop_gunicorn()
            self.env = direct
            bouncer.close()

    def queries(self) -> None:
        log("queries per request")
        out = json.loads(self.run([PY, "-m", "bench.queries", str(self.tmp / "fixture.json")]).strip()
                         .splitlines()[-1])
        self.results.append({"name": "queries_per_request", **out,
                             "command": "python -m bench.queries <run dir>/fixture.json (bench settings)"})

    def drain(self) -> None:
        for workers in (1, 2):
            log(f"celery drain, {workers} worker(s)")
            args = [PY, "-m", "bench.drain", "--workers", str(workers), "--messages", "10000"]
            out = json.loads(self.run(args, timeout=600).strip().splitlines()[-1])
            self.results.append({"name": "celery_outbox_drain", **out,
                                 "what": "10k outbox dispatch messages to a no-op consumer (webhook deliveries "
                                 "not benchmarked yet)", "command": self.shown(args)})

    def memory(self) -> None:
        celery = [r for r in self.results if r["name"] == "celery_outbox_drain"]
        self.results.append({"name": "peak_rss", "web_worker_mb": getattr(self, "web_hwm", None),
                             "web_under": "pos_sale at 32 clients, 4 gunicorn workers",
                             "celery_worker_mb": max((r["worker_peak_rss_mb"] for r in celery), default=None),
                             "celery_under": "draining 10k outbox messages", "unit": "MB (VmHWM)",
                             "command": "make bench (read from /proc/<pid>/status VmHWM)"})

    def settlement(self) -> None:
        cmd = ROOT / "orders" / "settlement" / "management" / "commands" / "settlement_bench.py"
        found = list(ROOT.glob("*/management/commands/settlement_bench.py")) + ([cmd] if cmd.exists() else [])
        if not found:
            self.results.append({"name": "settlement", "status": "not measured yet",
                                 "why": "the settlement_bench command has not landed"})
            self.results.append({"name": "dashboard_1m_orders", "status": "not measured yet",
                                 "why": "dashboard_bench generates its orders with settlement_bench's generator"})
            return
        sizes = os.environ.get("BENCH_SETTLEMENT_ORDERS", "10000 100000").split()
        args = [PY, "manage.py", "settlement_bench", "--orders", *sizes]
        log(f"settlement_bench: {' '.join(sizes)} orders")
        try:
            self.run(args, timeout=3600)
            data = json.loads((RESULTS / "settlement.json").read_text())
            self.results.append({"name": "settlement", "source": "bench/results/settlement.json", "data": data,
                                 "command": self.shown(args)})
        except Exception as exc:  # reported, not fatal: the other figures stand
            self.results.append({"name": "settlement", "status": "failed", "error": str(exc)[-800:]})
        self.dashboard()

    def dashboard(self) -> None:
        orders = int(os.environ.get("BENCH_DASHBOARD_ORDERS", "1000000"))
        if orders == 0:  # generating 1M orders takes a long while: reuse the last dashboard run's figures
            path = RESULTS / "dashboard.json"
            if path.exists():
                data = json.loads(path.read_text())
                self.results.append({"name": "dashboard_1m_orders", "source": "bench/results/dashboard.json",
                                     "data": data, "command": data.get("command", "python manage.py dashboard_bench"),
                                     "note": f"not re-run by this bench run (BENCH_DASHBOARD_ORDERS=0): the "
                                     f"figures of the dashboard run measured at {data.get('measured_at', '?')}"})
            return
        args = [PY, "manage.py", "dashboard_bench", "--orders", str(orders)]
        log(f"dashboard_bench: {orders} orders (generation takes several minutes)")
        try:
            self.run(args, timeout=3 * 3600)
            data = json.loads((RESULTS / "dashboard.json").read_text())
            self.results.append({"name": "dashboard_1m_orders", "source": "bench/results/dashboard.json",
                                 "data": data, "command": self.shown(args)})
        except Exception as exc:  # reported, not fatal: the other figures stand
            self.results.append({"name": "dashboard_1m_orders", "status": "failed", "error": str(exc)[-800:]})

    # --- output -----------------------------------------------------------------------------
    def machine(self) -> dict:
        def sh(cmd: str) -> str:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()

        return {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "nproc": os.cpu_count(),
                "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
                "memory": sh("free -h | awk '/Mem:/ {print $2}'"), "loadavg_start": self.load_start,
                "loadavg_end": sh("cut -d' ' -f1-3 /proc/loadavg"), "python": platform.python_version(),
                "postgres": self.psql("SHOW server_version"), "pgbench": sh(f"{pgbench_bin()} --version"),
                "gunicorn": sh(f"{PY} -m gunicorn --version"), "kernel": platform.release()}

    def write(self) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        doc = {"machine": self.machine(), "command": "make bench", "seconds_per_point": SECONDS,
               "outbox_messages_per_order": getattr(self, "outbox_per_order", None), "benchmarks": self.results}
        # Hand-written context for the report (profile findings, query counts before a change).
        notes = RESULTS / "notes.json"
        if notes.exists():
            doc.update(json.loads(notes.read_text()))
        (RESULTS / "latest.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        from bench.report import render

        (RESULTS / "README.md").write_text(render(doc))
        log(f"wrote {RESULTS / 'latest.json'} and README.md")

    def main(self) -> int:
        self.load_start = open("/proc/loadavg").read().split()[:3]
        started = time.monotonic()
        self.setup()
        steps = [lambda: self.start_gunicorn(WORKERS), self.pos_sale, self.pos_till_sale, self.orders, self.hot_sku,
                 self.scale_web, self.stop_gunicorn, self.pgbouncer, self.queries, self.drain, self.memory,
                 self.settlement]
        try:
            for step in steps:
                try:
                    step()
                except Exception as exc:  # one failed benchmark is reported; the others still run
                    log(f"FAILED: {exc}")
                    self.results.append({"name": "failed_step", "step": getattr(step, "__name__", "gunicorn"),
                                         "error": str(exc)[-1500:]})
        finally:
            self.stop_gunicorn()
        self.results.append({"name": "run", "wall_s": round(time.monotonic() - started, 1)})
        self.write()
        return 0


if __name__ == "__main__":
    sys.exit(Bench().main())
