"""Available to promise: how many units one order of a channel can take, per SKU.

Follows the allocation rules of ``orders.allocation``: a pickup order is
supplied by the pickup store or, as a whole, by one warehouse of the
channel's list (then transferred); a shipped order by one warehouse of the
channel's list, or several when the channel allows split shipments.
"""

from __future__ import annotations

from collections import defaultdict

from catalog.models import Sku
from inventory.selectors import stock_available
from orders import allocation
from orders.models import Fulfillment
from stores.models import Store


def availability(*, channel: str, sku_ids: list[int], store: Store | None = None) -> list[dict]:
    config = allocation.channel_config(channel)
    ship = allocation.candidates(channel=channel, fulfillment=Fulfillment.SHIP_WAREHOUSE, store=None,
                                 ship_city_id=None, config=config)
    pickup = allocation.candidates(channel=channel, fulfillment=Fulfillment.PICKUP, store=store,
                                   ship_city_id=None, config=config) if store is not None else []
    available = defaultdict(int, {key: max(n, 0) for key, n in stock_available(
        sku_ids=sku_ids, warehouse_ids=set(ship) | set(pickup)).items()})
    codes = dict(Sku.objects.filter(id__in=sku_ids).values_list("id", "code"))
    rows = []
    for sku_id in sku_ids:
        if sku_id not in codes:
            continue
        figures = [available[(w, sku_id)] for w in ship]
        to_ship = sum(figures) if config.allow_split else max(figures, default=0)
        row = {"sku": sku_id, "sku_code": codes[sku_id], "store": store.pk if store else None,
               "available_in_store": None, "available_for_pickup": None, "available_to_ship": to_ship}
        if store is not None:
            row["available_in_store"] = available[(store.warehouse_id, sku_id)]
            row["available_for_pickup"] = max((available[(w, sku_id)] for w in pickup), default=0)
        rows.append(row)
    return rows
