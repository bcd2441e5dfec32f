"""Named locking queries.  Levels are always locked ordered by (warehouse id, sku id, bucket)
so two transactions touching overlapping SKUs can never deadlock on each other."""

from __future__ import annotations

from django.db import connection

from inventory.models import StockLevel, Transfer, StockCount

LEVEL_TABLE = StockLevel._meta.db_table


def levels_lock(keys: list[tuple[int, int, str]]) -> None:
    """Row-lock the existing levels for (warehouse_id, sku_id, bucket) keys, in a fixed order.

    One key is locked too: callers that read a level before changing it (counts)
    rely on the lock, and a call costs the same queries whatever its line count.
    """
    if not keys:
        return
    values = ", ".join(["(%s, %s, %s)"] * len(keys))
    params = [p for key in keys for p in key]
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT l.id FROM {LEVEL_TABLE} l JOIN (VALUES {values}) AS v(w, s, b) "
            "ON l.warehouse_id = v.w AND l.sku_id = v.s AND l.bucket = v.b "
            "ORDER BY l.warehouse_id, l.sku_id, l.bucket FOR UPDATE OF l",
            params,
        )


def transfer_for_update(transfer_id: int) -> Transfer:
    return Transfer.objects.select_for_update(of=("self",)).select_related("source", "destination").get(
        pk=transfer_id)


def count_for_update(count_id: int) -> StockCount:
    return StockCount.objects.select_for_update(of=("self",)).get(pk=count_id)
