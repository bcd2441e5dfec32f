"""Stock availability sync to marketplaces and to stock webhooks, debounced per SKU.

Every ``stock.changed`` outbox message marks its SKUs in a Redis sorted set
(score: when the SKU first changed since its last sync; ``ZADD NX`` keeps the
first time).  A beat task every few seconds drains, atomically (one Lua
script), the SKUs whose first change is at least ``STOCK_SYNC_DEBOUNCE_SECONDS``
(3) old, reads their availability *then*, and sends one figure per SKU: a
burst of sales becomes one update carrying the latest number.  A failed push
marks the SKUs again, so the next drain retries them.  A periodic full sync
pushes every active SKU and corrects any drift (a lost mark, a marketplace
that dropped an update).

The figure a marketplace gets is what one order of the ``marketplace`` channel
could take (``availability``: its shipping warehouses).
"""

from __future__ import annotations

import logging
import time

import redis
from celery import shared_task
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Sku
from inventory.selectors import sellable_levels
from integrations.marketplaces import MarketplaceError, StockFigure, marketplaces
from o2o.outbox import consumer
from o2o.ratelimit import redis_client
from integrations.webhooks import stock_event_publish, subscriptions_for
from orders.api.availability import availability
from orders.models import Channel

log = logging.getLogger(__name__)

ONLINE = [Channel.WEB, Channel.MINI_PROGRAM, Channel.MARKETPLACE]
EVENT_BATCH = 100
_DRAIN = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids > 0 then
  redis.call('ZREM', KEYS[1], unpack(ids))
end
return ids
"""


def pending_key() -> str:
    return str(getattr(settings, "STOCK_SYNC_PENDING_KEY", "o2o:stocksync:pending"))


def debounce_seconds() -> float:
    return float(getattr(settings, "STOCK_SYNC_DEBOUNCE_SECONDS", 3))


def mark_changed(sku_ids, *, now: float | None = None) -> None:
    """Remember that these SKUs changed (keeping the time of their first change since the last sync)."""
    if not sku_ids:
        return
    stamp = time.time() if now is None else now
    try:
        redis_client().zadd(pending_key(), {str(s): stamp for s in sku_ids}, nx=True)
    except redis.RedisError as exc:  # the full sync corrects what this loses
        log.warning("stock sync mark lost for %d SKUs: %s", len(sku_ids), exc)


@consumer("stock.changed", name="orders.api.stocksync.mark")
def stock_changed(message) -> None:
    sku_ids = sorted({int(level[1]) for level in (message.payload or {}).get("levels", [])})
    transaction.on_commit(lambda: mark_changed(sku_ids))


def drain(*, now: float | None = None, limit: int = 500) -> list[int]:
    """Take (and remove) the SKUs that have been quiet long enough; atomic against concurrent drains."""
    cutoff = (time.time() if now is None else now) - debounce_seconds()
    client = redis_client()
    ids = client.eval(_DRAIN, 1, pending_key(), cutoff, limit)
    return sorted(int(i) for i in ids)


def _levels(sku_ids: list[int]) -> dict[int, list[dict]]:
    rows: dict[int, list[dict]] = {s: [] for s in sku_ids}
    for sku_id, warehouse_id, store_id, available in sellable_levels(sku_ids=sku_ids).filter(
            warehouse__is_active=True
    ).order_by("sku_id", "warehouse_id").values_list("sku_id", "warehouse_id", "warehouse__store__id",
                                                     "available_units"):
        rows[sku_id].append({"warehouse": warehouse_id, "store": store_id, "available": max(available, 0)})
    return rows


def _push(sku_ids: list[int]) -> list[str]:
    """Send the marketplace figure of these SKUs to every marketplace; returns the codes that failed."""
    adapters = marketplaces()
    if not adapters or not sku_ids:
        return []
    figures = [StockFigure(sku_code=row["sku_code"], available=row["available_to_ship"])
               for row in availability(channel=Channel.MARKETPLACE, sku_ids=sku_ids)]
    failed = []
    for code, adapter in adapters.items():
        try:
            adapter.stock_push(figures)
        except MarketplaceError as exc:
            log.warning("stock push to %s failed: %s", code, exc)
            failed.append(code)
    return failed


def _publish(sku_ids: list[int]) -> int:
    """stock.availability_changed webhook events, one per batch of SKUs."""
    if not subscriptions_for("stock.availability_changed"):
        return 0
    made = 0
    for start in range(0, len(sku_ids), EVENT_BATCH):
        chunk = sku_ids[start:start + EVENT_BATCH]
        to_ship = {}
        for channel in ONLINE:
            to_ship[channel] = {row["sku"]: row["available_to_ship"]
                                for row in availability(channel=channel, sku_ids=chunk)}
        codes = dict(Sku.objects.filter(id__in=chunk).values_list("id", "code"))
        levels = _levels(chunk)
        items = [{"sku": s, "sku_code": codes[s],
                  "available_to_ship": {c: to_ship[c].get(s, 0) for c in ONLINE},
                  "warehouses": levels[s]} for s in chunk if s in codes]
        with transaction.atomic():
            made += stock_event_publish({"as_of": timezone.now().isoformat(), "items": items})
    return made


def stock_sync_run(*, now: float | None = None) -> dict:
    """One drain: push the debounced SKUs to the marketplaces and publish the webhook events.

    Calls the network, so it runs outside any transaction (RuntimeError otherwise).
    """
    if connection.in_atomic_block:
        raise RuntimeError("stock_sync_run calls the network; call it outside any transaction")
    sku_ids = drain(now=now)
    if not sku_ids:
        return {"skus": 0, "failed": [], "events": 0}
    failed = _push(sku_ids)
    if failed:
        mark_changed(sku_ids)
    return {"skus": len(sku_ids), "failed": failed, "events": _publish(sku_ids)}


def stock_sync_full(*, batch_size: int = 500) -> dict:
    """Push every active SKU's figure to every marketplace (drift correction)."""
    if connection.in_atomic_block:
        raise RuntimeError("stock_sync_full calls the network; call it outside any transaction")
    pushed, failed, last = 0, set(), 0
    while True:
        ids = list(Sku.objects.filter(is_active=True, id__gt=last).order_by("id")
                   .values_list("id", flat=True)[:batch_size])
        if not ids:
            return {"skus": pushed, "failed": sorted(failed)}
        failed.update(_push(ids))
        pushed += len(ids)
        last = ids[-1]


@shared_task(name="orders.api.stocksync.drain", ignore_result=True)
def stock_sync_drain_task() -> dict:
    return stock_sync_run()


@shared_task(name="orders.api.stocksync.full", ignore_result=True)
def stock_sync_full_task() -> dict:
    return stock_sync_full()
