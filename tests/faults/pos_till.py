"""A till over real HTTP against a gunicorn of the fault tests, and a hand on the database that
holds a row lock, so a request can be stopped at a known point of a POS complete."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

import httpx
import psycopg2
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test import Client

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from inventory.models import StockLevel
from payments import shifts
from pos.views import SEEN_KEY, SEEN_REFRESH_SECONDS
from stores.models import Role
from stores.tests.factories import StaffFactory, StoreFactory
from tests.procs import database_url

WECHAT = "134567890123456789"  # a WeChat Pay payment code the sandbox charges


@dataclass
class Counter:
    store: object
    sku: object
    clerk: object
    session_key: str


def counter_open() -> Counter:
    """A store with five shirts, a clerk logged in (a session in the database) and an open shift."""
    store = StoreFactory(code="FLT", name="故障演练店")
    shirt = SkuFactory(code="FLT-TS", name="纯棉T恤", list_price=Decimal("99.00"))
    stock.stock_receive(warehouse=store.warehouse, lines=[(shirt.id, 5)])
    clerk = StaffFactory(role=Role.CLERK, store=store).user
    shifts.shift_open(store=store, actor=clerk, opening_float=Decimal("200.00"))
    client = Client()
    client.force_login(clerk)
    return Counter(store=store, sku=shirt, clerk=clerk, session_key=client.cookies[settings.SESSION_COOKIE_NAME].value)


class Till:
    """The POS sale page as the browser drives it (htmx posts with the page's CSRF token)."""

    def __init__(self, base_url: str, counter: Counter) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60, follow_redirects=False,
                                 cookies={settings.SESSION_COOKIE_NAME: counter.session_key})
        self.csrf = ""

    def through(self, base_url: str) -> Till:
        """The same till (session, CSRF cookie and token) reaching the server at another address."""
        other = Till.__new__(Till)
        other.http = httpx.Client(base_url=base_url, timeout=60, follow_redirects=False, cookies=self.http.cookies)
        other.csrf = self.csrf
        return other

    def sale_open(self) -> str:
        """Load the sale page; returns the sale's client UUID."""
        page = self.http.get("/pos/sale/")
        assert page.status_code == 200, page.text[-500:]
        self.csrf = re.search(r'"X-CSRFToken": "([^"]+)"', page.text).group(1)
        return re.search(r'name="client_uuid" value="([^"]+)"', page.text).group(1)

    def post(self, path: str, data: dict) -> httpx.Response:
        return self.http.post(path, data=data, headers={"HX-Request": "true", "X-CSRFToken": self.csrf})

    def scan(self, code: str) -> None:
        resp = self.post("/pos/sale/scan/", {"code": code})
        assert resp.status_code == 200, resp.text[-500:]

    def complete(self, client_uuid: str, **tenders: str) -> httpx.Response:
        return self.post("/pos/sale/complete/", {"client_uuid": client_uuid, **tenders})

    def complete_in_background(self, client_uuid: str, **tenders: str) -> dict:
        """Submit without waiting: the answer (or the transport error) lands in the returned dict."""
        out: dict = {}

        def run():
            try:
                out["response"] = self.complete(client_uuid, **tenders)
            except httpx.HTTPError as exc:
                out["error"] = exc

        out["thread"] = threading.Thread(target=run, daemon=True)
        out["thread"].start()
        return out

    def close(self) -> None:
        self.http.close()


def receipt_number(resp: httpx.Response) -> str:
    """The order number the till is sent to (the receipt page), from an htmx redirect."""
    assert resp.status_code == 200 and "HX-Redirect" in resp.headers, (resp.status_code, resp.text[-500:])
    match = re.fullmatch(r"/pos/receipts/([^/]+)/", resp.headers["HX-Redirect"])
    assert match, resp.headers["HX-Redirect"]
    return match.group(1)


class RowLock:
    """A transaction on its own connection that holds ``FOR UPDATE`` on rows, until released."""

    def __init__(self) -> None:
        self.conn = psycopg2.connect(database_url(connection.settings_dict))

    def take(self, sql: str, params: list) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql + " FOR UPDATE", params)
            assert cur.rowcount == 1, "nothing to lock"

    def release(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


def stock_row_lock(counter: Counter) -> RowLock:
    """The shirt's stock level, which a sale locks inside its transaction."""
    lock = RowLock()
    lock.take(f"SELECT id FROM {StockLevel._meta.db_table} WHERE warehouse_id = %s AND sku_id = %s "
              "AND bucket = 'sellable'", [counter.store.warehouse_id, counter.sku.pk])
    return lock


def session_row_lock(counter: Counter) -> RowLock:
    """The till's session row, which the server saves after the sale's transaction committed when
    the request records the clerk's activity.  The sale itself leaves the session alone and the
    activity is recorded at most once a minute, so the stamp is aged here: the complete then
    writes the session after its commit, and waits on this lock there."""
    session = SessionStore(session_key=counter.session_key)
    session[SEEN_KEY] = int(time.time()) - 2 * SEEN_REFRESH_SECONDS
    session.save()
    lock = RowLock()
    lock.take("SELECT session_key FROM django_session WHERE session_key = %s", [counter.session_key])
    return lock


def waiting_on_a_lock(seconds: float = 30) -> bool:
    """True once another backend of this database waits on a row lock (the request is parked)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
            if cur.fetchone()[0]:
                return True
        time.sleep(0.1)
    return False
