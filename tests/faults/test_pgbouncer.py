"""The web tier on PgBouncer in transaction pooling mode (o2o/pgbouncer.py, DB_POOLER=pgbouncer),
over HTTP against a real gunicorn with more workers than PgBouncer has server connections.

* Concurrent POS sales of a hot SKU (more attempts than units) and partner API orders: exactly
  the stock is sold, every refusal is a clean ``insufficient_stock``, every answered sale and order
  exists once with all of its effects, the ledgers audit clean, and the web workers never held
  more server connections than the pool has.
* PgBouncer is restarted in the middle of the traffic: requests that meet it get a 503
  ``database_unavailable`` (never a 500), the clients' retries with the same keys apply once, and
  the same gunicorn workers serve again afterwards without a restart.

The pgbouncer binary comes from the OS packages (installed when missing and possible).
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from django.db import connection

from bench.load import pos_body
from inventory.models import StockLevel
from o2o.models import IdempotencyRecord
from o2o.pgbouncer import PgBouncer
from orders.models import Order
from tests.faults.conftest import assert_ledgers_clean
from tests.faults.procs import Gunicorn, process_env
from tests.faults.test_postgres_restart import (
    Client,
    _acks,
    _api_maker,
    _assert_online_whole,
    _assert_sales_whole,
    _pos_maker,
    _wait_acks,
)
from tests.procs import database_url

pytestmark = pytest.mark.faults

POOL_SIZE = 2  # server connections PgBouncer keeps for the web tier
WEB_WORKERS = 3  # more than the pool: transactions of different workers share server connections
HOT_CLIENTS = 6
HOT_EXTRA_ATTEMPTS = 30  # attempts beyond the hot SKU's units, each refused
ACKS_BEFORE = 15
ACKS_AFTER = 15
DOWN_SECONDS = 2


@pytest.fixture
def bouncer(world):
    server = PgBouncer(database_url(connection.settings_dict), pool_size=POOL_SIZE).start()
    yield server
    server.close()


@pytest.fixture
def app_server(bouncer, private_broker, tmp_path):
    env = process_env(db=connection.settings_dict, broker_url=private_broker.url, DATABASE_URL=bouncer.url,
                      DB_POOLER="pgbouncer", DB_CONN_MAX_AGE="60", DB_CONNECT_TIMEOUT="2",
                      O2O_FAULTS_IDEMPOTENCY_LOCK="3")
    server = Gunicorn(env, workers=WEB_WORKERS, log=tmp_path / "gunicorn.log")
    server.start()
    yield server
    server.stop()


def _web_server_connections() -> int:
    """Backends of this database other than this test's own: PgBouncer's server connections."""
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
        return cur.fetchone()[0]


class HotTill(threading.Thread):
    """Sells one unit of the hot SKU per request until the shared attempt budget is spent."""

    def __init__(self, base_url: str, world: dict, index: int, budget: list[int], lock: threading.Lock):
        super().__init__(daemon=True)
        self.base_url, self.world, self.index, self.budget, self.lock = base_url, world, index, budget, lock
        self.sold: dict[str, str] = {}  # client UUID -> order number
        self.refused: list[str] = []
        self.unexpected: list[tuple[int, str]] = []

    def run(self) -> None:
        hot = [(self.world["hot_sku"], self.world["hot_price"])]
        with httpx.Client(base_url=self.base_url, timeout=60) as http:
            n = 0
            while True:
                with self.lock:
                    if self.budget[0] == 0:
                        return
                    self.budget[0] -= 1
                body = pos_body(self.world, self.index * 1000 + n, sku_ids=hot)
                n += 1
                resp = http.post("/bench/pos-sale/", json=body)
                if resp.status_code == 200:
                    self.sold[body["client_uuid"]] = resp.json()["number"]
                elif resp.status_code in (409, 422):
                    self.refused.append(resp.json().get("code"))
                else:
                    self.unexpected.append((resp.status_code, resp.text[:300]))


def test_concurrent_sales_through_pgbouncer_are_exact(world, bouncer, app_server):
    units = world["hot_units"]
    budget, lock = [units + HOT_EXTRA_ATTEMPTS], threading.Lock()
    hot = [HotTill(app_server.url, world, c, budget, lock) for c in range(HOT_CLIENTS)]
    stop = threading.Event()
    api = [Client(app_server.url, _api_maker(world, c), stop) for c in range(2)]
    # Given tills racing for the hot SKU and partner orders alongside, all through PgBouncer
    for t in [*hot, *api]:
        t.start()
    seen = []
    while any(t.is_alive() for t in hot):
        seen.append(_web_server_connections())
        time.sleep(0.05)
    stop.set()
    for t in [*hot, *api]:
        t.join(120)

    # Then exactly the units were sold, and every other attempt was a clean refusal
    sold = {k: v for t in hot for k, v in t.sold.items()}
    assert [u for t in hot for u in t.unexpected] == []
    assert len(sold) == units
    assert [code for t in hot for code in t.refused] == ["insufficient_stock"] * HOT_EXTRA_ATTEMPTS
    level = StockLevel.objects.get(pk=world["hot_level"])
    assert level.on_hand == 0
    # and the web workers shared PgBouncer's few server connections
    assert seen and max(seen) <= POOL_SIZE, seen
    # and every answered sale and order exists once, whole
    online = {k: v for c in api for k, v in c.acked.items()}
    assert [u for c in api for u in c.unexpected] == [] and online, "no partner order went through"
    got_sales = dict(Order.objects.filter(client_uuid__isnull=False).values_list("client_uuid", "number"))
    assert {str(k): v for k, v in got_sales.items()} == sold
    assert dict(Order.objects.filter(channel="web").values_list("external_id", "number")) == online
    _assert_online_whole(list(online.values()))
    assert_ledgers_clean()


def test_pgbouncer_restart_under_load_loses_and_repeats_nothing(world, bouncer, app_server):
    workers = app_server.worker_pids()
    stop = threading.Event()
    pos = [Client(app_server.url, _pos_maker(world, c), stop) for c in range(3)]
    api = [Client(app_server.url, _api_maker(world, c), stop) for c in range(2)]
    clients = pos + api
    # Given sales and online orders flowing through PgBouncer
    for c in clients:
        c.start()
    assert _wait_acks(clients, ACKS_BEFORE, 60) >= ACKS_BEFORE
    # When PgBouncer stops under them (open transactions cut) and comes back on the same port
    bouncer.stop()
    with httpx.Client(base_url=app_server.url, timeout=30) as http:
        probe = pos_body(world, 999)
        down = http.post("/bench/pos-sale/", json=probe)
        time.sleep(DOWN_SECONDS)
        acked_while_down = _acks(clients)
        bouncer.start()
        after = _wait_acks(clients, acked_while_down + ACKS_AFTER, 90)
        stop.set()
        for c in clients:
            c.join(120)
        retried = http.post("/bench/pos-sale/", json=probe)

    # Then the request that met the outage got the stable 503, not a 500
    assert down.status_code == 503 and down.json()["code"] == "database_unavailable", down.text
    assert down.headers.get("Retry-After")
    refused = [r for c in clients for r in c.refused]
    assert {code for code, _ in refused} <= {"database_unavailable"}
    assert [u for c in clients for u in c.unexpected] == []
    assert not any(c.is_alive() for c in clients) and not [c.open_key for c in clients if c.open_key]
    # and the same workers served again once PgBouncer was back
    assert after >= acked_while_down + ACKS_AFTER
    assert retried.status_code == 200, retried.text
    assert app_server.worker_pids() == workers
    # and every acknowledged sale and order exists exactly once, whole, and nothing else
    sales = {k: v for c in pos for k, v in c.acked.items()}
    sales[probe["client_uuid"]] = retried.json()["number"]
    online = {k: v for c in api for k, v in c.acked.items()}
    got_sales = dict(Order.objects.filter(client_uuid__isnull=False).values_list("client_uuid", "number"))
    assert {str(k): v for k, v in got_sales.items()} == sales
    assert dict(Order.objects.filter(channel="web").values_list("external_id", "number")) == online
    assert Order.objects.count() == len(sales) + len(online)
    _assert_sales_whole(world, list(sales.values()))
    _assert_online_whole(list(online.values()))
    assert not IdempotencyRecord.objects.exclude(status=IdempotencyRecord.Status.COMPLETED).exists()
    assert_ledgers_clean()
