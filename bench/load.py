"""Load generator: an asyncio httpx client in its own process, loopback only.

    python -m bench.load --url http://127.0.0.1:PORT --fixture F --kind pos_sale --clients 8 --seconds 12

Prints one JSON object: completed requests, throughput, latency percentiles (ms) and
error counts by code.  Every loop is bounded by time and by count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import httpx

MAX_REQUESTS_PER_CLIENT = 100_000
CARD = Decimal("50.00")


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))], 2)


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


def request_for(kind: str, fx: dict, client: int) -> tuple[str, dict]:
    if kind == "pos_sale":
        return "/bench/pos-sale/", pos_body(fx, client)
    if kind in ("order_pickup", "order_ship"):
        return "/bench/order-place/", order_body(fx, client, "pickup" if kind == "order_pickup" else "ship_warehouse")
    raise SystemExit(f"unknown kind {kind}")


def _code(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("code") or resp.status_code)
    except ValueError:
        return str(resp.status_code)


async def closed_loop(url: str, kind: str, fx: dict, clients: int, seconds: float, warmup: float) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        async def one_client(c: int) -> None:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= stop_at:
                    return
                path, body = request_for(kind, fx, c)
                t0 = time.monotonic()
                try:
                    resp = await http.post(path, json=body)
                    code = None if resp.status_code in (200, 201) else _code(resp)
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
            "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None, "errors": errors}


async def hot_sku(url: str, fx: dict, attempts: int) -> dict:
    """``attempts`` requests at once for the hot SKU, half POS sales, half online pickup orders."""
    hot = fx["hot_sku"]
    price = fx["hot_price"]
    results: dict[str, int] = {}
    sold = {"pos": 0, "online": 0}
    limits = httpx.Limits(max_connections=attempts, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        async def attempt(i: int) -> None:
            if i % 2 == 0:
                path, body = "/bench/pos-sale/", pos_body(fx, i, [(hot, price)])
                body["tenders"] = [["cash", price]]
            else:
                path, body = "/bench/order-place/", order_body(fx, i, "pickup", [hot])
            try:
                resp = await http.post(path, json=body)
                code = "ok" if resp.status_code in (200, 201) else _code(resp)
            except httpx.HTTPError as exc:
                code = type(exc).__name__
            results[code] = results.get(code, 0) + 1
            if code == "ok":
                sold["pos" if i % 2 == 0 else "online"] += 1

        t0 = time.monotonic()
        await asyncio.gather(*(attempt(i) for i in range(attempts)))
        duration = time.monotonic() - t0
    return {"attempts": attempts, "duration_s": round(duration, 3), "attempts_per_s": round(attempts / duration, 1),
            "sold": sold["pos"] + sold["online"], "sold_pos": sold["pos"], "sold_online": sold["online"],
            "results_by_code": results}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--fixture", required=True)
    parser.add_argument("--kind", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--attempts", type=int, default=500)
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("load is generated against loopback only")
    with open(args.fixture) as fh:
        fx = json.load(fh)
    if args.kind == "hot_sku":
        out = asyncio.run(hot_sku(args.url, fx, args.attempts))
    else:
        out = asyncio.run(closed_loop(args.url, args.kind, fx, args.clients, args.seconds, args.warmup))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
