"""Reads of stock shared by the POS, the API, allocation, stock sync, the admin and reports.

Available stock is one rule: ``on_hand − reserved`` of the sellable bucket.  Every reader takes it
from here (``stock_available`` for figures, ``AVAILABLE`` for querysets), so the till, the
partner API, allocation and the marketplaces never disagree about what can be sold.
"""

from __future__ import annotations

from typing import Iterable

from django.db.models import F

from inventory.models import Bucket, StockLevel

AVAILABLE = F("on_hand") - F("reserved")  # annotate(available_units=AVAILABLE) on StockLevel querysets


def sellable_levels(*, sku_ids: Iterable[int], warehouse_ids: Iterable[int] | None = None, using: str | None = None):
    """The sellable stock levels of these SKUs (in these warehouses), annotated with ``available_units``
    (``StockLevel.available`` is the same rule on one loaded row)."""
    levels = StockLevel.objects.using(using) if using else StockLevel.objects
    levels = levels.filter(sku_id__in=list(sku_ids), bucket=Bucket.SELLABLE)
    if warehouse_ids is not None:
        levels = levels.filter(warehouse_id__in=list(warehouse_ids))
    return levels.annotate(available_units=AVAILABLE)


def stock_available(*, sku_ids: Iterable[int],
                    warehouse_ids: Iterable[int] | None = None) -> dict[tuple[int, int], int]:
    """{(warehouse id, sku id): units available to sell} in these warehouses (or all); a level that does
    not exist is absent (none).

    Reads without locks: a figure to show or to plan with.  The sale's conditional update is what
    decides, so a figure read here may be gone by the time a sale takes it.
    """
    return {(w, s): available for w, s, available in
            sellable_levels(sku_ids=sku_ids, warehouse_ids=warehouse_ids)
            .values_list("warehouse_id", "sku_id", "available_units")}


def warehouse_shortfall(*, warehouse_id: int, demand: dict[int, int]) -> dict[int, tuple[str, int]]:
    """{sku id: (SKU code, units available)} of the lines this warehouse cannot serve now: one read, no locks.

    Only an existing sellable level of an active SKU in an active warehouse with fewer units available
    than asked counts as short; anything else (an unknown SKU, a missing level, an inactive warehouse) is
    left to the sale's own checks, so an early rejection never changes which error a caller sees.  A
    figure read here may be stale by the time a sale runs: it may only reject early, never accept.
    """
    if not demand:
        return {}
    rows = (sellable_levels(sku_ids=demand, warehouse_ids=[warehouse_id])
            .filter(sku__is_active=True, warehouse__is_active=True)
            .values_list("sku_id", "sku__code", "available_units"))
    return {sku_id: (code, available) for sku_id, code, available in rows if available < demand[sku_id]}
