"""Where an online order's stock comes from.

* Pickup: the pickup store's stockroom; if it cannot supply every line, the
  first warehouse of the channel's priority list that can, and the goods are
  transferred to the store before the order is ready for pickup.
* Ship: the channel's priority list (central first), then — if the channel
  ships from stores — the stockrooms of stores in the customer's city where shipping
  from the store is switched on (the roll-out, ``stores.selectors``).
  One warehouse supplies the whole order unless the channel allows a split.

Reads availability for every candidate in one query, without locks, after asking the sold-out gate
(``inventory.soldout``); the reservation that follows is a conditional update, so a race only turns
into ``insufficient_stock``.
"""

from __future__ import annotations

from collections import defaultdict

from orders.exceptions import NoWarehouseCanFulfil
from orders.models import ChannelConfig, ChannelWarehouse, Fulfillment
from inventory.selectors import stock_available
from inventory.soldout import soldout_marked_pairs
from stores.models import Capability, Store, Warehouse
from stores.selectors import capability_stores_enabled


def channel_config(channel: str) -> ChannelConfig:
    config = ChannelConfig.objects.filter(channel=channel).first()
    return config or ChannelConfig(channel=channel)


def _priority_warehouses(channel: str) -> list[int]:
    ids = list(ChannelWarehouse.objects.filter(channel=channel, warehouse__is_active=True)
               .order_by("priority", "warehouse_id").values_list("warehouse_id", flat=True))
    if not ids:  # no list configured: central warehouses first, then regional ones
        ids = list(Warehouse.objects.filter(is_active=True, kind__in=[Warehouse.Kind.CENTRAL, Warehouse.Kind.REGIONAL])
                   .order_by("kind", "id").values_list("id", flat=True))
    return ids


def candidates(*, channel: str, fulfillment: str, store: Store | None, ship_city_id: int | None,
               config: ChannelConfig) -> list[int]:
    if fulfillment == Fulfillment.PICKUP:
        return [store.warehouse_id, *[w for w in _priority_warehouses(channel) if w != store.warehouse_id]]
    city_stores = []
    if ship_city_id and (config.ship_from_store or fulfillment == Fulfillment.SHIP_STORE):
        rows = list(Store.objects.filter(city_id=ship_city_id, is_active=True, warehouse__is_active=True)
                    .order_by("id").values_list("id", "warehouse_id"))
        # Only stores where shipping from the store is switched on (the roll-out) ship.
        shipping = capability_stores_enabled(Capability.SHIP_FROM_STORE, [store_id for store_id, _ in rows])
        city_stores = [warehouse_id for store_id, warehouse_id in rows if store_id in shipping]
    if fulfillment == Fulfillment.SHIP_STORE:
        return city_stores
    return [*_priority_warehouses(channel), *[w for w in city_stores]]


def soldout_check(*, demand: dict[int, int], warehouse_ids: list[int], allow_split: bool) -> None:
    """Refuse from the sold-out gate alone (no database): an order is out of reach when some SKU is
    marked sold out in every candidate, or, unsplit, when every candidate has one of its SKUs marked."""
    if not warehouse_ids or not demand:
        return
    marked = soldout_marked_pairs([(w, s) for w in warehouse_ids for s in demand])
    if not marked:
        return
    gone = sorted(s for s in demand if all((w, s) in marked for w in warehouse_ids))
    if not gone and not allow_split and all(any((w, s) in marked for s in demand) for w in warehouse_ids):
        gone = sorted(demand)
    if gone:
        raise NoWarehouseCanFulfil(params={"sku_ids": gone})


def allocate(*, demand: dict[int, int], warehouse_ids: list[int], allow_split: bool) -> dict[int, dict[int, int]]:
    """Return {warehouse_id: {sku_id: qty}} covering ``demand``, or raise NoWarehouseCanFulfil."""
    available = defaultdict(int, stock_available(sku_ids=demand, warehouse_ids=warehouse_ids))
    for w in warehouse_ids:
        if all(available[(w, s)] >= q for s, q in demand.items()):
            return {w: dict(demand)}
    if not allow_split:
        raise NoWarehouseCanFulfil(params={"sku_ids": sorted(demand)})
    plan: dict[int, dict[int, int]] = defaultdict(dict)
    for sku_id, qty in demand.items():
        left = qty
        for w in warehouse_ids:
            take = min(left, max(available[(w, sku_id)], 0))
            if take:
                plan[w][sku_id] = take
                left -= take
            if not left:
                break
        if left:
            raise NoWarehouseCanFulfil(params={"sku_ids": [sku_id]})
    return dict(plan)
