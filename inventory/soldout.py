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
_mark_script = None


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


def _generation_key(warehouse_id: int, sku_id: int) -> str:
    return f"{key_prefix()}:gen:{warehouse_id}:{sku_id}"


# How long a pair's generation is kept: far longer than any read it guards.
GENERATION_TTL_SECONDS = 3600

# Mark a pair sold out only if no stock came back since the caller read its generation (ARGV[2]).
_MARK_IF_UNCHANGED = """
if (redis.call('GET', KEYS[2]) or '0') == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
  return 1
end
return 0
"""


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
    """Remove the marks and move the pairs' generation on, so a refusal read before cannot mark again."""
    pairs = list(pairs)
    if not pairs or not enabled():
        return
    try:
        with _redis().pipeline(transaction=False) as pipe:
            pipe.delete(*[_key(w, s) for w, s in pairs])
            for w, s in pairs:
                pipe.incr(_generation_key(w, s))
                pipe.expire(_generation_key(w, s), GENERATION_TTL_SECONDS)
            pipe.execute()
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
    return _gate_read(list(pairs))[0]


def _gate_read(pairs: list[tuple[int, int]]) -> tuple[dict[tuple[int, int], str], dict[tuple[int, int], bytes]]:
    """The marks of these pairs and their generations, in one round trip ({}, {} without Redis)."""
    if not pairs or not enabled():
        return {}, {}
    try:
        values = _redis().mget([k for w, s in pairs for k in (_key(w, s), _generation_key(w, s))])
    except redis.RedisError as exc:
        log.warning("sold-out gate skipped, Redis unavailable: %s", exc)
        return {}, {}
    marks = {pair: values[2 * i].decode() for i, pair in enumerate(pairs) if values[2 * i] is not None}
    generations = {pair: values[2 * i + 1] or b"0" for i, pair in enumerate(pairs)}
    return marks, generations


def _mark_if_unchanged(marks: dict[tuple[int, int], str], generations: dict[tuple[int, int], bytes]) -> None:
    """Mark pairs found sold out by a lock-free read, unless stock came back (a clear moved the
    generation on) since the generation was read before that read."""
    global _mark_script
    try:
        client = _redis()
        if _mark_script is None:
            _mark_script = client.register_script(_MARK_IF_UNCHANGED)
        for (w, s), code in marks.items():  # usually one: the SKU that sold out
            _mark_script(keys=[_key(w, s), _generation_key(w, s)], args=[code, generations[(w, s)], ttl_seconds()],
                         client=client)
    except redis.RedisError as exc:
        log.warning("sold-out gate not marked, Redis unavailable: %s", exc)


def stock_precheck(*, warehouse_id: int, demand: dict[int, int]) -> None:
    """Refuse a sale or a hold this warehouse plainly cannot serve, before any transaction is opened.

    First the sold-out gate (no database), then one lock-free read of availability; a SKU that read
    finds with nothing available is marked again, unless a clear (stock back) came in between.  Raises
    ``InsufficientStock`` with the same code and params shape as the sale itself would; passing says
    nothing about success (the sale's conditional update decides).
    """
    demand = {s: q for s, q in demand.items()
              if type(s) is int and type(q) is int and q > 0}  # bad input is the sale's to refuse
    marks, generations = _gate_read([(warehouse_id, s) for s in demand])
    if marks:
        raise InsufficientStock(params={"skus": sorted(marks.values()), "warehouse_ids": [warehouse_id]})
    short = warehouse_shortfall(warehouse_id=warehouse_id, demand=demand)
    if short:
        gone = {(warehouse_id, s): code for s, (code, available) in short.items() if available <= 0}
        if gone and generations:
            _mark_if_unchanged(gone, generations)  # keeps the gate armed after its TTL, while it stays empty
        raise InsufficientStock(params={"skus": sorted(code for code, _ in short.values()),
                                        "warehouse_ids": [warehouse_id]})
