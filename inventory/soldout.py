"""The sold-out gate: a short-lived mark in Redis per (warehouse, SKU) with nothing left to sell.

A hot SKU that has sold out draws a crowd of attempts that can only fail.  Each would otherwise open a
transaction, lock the level, find it short and roll back.  When a sale or a reservation is refused
for want of stock and the level's availability is 0, ``_apply`` marks the pair here (the refusal was
read under the level's row lock); callers ask ``stock_precheck`` before they open their transaction
and refuse at once with the same ``insufficient_stock``.

The gate only ever rejects early; whether a sale goes through is still decided by the conditional
UPDATE in the transaction.  It heals itself: a mark lives ``STOCK_SOLDOUT_TTL_SECONDS`` (10 s), and
any change that makes units available again (receipt, return restock, released reservation,
adjustment, transfer in) clears it, under the level's lock and once more after its commit.  Redis
being down or slow only turns the gate off: every error of this module is swallowed and logged.
``STOCK_SOLDOUT_GATE = False`` turns it off by configuration.
"""

from __future__ import annotations

import logging
import threading
from typing import Iterable

import redis
from django.conf import settings
from django.db import transaction

from inventory.exceptions import InsufficientStock
from inventory.selectors import warehouse_shortfall

log = logging.getLogger(__name__)

_client_lock = threading.Lock()
_client: redis.Redis | None = None


def enabled() -> bool:
    return bool(getattr(settings, "STOCK_SOLDOUT_GATE", True))


def ttl_seconds() -> int:
    return int(getattr(settings, "STOCK_SOLDOUT_TTL_SECONDS", 10))


def key_prefix() -> str:
    return str(getattr(settings, "STOCK_SOLDOUT_PREFIX", "o2o:soldout"))


def _redis() -> redis.Redis:
    """A client with short timeouts: the gate is an optimisation and must never hold a request up."""
    global _client
    with _client_lock:
        if _client is None:
            _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.25, socket_connect_timeout=0.25)
        return _client


def _key(warehouse_id: int, sku_id: int) -> str:
    return f"{key_prefix()}:{warehouse_id}:{sku_id}"


def soldout_mark(marks: dict[tuple[int, int], str]) -> None:
    """Mark (warehouse id, sku id) pairs sold out; the value is the SKU code the rejection names."""
    if not marks or not enabled():
        return
    try:
        with _redis().pipeline(transaction=False) as pipe:
            for (warehouse_id, sku_id), code in marks.items():
                pipe.set(_key(warehouse_id, sku_id), code, ex=ttl_seconds())
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("sold-out gate not marked, Redis unavailable: %s", exc)


def soldout_clear(pairs: Iterable[tuple[int, int]]) -> None:
    keys = [_key(w, s) for w, s in pairs]
    if not keys or not enabled():
        return
    try:
        _redis().delete(*keys)
    except redis.RedisError as exc:
        log.warning("sold-out gate not cleared, Redis unavailable: %s", exc)


def soldout_clear_now_and_on_commit(pairs: Iterable[tuple[int, int]]) -> None:
    """Clear at once (the caller holds the levels' locks) and again after the commit: a mark set
    between the two by a refusal that read the old figures never outlives the new stock."""
    pairs = sorted(set(pairs))
    if not pairs or not enabled():
        return
    soldout_clear(pairs)
    transaction.on_commit(lambda: soldout_clear(pairs))


def soldout_marked(*, warehouse_id: int, sku_ids: Iterable[int]) -> dict[int, str]:
    """{sku id: SKU code} of these SKUs marked sold out in this warehouse; {} when Redis is unavailable."""
    marked = soldout_marked_pairs([(warehouse_id, s) for s in sku_ids])
    return {s: code for (_w, s), code in marked.items()}


def soldout_marked_pairs(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """{(warehouse id, sku id): SKU code} of the pairs marked sold out, in one round trip; {} when
    Redis is unavailable."""
    pairs = list(pairs)
    if not pairs or not enabled():
        return {}
    try:
        values = _redis().mget([_key(w, s) for w, s in pairs])
    except redis.RedisError as exc:
        log.warning("sold-out gate skipped, Redis unavailable: %s", exc)
        return {}
    return {pair: v.decode() for pair, v in zip(pairs, values) if v is not None}


def stock_precheck(*, warehouse_id: int, demand: dict[int, int]) -> None:
    """Refuse a sale or a hold this warehouse plainly cannot serve, before any transaction is opened.

    First the sold-out gate (no database), then one lock-free read of availability.  Raises
    ``InsufficientStock`` with the same code and params shape as the sale itself would; passing says
    nothing about success (the sale's conditional update decides).
    """
    demand = {s: q for s, q in demand.items()
              if type(s) is int and type(q) is int and q > 0}  # bad input is the sale's to refuse
    short = soldout_marked(warehouse_id=warehouse_id, sku_ids=demand) or warehouse_shortfall(
        warehouse_id=warehouse_id, demand=demand)
    if short:
        raise InsufficientStock(params={"skus": sorted(short.values()), "warehouse_ids": [warehouse_id]})
