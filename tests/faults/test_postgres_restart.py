"""PostgreSQL restarts while POS sales and partner API orders go on, over HTTP against a real
gunicorn and a private PostgreSQL cluster that this test stops and starts (never the shared one).

Requests that meet the outage get a 503 with the code ``database_unavailable`` and write
nothing; the clients retry with the same sale UUID / Idempotency-Key until they get an answer;
afterwards every sale exists exactly once with all of its effects, nothing else was written,
the ledgers audit clean, and the same gunicorn workers serve again without a restart (Django
drops a broken connection at the end of the request that met it, which got a 503; the next
request reconnects)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from decimal import Decimal

import httpx
import pytest
from django.db import connection

from bench.load import pos_body
from inventory.models import Reservation, StockMove
from members.models import PointsEntry
from o2o.models import IdempotencyRecord
from orders.models import Order
from payments.models import Payment
from tests.faults.conftest import assert_ledgers_clean
from tests.faults.pg_private import private_copy_of_the_test_database
from tests.faults.procs import Gunicorn, process_env
from tests.faults.redis_private import PrivateRedis

pytestmark = pytest.mark.faults

POS_CLIENTS = 3
API_CLIENTS = 2
ACKS_BEFORE = 15  # answered requests before the restart
ACKS_AFTER = 15  # and after it
DOWN_SECONDS = 3
GIVE_UP_SECONDS = 90  # one logical request, all its retries included


@pytest.fixture
def private_pg(world):
    """The seeded world copied into a private cluster, and this test's connection moved onto it."""
    with private_copy_of_the_test_database() as server:
        yield server


@pytest.fixture
def app_server(private_pg, tmp_path):
    broker = PrivateRedis(tmp_path)
    broker.start()
    # Persistent connections (the production default) are what a restart breaks; a request
    # whose idempotency key the outage left "in progress" may take it over after 3 s.
    server = Gunicorn(process_env(db=private_pg.settings, broker_url=broker.url, DB_CONN_MAX_AGE="60",
                                  DB_CONNECT_TIMEOUT="2", O2O_FAULTS_IDEMPOTENCY_LOCK="3"),
                      workers=2, log=tmp_path / "gunicorn.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        broker.stop()


class Client(threading.Thread):
    """Sends logical requests one after another, each retried with the same key until answered."""

    def __init__(self, base_url: str, make, stop: threading.Event):
        super().__init__(daemon=True)
        self.base_url, self.make, self.stop = base_url, make, stop
        self.acked: dict[str, str] = {}  # key -> order number
        self.refused: list[tuple[str, str | None]] = []  # 503s: (code, Retry-After)
        self.in_progress = 0
        self.unexpected: list[tuple[int | str, str]] = []
        self.open_key: str | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            n = 0
            while not self.stop.is_set():
                key, path, body, headers = self.make(n)
                n += 1
                self.open_key = key
                if not self.send(http, key, path, body, headers):
                    return
                self.open_key = None

    def send(self, http: httpx.Client, key: str, path: str, body: dict, headers: dict) -> bool:
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while time.monotonic() < deadline:
            try:
                resp = http.post(path, json=body, headers=headers)
            except httpx.TransportError as exc:
                self.unexpected.append(("transport", repr(exc)))
                return False
            code = _code(resp)
            if resp.status_code in (200, 201):
                self.acked[key] = resp.json()["number"]
                return True
            if resp.status_code == 503:
                self.refused.append((code, resp.headers.get("Retry-After")))
                time.sleep(0.2)
            elif resp.status_code == 409 and code == "idempotency_in_progress":
                self.in_progress += 1
                time.sleep(0.3)
            else:
                self.unexpected.append((resp.status_code, resp.text[:300]))
                return False
        self.unexpected.append(("gave up", key))
        return False


def _code(resp: httpx.Response) -> str | None:
    try:
        return resp.json().get("code")
    except ValueError:
        return None


def _pos_maker(world, client: int):
    def make(n: int):
        body = pos_body(world, client * 1000 + n)
        return body["client_uuid"], "/bench/pos-sale/", body, {}
    return make


def _api_maker(world, client: int):
    auth = {"Authorization": f"Bearer {world['partner_key']}"}
    skus = [sku for sku, _price in world["skus"]]

    def make(n: int):
        external_id = f"pg-{client}-{n}-{uuid.uuid4().hex[:8]}"
        picked = [skus[(client * 7 + n) % len(skus)], skus[(client * 7 + n + 1) % len(skus)]]
        body = {"external_id": external_id, "fulfillment": "pickup", "store": world["store_id"],
                "lines": [{"sku": s, "qty": 1} for s in picked]}
        return external_id, "/api/v1/orders/", body, {**auth, "Idempotency-Key": uuid.uuid4().hex}
    return make


def _acks(clients) -> int:
    return sum(len(c.acked) for c in clients)


def _wait_acks(clients, at_least: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _acks(clients) < at_least:
        if not any(c.is_alive() for c in clients):
            break
        time.sleep(0.05)
    return _acks(clients)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_under_load_loses_and_repeats_nothing(world, private_pg, app_server, mode):
    workers = app_server.worker_pids()
    stop = threading.Event()
    pos = [Client(app_server.url, _pos_maker(world, c), stop) for c in range(POS_CLIENTS)]
    api = [Client(app_server.url, _api_maker(world, c), stop) for c in range(API_CLIENTS)]
    clients = pos + api
    # Given sales and online orders flowing
    for c in clients:
        c.start()
    assert _wait_acks(clients, ACKS_BEFORE, 60) >= ACKS_BEFORE
    # When PostgreSQL stops under them ("fast": sessions are terminated; "immediate": a crash)
    private_pg.stop(mode)
    with httpx.Client(base_url=app_server.url, timeout=30) as http:
        probe = pos_body(world, 999)
        down = http.post("/bench/pos-sale/", json=probe)
        health = http.get("/healthz")
        time.sleep(DOWN_SECONDS)
        acked_while_down = _acks(clients)
        # and comes back
        private_pg.start()
        after = _wait_acks(clients, acked_while_down + ACKS_AFTER, 90)
        stop.set()
        for c in clients:
            c.join(GIVE_UP_SECONDS + 30)
        # (the probe sale, retried with its UUID once the database is back)
        retried = http.post("/bench/pos-sale/", json=probe)

    # Then during the outage the app answered 503 with the stable code, not a 500
    assert down.status_code == 503 and down.json()["code"] == "database_unavailable", down.text
    assert down.headers.get("Retry-After")
    assert health.status_code == 503 and health.json()["code"] == "database_unavailable"
    refused = [r for c in clients for r in c.refused]
    assert refused, "no request met the outage: the fault was not injected under load"
    assert {code for code, _ in refused} == {"database_unavailable"}
    assert all(retry_after for _, retry_after in refused)
    # and every request ended with an answer, nothing else
    assert [u for c in clients for u in c.unexpected] == []
    assert not any(c.is_alive() for c in clients) and not [c.open_key for c in clients if c.open_key]
    # and it served again without being restarted: the same gunicorn workers
    assert after >= acked_while_down + ACKS_AFTER
    assert retried.status_code in (200, 201), retried.text
    assert app_server.worker_pids() == workers

    connection.close()
    # Every acknowledged sale exists exactly once, and nothing else was written
    sales = {k: v for c in pos for k, v in c.acked.items()}
    sales[probe["client_uuid"]] = retried.json()["number"]
    online = {k: v for c in api for k, v in c.acked.items()}
    got_sales = dict(Order.objects.filter(client_uuid__isnull=False).values_list("client_uuid", "number"))
    assert {str(k): v for k, v in got_sales.items()} == sales
    got_online = dict(Order.objects.filter(channel="web").values_list("external_id", "number"))
    assert got_online == online
    assert Order.objects.count() == len(sales) + len(online)
    # with all of its effects, once: no partial writes
    _assert_sales_whole(world, list(sales.values()))
    _assert_online_whole(list(online.values()))
    assert not IdempotencyRecord.objects.exclude(status=IdempotencyRecord.Status.COMPLETED).exists()
    assert_ledgers_clean()


def _assert_sales_whole(world, numbers: list[str]) -> None:
    orders = {o.number: o for o in Order.objects.filter(number__in=numbers).prefetch_related("lines")}
    payments: dict[str, list[Decimal]] = {}
    for ref, amount in Payment.objects.filter(reference__in=numbers).values_list("reference", "amount"):
        payments.setdefault(ref, []).append(amount)
    moves: dict[str, Counter] = {}
    for ref, sku, qty in StockMove.objects.filter(reference__in=numbers).values_list("reference", "sku_id", "qty"):
        moves.setdefault(ref, Counter())[sku] += qty
    earned = Counter(PointsEntry.objects.filter(order_number__in=numbers, kind="earn")
                     .values_list("order_number", flat=True))
    for number in numbers:
        order = orders[number]
        lines = Counter()
        for line in order.lines.all():
            lines[line.sku_id] -= line.qty
        assert len(order.lines.all()) == world["lines"], number
        assert moves.get(number) == lines, number
        assert len(payments[number]) == 2 and sum(payments[number]) == order.total, number  # cash + card
        assert earned[number] == 1, number


def _assert_online_whole(numbers: list[str]) -> None:
    for order in Order.objects.filter(number__in=numbers).prefetch_related("lines"):
        held = Counter()
        active = Reservation.objects.filter(reference=order.number, status=Reservation.Status.ACTIVE)
        for sku, qty in active.values_list("sku_id", "qty"):
            held[sku] += qty
        assert held == Counter({line.sku_id: line.qty for line in order.lines.all()}), order.number
        assert len(order.lines.all()) == 2, order.number
