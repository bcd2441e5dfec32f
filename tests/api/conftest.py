"""Fixtures of the API tests: keys, clients, a stocked city, isolated Redis keys."""

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from rest_framework.test import APIClient

from o2o.apiauth import SCOPES, partner_key_create
from o2o.ratelimit import redis_client
from payments.models import Payment
from payments.providers.sandbox import sandbox_notification
from stores.models import Role
from stores.tests.factories import StaffFactory


@pytest.fixture(autouse=True)
def isolated_redis_keys(settings):
    """Each test counts its requests and marks its SKUs under keys of its own."""
    run = uuid.uuid4().hex[:12]
    settings.API_RATE_LIMIT_PREFIX = f"o2o-test:{run}:ratelimit"
    settings.STOCK_SYNC_PENDING_KEY = f"o2o-test:{run}:stocksync"
    yield run
    client = redis_client()
    keys = list(client.scan_iter(match=f"o2o-test:{run}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def make_key(db):
    def make(*, channel="mini_program", scopes=SCOPES, partner="", stores=(), name="partner",
             rate_limit=None):
        return partner_key_create(name=name, channel=channel, scopes=scopes, partner=partner, stores=stores,
                                  rate_limit_per_minute=rate_limit)

    return make


def bearer(raw: str, **headers) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}", **headers)
    return client


@pytest.fixture
def partner(make_key):
    """A mini-program backend with every scope: (key, client)."""
    key, raw = make_key(name="mini program")
    return key, bearer(raw)


@pytest.fixture
def other_partner(make_key):
    """Another partner system: the web shop."""
    key, raw = make_key(channel="web", name="web shop")
    return key, bearer(raw)


def staff_client(store, role=Role.CLERK) -> tuple:
    user = StaffFactory(role=role, store=store).user
    client = APIClient()
    client.force_login(user)
    return user, client


@pytest.fixture
def clerk_a(store_a):
    return staff_client(store_a)


@pytest.fixture
def clerk_b(store_b):
    return staff_client(store_b)


def idem() -> dict:
    return {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex}


def place(client, *, store=None, lines, fulfillment="pickup", **extra):
    body = {"fulfillment": fulfillment, "lines": lines, **extra}
    if store is not None:
        body["store"] = store.pk
    return client.post("/api/v1/orders/", body, format="json", **idem())


def meta(headers: dict) -> dict:
    """HTTP headers as test-client keyword arguments."""
    out = {}
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            out["content_type"] = value
        else:
            out[f"HTTP_{key}"] = value
    return out


def notify(client, payment, **kwargs):
    """POST the sandbox's signed notification for ``payment`` to the API."""
    headers, body = sandbox_notification(payment, **kwargs)
    return client.post("/api/v1/payments/notify/sandbox/", data=body, **meta(headers))


def pay(client, order_id: int):
    """Start a sandbox payment for the order through the API and send its notification."""
    started = client.post(f"/api/v1/orders/{order_id}/payments/", {"tender": "sandbox"}, format="json",
                          **idem())
    assert started.status_code == 201, started.content
    return notify(APIClient(), Payment.objects.get(pk=started.json()["id"]))


class FakeMarketplace:
    """A marketplace on loopback: serves pages of orders by cursor and records stock pushes."""

    def __init__(self, pages: dict | None = None, token: str = "mk-token", fail_pushes: int = 0):
        self.pages = pages or {}
        self.token = token
        self.fail_pushes = fail_pushes
        self.pushes: list[list[dict]] = []
        self.seen_auth: list[str] = []
        market = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, status, data):
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                market.seen_auth.append(self.headers.get("Authorization", ""))
                url = urlsplit(self.path)
                cursor = parse_qs(url.query).get("cursor", [None])[0]
                if url.path != "/orders" or cursor not in market.pages:
                    return self._json(404, {"error": "no such page"})
                self._json(200, market.pages[cursor])

            def do_POST(self):
                market.seen_auth.append(self.headers.get("Authorization", ""))
                data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if market.fail_pushes > 0:
                    market.fail_pushes -= 1
                    return self._json(503, {"error": "busy"})
                market.pushes.append(data["items"])
                self._json(200, {"ok": True})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def settings_entry(self) -> dict:
        return {"adapter": "integrations.marketplaces.HttpJsonMarketplace", "base_url": self.base_url,
                "token": self.token,
                "timeout": 5}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
