"""Load generator: an asyncio httpx client in its own process, loopback only.

    python -m bench.load --url http://127.0.0.1:PORT --fixture F --kind pos_sale --clients 8 --seconds 12

Kinds:

* ``pos_sale``: each client is a till.  It signs in at ``/pos/login/`` as the clerk of its own
  store (whose register has an open shift), then sells in a loop exactly as the POS sale page
  does: five barcode scans (``/pos/sale/scan/``), the member's phone (``/pos/sale/member/``)
  and the complete request (``/pos/sale/complete/``, the sale's client UUID, cash + card),
  all as htmx requests with the session cookie and the CSRF header.  Reported: sales/s, the
  latency of the complete request and the time of the whole sale (7 requests).
* ``pos_till_sale``: the same tills and sales, with the basket held by the till: each till fetches
  its store's catalogue snapshot once at start (``/pos/offline/catalogue/``) and resolves its five
  barcodes from it; per sale one price call with the member (``POST /pos/till/price/``) and the
  complete JSON (``POST /pos/till/complete/``, cash + card as ``pos_sale``).  Reported as
  ``pos_sale``: the latency of the complete request and of the whole sale (2 requests).
* ``order_pickup`` / ``order_ship``: ``POST /api/v1/orders/`` with the seeded partner key
  (``Authorization: Bearer``) and a fresh ``Idempotency-Key``, two lines.
* ``hot_sku``: ``--attempts`` at once on the hot SKU: half complete a POS sale of it (the
  baskets are filled first, on seeded clerk sessions of store 0), half place an online pickup
  order of it at store 0 through the API.
* ``soldout``: run after ``hot_sku``, when the hot SKU is sold out and the sold-out gate is set:
  ``--clients`` POS tills (the hot-SKU sessions whose basket still holds it) complete it again
  and again, as many API clients place pickup orders of it; every answer must be a refusal
  (insufficient_stock).  Reported: refusals per second, POS and API apart, and their latency.

Prints one JSON object: completed requests, throughput, latency percentiles (ms) and
error counts by code.  Every loop is bounded by time and by count.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import statistics
import string
import sys
import time
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import httpx

MAX_REQUESTS_PER_CLIENT = 100_000
CARD = Decimal("50.00")
API_ORDERS = "/api/v1/orders/"
CLIENT_UUID = re.compile(r'name="client_uuid" value="([0-9a-f-]{36})"')
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SESSION_COOKIE, CSRF_COOKIE = "sessionid", "csrftoken"
HX = {"HX-Request": "true"}
ERROR_TEXT = re.compile(r'class="error"[^>]*>([^<]+)<')
SAMPLES: dict[str, str] = {}  # the first answer of each kind of failed complete, for the report


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))], 2)


def complete_form(client_uuid: str, total: Decimal) -> dict:
    """The sale page's payment form: 50.00 (or all, if less) on the UnionPay card with its slip
    reference, the rest in cash, handed over rounded up to the yuan (so there is change)."""
    card = min(CARD, total)
    cash = total - card
    return {"client_uuid": client_uuid, "card_amount": str(card), "card_reference": f"slip-{client_uuid}",
            "cash_tendered": str(Decimal(math.ceil(cash))) if cash > 0 else "", "wallet_amount": "", "points": ""}


def api_order_body(fx: dict, client: int, fulfillment: str, sku_ids: list[int] | None = None) -> dict:
    """An online order of the partner API: two lines of the client's SKU block (or ``sku_ids``)."""
    blk = (client % fx["blocks"]) * fx["lines"]
    skus = sku_ids or [sku for sku, _ in fx["skus"][blk:blk + 2]]
    body = {"external_id": uuid.uuid4().hex, "fulfillment": fulfillment, "customer_name": "王芳",
            "customer_phone": "+8613800138000", "lines": [{"sku": s, "qty": 1} for s in skus]}
    if fulfillment == "pickup":
        body["store"] = fx["store_ids"][client % fx["stores"]] if sku_ids is None else fx["store_id"]
    else:
        body["ship_city"] = fx["city_id"]
        body["ship_address"] = "文三路 1 号"
    return body


def api_headers(fx: dict) -> dict:
    return {"Authorization": f"Bearer {fx['partner_key']}", "Idempotency-Key": str(uuid.uuid4())}


# JSON bodies of the bench-only endpoints bench/views.py (used by tests/faults only).
def pos_body(fx: dict, client: int, sku_ids: list[tuple[int, str]] | None = None) -> dict:
    lines = fx["lines"]
    blk = (client % fx["blocks"]) * lines
    picked = sku_ids or fx["skus"][blk:blk + lines]
    total = sum(Decimal(price) for _, price in picked)
    card = min(CARD, total)
    tenders = [["cash", str(total - card)]] + ([["unionpay_card", str(card)]] if card else [])
    return {"client_uuid": str(uuid.uuid4()), "store_id": fx["store_id"],
            "member_id": fx["members"][client % len(fx["members"])],
            "lines": [[sku, 1] for sku, _ in picked], "tenders": [t for t in tenders if Decimal(t[1]) > 0]}


def order_body(fx: dict, client: int, fulfillment: str, sku_ids: list[int] | None = None) -> dict:
    lines = fx["lines"]
    blk = (client % fx["blocks"]) * lines
    skus = sku_ids or [sku for sku, _ in fx["skus"][blk:blk + 2]]
    body = {"external_id": uuid.uuid4().hex, "fulfillment": fulfillment, "lines": [[s, 1] for s in skus]}
    if fulfillment == "pickup":
        body["store_id"] = fx["store_id"]
    else:
        body["city_id"] = fx["city_id"]
    return body


def _code(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("code") or resp.status_code)
    except ValueError:
        return str(resp.status_code)


class Till:
    """One POS client: its own cookie jar (session + CSRF) and connection, signed in as a clerk."""

    def __init__(self, url: str, fx: dict, index: int) -> None:
        self.fx, self.index = fx, index
        self.host = urlsplit(url).hostname
        self.http = httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1),
                                      follow_redirects=False)
        k = index % fx["stores"]
        blk = (index % fx["blocks"]) * fx["lines"]
        self.barcodes = fx["barcodes"][blk:blk + fx["lines"]]
        self.total = sum((Decimal(p) for _, p in fx["skus"][blk:blk + fx["lines"]]), Decimal("0"))
        self.phone = fx["member_phones"][index % len(fx["member_phones"])]
        self.clerk = fx["clerks"][k]

    async def close(self) -> None:
        await self.http.aclose()

    def use(self, cookies: dict) -> None:
        # The server's own Set-Cookie (host-only, path /) must replace these, not sit beside them.
        for name, value in cookies.items():
            self.http.cookies.set(name, value, domain=self.host, path="/")

    def cookies(self) -> dict:
        return {name: self.http.cookies.get(name) for name in (SESSION_COOKIE, CSRF_COOKIE)}

    async def login(self) -> None:
        page = await self.http.get("/pos/login/")
        token = CSRF_INPUT.search(page.text).group(1)
        resp = await self.http.post("/pos/login/", data={"username": self.clerk, "password": self.fx["clerk_password"],
                                                         "csrfmiddlewaretoken": token})
        if resp.status_code != 302:
            raise SystemExit(f"login of {self.clerk} failed: {resp.status_code}")

    def seeded(self, session_key: str) -> None:
        """Use a session the seed signed in; the CSRF cookie is a fresh secret, sent back as the header."""
        secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        self.use({SESSION_COOKIE: session_key, CSRF_COOKIE: secret})

    async def catalogue(self) -> None:
        """The store's catalogue snapshot, kept by the till: its barcodes resolve to SKU ids here."""
        resp = await self.http.get("/pos/offline/catalogue/", headers={"Accept": "application/json"})
        if resp.status_code != 200:
            raise SystemExit(f"catalogue of till {self.index}: {resp.status_code}")
        by_barcode = {item["barcode"]: item["sku_id"] for item in resp.json()["items"]}
        self.sku_ids = [by_barcode[code] for code in self.barcodes]

    async def post_json(self, path: str, body: dict) -> httpx.Response:
        return await self.http.post(path, content=json.dumps(body), headers={
            "Content-Type": "application/json", "Accept": "application/json",
            "X-CSRFToken": self.http.cookies.get(CSRF_COOKIE)})

    async def till_sale(self) -> tuple[float, str | None]:
        """One sale from the till-held basket: price it with the member, then complete it.
        Returns (when the complete was sent, error code or None)."""
        basket = {"lines": [{"sku": sku, "qty": 1} for sku in self.sku_ids], "member": self.phone}
        priced = await self.post_json("/pos/till/price/", basket)
        t1 = time.monotonic()
        if priced.status_code != 200:
            SAMPLES.setdefault(f"price_{priced.status_code}", priced.text[:200])
            return t1, f"price_{_code(priced)}"
        total = Decimal(priced.json()["total"])
        form = complete_form(str(uuid.uuid4()), total)
        body = {**basket, "client_uuid": form["client_uuid"],
                "payment": {k: form[k] for k in ("cash_tendered", "card_amount", "card_reference")}}
        resp = await self.post_json("/pos/till/complete/", body)
        if resp.status_code == 201:
            return t1, None
        SAMPLES.setdefault(f"complete_{resp.status_code}", resp.text[:200])
        return t1, f"complete_{_code(resp)}"

    async def post(self, path: str, data: dict) -> httpx.Response:
        return await self.http.post(path, data=data, headers={**HX, "X-CSRFToken": self.http.cookies.get(CSRF_COOKIE)})

    async def fill(self, barcodes: list[str] | None = None) -> tuple[str | None, str | None]:
        """Scan and set the member; returns (client UUID, None) or (None, error code)."""
        page = None
        for code in barcodes or self.barcodes:
            page = await self.post("/pos/sale/scan/", {"code": code})
            if page.status_code != 200 or "HX-Redirect" in page.headers:
                return None, f"scan_{page.status_code}"
        page = await self.post("/pos/sale/member/", {"phone": self.phone})
        found = CLIENT_UUID.search(page.text) if page.status_code == 200 else None
        if found is None:
            return None, f"member_{page.status_code}"
        return found.group(1), None

    async def complete(self, client_uuid: str, total: Decimal) -> str | None:
        resp = await self.post("/pos/sale/complete/", complete_form(client_uuid, total))
        if resp.status_code == 200 and resp.headers.get("HX-Redirect", "").startswith("/pos/receipts/"):
            return None
        if resp.status_code == 422 and self.fx.get("out_of_stock_text") and self.fx["out_of_stock_text"] in resp.text:
            return "insufficient_stock"
        found = ERROR_TEXT.search(resp.text)
        SAMPLES.setdefault(f"complete_{resp.status_code}", found.group(1).strip()[:200] if found else resp.text[:200])
        return f"complete_{resp.status_code}"


async def _tills(url: str, fx: dict, clients: int, sessions_file: str | None) -> list[Till]:
    """Sign every till in (two at a time: a login hashes a password), reusing the sessions of an
    earlier run of the same fixture when ``sessions_file`` has them."""
    saved = {}
    if sessions_file and os.path.exists(sessions_file):
        with open(sessions_file) as fh:
            saved = json.load(fh)
    tills = [Till(url, fx, c) for c in range(clients)]
    gate = asyncio.Semaphore(2)

    async def ready(t: Till) -> None:
        if str(t.index) in saved:
            t.use(saved[str(t.index)])
            return
        async with gate:
            await t.login()

    await asyncio.gather(*(ready(t) for t in tills))
    if sessions_file:
        saved.update({str(t.index): t.cookies() for t in tills})
        with open(sessions_file, "w") as fh:
            json.dump(saved, fh)
    return tills


WEB_PID: int | None = None  # the gunicorn master (--web-pid): CPU of the web tier in the window


def cpu_window(measure_from: float, stop_at: float) -> asyncio.Task:
    """CPU ms spent in the measured window by the web workers, the PostgreSQL backends of the bench
    database (DATABASE_URL) and this load generator (read from /proc at the window's two ends)."""
    from bench.cpu import backend_pids, proc_cpu_ms, tree_pids

    database = urlsplit(os.environ.get("DATABASE_URL", "")).path.lstrip("/")

    def snap() -> dict[str, dict[int, float]]:
        web = tree_pids(WEB_PID) if WEB_PID else []
        return {"web": {p: proc_cpu_ms(p) for p in web},
                "db": {p: proc_cpu_ms(p) for p in backend_pids(database)},
                "load_generator": {0: time.process_time() * 1000}}

    async def run() -> dict[str, float]:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        before = snap()
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        after = snap()
        return {g: sum(v - before[g].get(p, 0.0) for p, v in after[g].items()) for g in after}

    return asyncio.ensure_future(run())


async def cpu_per(task: asyncio.Task, units: int) -> dict | None:
    ms = await task
    if not units:
        return None
    return {g: round(v / units, 2) for g, v in ms.items()}


async def pos_loop(url: str, fx: dict, clients: int, seconds: float, warmup: float,
                   sessions_file: str | None, *, till_held: bool = False) -> dict:
    """``pos_sale`` (the sale page: scans, member, complete) or, with ``till_held``, ``pos_till_sale``
    (the basket held by the till: one price call, then the complete JSON)."""
    tills = await _tills(url, fx, clients, sessions_file)
    if till_held:
        await asyncio.gather(*(t.catalogue() for t in tills))
    complete_ms: list[float] = []
    flow_ms: list[float] = []
    before_ms: list[float] = []  # what precedes the complete: the scans and member, or the price call
    errors: dict[str, int] = {}
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    cpu = cpu_window(measure_from, stop_at)

    async def page_sale(t: Till) -> tuple[float, str | None]:
        client_uuid, code = await t.fill()
        t1 = time.monotonic()
        if code is None:
            return t1, await t.complete(client_uuid, t.total)
        await t.post("/pos/sale/new/", {})
        return t1, code

    async def one_till(t: Till) -> None:
        if not till_held:
            await t.post("/pos/sale/new/", {})  # a basket left over from an earlier run
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= stop_at:
                return
            t0 = time.monotonic()
            try:
                t1, code = await (t.till_sale() if till_held else page_sale(t))
            except httpx.HTTPError as exc:
                code, t1 = type(exc).__name__, time.monotonic()
            t2 = time.monotonic()
            # A sale counts when it ends inside the window (a sale is several requests long, so
            # requiring its start inside too would bias the window towards short sales).
            if measure_from <= t2 <= stop_at:
                if code is None:
                    complete_ms.append((t2 - t1) * 1000)
                    flow_ms.append((t2 - t0) * 1000)
                    before_ms.append((t1 - t0) * 1000)
                else:
                    errors[code] = errors.get(code, 0) + 1

    try:
        await asyncio.gather(*(one_till(t) for t in tills))
    finally:
        await asyncio.gather(*(t.close() for t in tills))
    requests_per_sale = 2 if till_held else len(tills[0].barcodes) + 2
    out = {"requests": len(complete_ms), "sales": len(complete_ms), "seconds": seconds,
           "per_s": round(len(complete_ms) / seconds, 1),
           "p50_ms": pct(complete_ms, 50), "p95_ms": pct(complete_ms, 95), "p99_ms": pct(complete_ms, 99),
           "mean_ms": round(statistics.fmean(complete_ms), 2) if complete_ms else None,
           "flow_p50_ms": pct(flow_ms, 50), "flow_p95_ms": pct(flow_ms, 95), "flow_p99_ms": pct(flow_ms, 99),
           "http_requests_per_s": round(len(complete_ms) * requests_per_sale / seconds, 1),
           "cpu_ms_per_sale": await cpu_per(cpu, len(complete_ms)),
           "errors": errors, "error_samples": SAMPLES}
    if till_held:
        out.update(price_p50_ms=pct(before_ms, 50), price_p95_ms=pct(before_ms, 95))
    else:  # per request before the complete: five scans and the member
        out["scan_or_member_mean_ms"] = (round(statistics.fmean(before_ms) / (requests_per_sale - 1), 2)
                                         if before_ms else None)
    return out


SANDBOX_SECRET = os.environ.get("SANDBOX_PAY_SECRET", "o2o-sandbox-development-secret").encode()


async def pay_sandbox(http: httpx.AsyncClient, fx: dict, order_id: int) -> str | None:
    """Pay an order the way a partner and the provider do: start a sandbox payment through the API,
    then the sandbox's signed notification.  None when the notification was accepted."""
    resp = await http.post(f"{API_ORDERS}{order_id}/payments/", json={"tender": "sandbox"}, headers=api_headers(fx))
    if resp.status_code != 201:
        return "pay_start_" + _code(resp)
    payment = resp.json()
    fen = int((Decimal(str(payment["amount"])) * 100).to_integral_value())
    body = json.dumps({"out_trade_no": payment["number"], "transaction_id": f"SBX{payment['number']}",
                       "trade_state": "SUCCESS", "amount_fen": fen}, separators=(",", ":")).encode()
    ts, nonce = str(int(time.time())), secrets.token_hex(16)
    signature = hmac.new(SANDBOX_SECRET, f"{ts}\n{nonce}\n".encode() + body + b"\n", hashlib.sha256).hexdigest()
    resp = await http.post("/api/v1/payments/notify/sandbox/", content=body, headers={
        "Content-Type": "application/json", "X-Sandbox-Timestamp": ts, "X-Sandbox-Nonce": nonce,
        "X-Sandbox-Signature": signature})
    return None if resp.status_code < 300 else "notify_" + _code(resp)


async def api_loop(url: str, kind: str, fx: dict, clients: int, seconds: float, warmup: float) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    fulfillment = "pickup" if kind == "order_pickup" else "ship_warehouse"  # order_pay: shipped, then paid
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    cpu = cpu_window(measure_from, stop_at)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        async def one_client(c: int) -> None:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= stop_at:
                    return
                body = api_order_body(fx, c, fulfillment)
                t0 = time.monotonic()
                try:
                    resp = await http.post(API_ORDERS, json=body, headers=api_headers(fx))
                    code = None if resp.status_code == 201 else _code(resp)
                    if code is None and kind == "order_pay":
                        code = await pay_sandbox(http, fx, resp.json()["id"])
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                t1 = time.monotonic()
                if t0 >= measure_from and t1 <= stop_at:
                    if code is None:
                        latencies.append((t1 - t0) * 1000)
                    else:
                        errors[code] = errors.get(code, 0) + 1

        await asyncio.gather(*(one_client(c) for c in range(clients)))
    return {"requests": len(latencies), "seconds": seconds, "per_s": round(len(latencies) / seconds, 1),
            "p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95), "p99_ms": pct(latencies, 99),
            "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
            "cpu_ms_per_order": await cpu_per(cpu, len(latencies)), "errors": errors}


async def hot_sku(url: str, fx: dict, attempts: int) -> dict:
    """``attempts`` requests at once for the hot SKU: half POS completes, half online pickup orders."""
    hot = fx["hot_sku"]
    pos_count = (attempts + 1) // 2
    sessions = fx["hot_sessions"][:pos_count]
    if len(sessions) < pos_count:
        raise SystemExit(f"the seed prepared {len(sessions)} hot-SKU POS sessions, {pos_count} needed")
    tills = [Till(url, fx, i) for i in range(pos_count)]
    gate = asyncio.Semaphore(8)

    async def prepare(t: Till, key: str) -> str:
        t.seeded(key)
        async with gate:
            await t.post("/pos/sale/new/", {})  # an empty basket, whatever the session held before
            client_uuid, code = await t.fill([fx["hot_barcode"]])
        if code is not None:
            raise SystemExit(f"filling a hot-SKU basket failed: {code}")
        return client_uuid

    t_prep = time.monotonic()
    uuids = await asyncio.gather(*(prepare(t, k) for t, k in zip(tills, sessions)))
    prep_s = time.monotonic() - t_prep
    results: dict[str, int] = {}
    sold = {"pos": 0, "online": 0}
    latencies = {"pos": [], "online": []}
    limits = httpx.Limits(max_connections=attempts - pos_count, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        async def attempt(i: int) -> None:
            kind = "pos" if i % 2 == 0 else "online"
            t0 = time.monotonic()
            try:
                if kind == "pos":
                    code = await tills[i // 2].complete(uuids[i // 2], Decimal(fx["hot_price"])) or "ok"
                else:
                    resp = await http.post(API_ORDERS, json=api_order_body(fx, i, "pickup", [hot]),
                                           headers=api_headers(fx))
                    code = "ok" if resp.status_code == 201 else _code(resp)
            except httpx.HTTPError as exc:
                code = type(exc).__name__
            latencies[kind].append((time.monotonic() - t0) * 1000)
            results[code] = results.get(code, 0) + 1
            if code == "ok":
                sold[kind] += 1

        t0 = time.monotonic()
        await asyncio.gather(*(attempt(i) for i in range(attempts)))
        duration = time.monotonic() - t0
    await asyncio.gather(*(t.close() for t in tills))
    return {"attempts": attempts, "duration_s": round(duration, 3), "attempts_per_s": round(attempts / duration, 1),
            "sold": sold["pos"] + sold["online"], "sold_pos": sold["pos"], "sold_online": sold["online"],
            "results_by_code": results, "error_samples": SAMPLES, "baskets_prepared_s": round(prep_s, 2),
            "pos_p50_ms": pct(latencies["pos"], 50), "pos_max_ms": pct(latencies["pos"], 100),
            "online_p50_ms": pct(latencies["online"], 50), "online_max_ms": pct(latencies["online"], 100)}


async def soldout(url: str, fx: dict, clients: int, seconds: float, warmup: float) -> dict:
    """Refusals per second of a sold-out SKU: POS completes of baskets holding it, API orders of it."""
    gate = asyncio.Semaphore(8)
    candidates = [Till(url, fx, i) for i in range(len(fx["hot_sessions"]))]

    async def ready(t: Till, key: str) -> str | None:
        """The till's sale UUID if its basket still holds the hot SKU and completing it is refused."""
        t.seeded(key)
        async with gate:
            page = await t.http.get("/pos/sale/")
            found = CLIENT_UUID.search(page.text) if page.status_code == 200 else None
            if found is None or fx["hot_barcode"] not in page.text and str(fx["hot_sku"]) not in page.text:
                return None
            code = await t.complete(found.group(1), Decimal(fx["hot_price"]))
        return found.group(1) if code == "insufficient_stock" else None

    uuids = await asyncio.gather(*(ready(t, k) for t, k in zip(candidates, fx["hot_sessions"])))
    tills = [(t, u) for t, u in zip(candidates, uuids) if u is not None][:clients]
    for t in candidates:
        if all(t is not kept for kept, _ in tills):
            await t.close()
    if not tills:
        raise SystemExit("no hot-SKU basket left to refuse: run the hot_sku kind first")
    refused = {"pos": [], "online": []}
    other: dict[str, int] = {}
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        async def pos_client(t: Till, client_uuid: str) -> None:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= stop_at:
                    return
                t0 = time.monotonic()
                try:
                    code = await t.complete(client_uuid, Decimal(fx["hot_price"])) or "sold"
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                record("pos", code, t0, time.monotonic())

        async def api_client(c: int) -> None:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= stop_at:
                    return
                t0 = time.monotonic()
                try:
                    resp = await http.post(API_ORDERS, json=api_order_body(fx, c, "pickup", [fx["hot_sku"]]),
                                           headers=api_headers(fx))
                    code = "sold" if resp.status_code == 201 else _code(resp)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                record("online", code, t0, time.monotonic())

        def record(kind: str, code: str, t0: float, t1: float) -> None:
            if t0 >= measure_from and t1 <= stop_at:
                if code == "insufficient_stock":
                    refused[kind].append((t1 - t0) * 1000)
                else:
                    other[f"{kind}:{code}"] = other.get(f"{kind}:{code}", 0) + 1

        await asyncio.gather(*(pos_client(t, u) for t, u in tills), *(api_client(c) for c in range(clients)))
    await asyncio.gather(*(t.close() for t, _ in tills))
    total = len(refused["pos"]) + len(refused["online"])
    return {"seconds": seconds, "pos_clients": len(tills), "api_clients": clients,
            "rejections": total, "rejections_per_s": round(total / seconds, 1),
            "pos_rejections_per_s": round(len(refused["pos"]) / seconds, 1),
            "api_rejections_per_s": round(len(refused["online"]) / seconds, 1),
            "pos_p50_ms": pct(refused["pos"], 50), "pos_p95_ms": pct(refused["pos"], 95),
            "api_p50_ms": pct(refused["online"], 50), "api_p95_ms": pct(refused["online"], 95),
            "other_answers": other, "error_samples": SAMPLES}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--fixture", required=True)
    parser.add_argument("--kind", required=True, choices=["pos_sale", "pos_till_sale", "order_pickup", "order_ship",
                                                         "order_pay", "hot_sku", "soldout"])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--attempts", type=int, default=500)
    parser.add_argument("--sessions", default=None, help="File keeping the tills' signed-in sessions between runs.")
    parser.add_argument("--web-pid", type=int, default=None, help="The gunicorn master, for the web tier's CPU.")
    args = parser.parse_args(argv)
    global WEB_PID
    WEB_PID = args.web_pid
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("load is generated against loopback only")
    with open(args.fixture) as fh:
        fx = json.load(fh)
    if args.kind == "hot_sku":
        out = asyncio.run(hot_sku(args.url, fx, args.attempts))
    elif args.kind == "soldout":
        out = asyncio.run(soldout(args.url, fx, args.clients, args.seconds, args.warmup))
    elif args.kind in ("pos_sale", "pos_till_sale"):
        if args.clients > fx["stores"]:
            raise SystemExit(f"{args.clients} tills need {args.clients} stores; the seed made {fx['stores']}")
        out = asyncio.run(pos_loop(args.url, fx, args.clients, args.seconds, args.warmup, args.sessions,
                                   till_held=args.kind == "pos_till_sale"))
    else:
        out = asyncio.run(api_loop(args.url, args.kind, fx, args.clients, args.seconds, args.warmup))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
