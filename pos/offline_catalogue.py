"""The store's sellable catalogue as a till keeps it for selling offline.

Generated from the server's own data: each SKU's price is what ``orders.pricing.sale_price``
charges for one unit in a plain counter sale at this store now (list price less the item
promotions live for the store), so an offline basket of single items costs what the counter
charges.  Basket-wide promotions (满减, 第N件) cannot be known offline; the server re-prices every
synced sale and records any difference (``pos.sync``).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from inventory.models import Bucket, StockLevel
from o2o.channels import Channel
from orders.pricing import sale_price, skus_load
from stores.models import Store


def offline_catalogue(*, store: Store, updated_since: datetime | None = None) -> dict:
    """{generated_at, full, items}: active SKUs with a sellable level at the store; with
    ``updated_since``, only those whose SKU or level changed since (the till merges them)."""
    generated_at = timezone.now()
    levels = StockLevel.objects.filter(warehouse_id=store.warehouse_id, bucket=Bucket.SELLABLE,
                                       sku__is_active=True)
    if updated_since is not None:
        levels = levels.filter(Q(updated_at__gte=updated_since) | Q(sku__updated_at__gte=updated_since))
    free = dict(levels.values_list("sku_id", "on_hand"))
    reserved = dict(levels.values_list("sku_id", "reserved"))
    skus = skus_load(free)
    items = []
    for sku_id in sorted(skus):
        sku = skus[sku_id]
        priced = sale_price(demand={sku_id: 1}, channel=Channel.POS, store_id=store.pk, skus={sku_id: sku})
        items.append({"sku_id": sku_id, "code": sku.code, "barcode": sku.barcode or "", "name": sku.name,
                      "price": str(priced.lines[0].line_total),
                      "stock": max(free[sku_id] - reserved[sku_id], 0)})
    return {"generated_at": generated_at.isoformat(), "full": updated_since is None, "store": store.code,
            "items": items}
