"""Every change of stock goes through these functions.

Each runs in one transaction (``@service``: retried on deadlock/serialization
failure).  Levels change only by one set-based conditional UPDATE whose WHERE
keeps ``0 <= reserved <= on_hand``; the number of rows it returns is checked,
so a shortfall raises ``InsufficientStock`` and the transaction rolls back.
Multi-row changes first lock the levels ordered by (warehouse, sku, bucket).
Every on_hand change writes a ``StockMove`` in the same transaction, and every
call that changes a level emits one ``stock.changed`` outbox message.  The number of queries of a
call does not depend on the number of lines.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Iterable, Sequence

from django.conf import settings
from django.db import connection
from django.db.models import Exists, Sum
from django.utils import timezone

from catalog.models import Sku
from catalog.validators import barcode_normalize
from inventory import locks, soldout
from inventory.exceptions import (
    CountBelowReserved,
    InactiveSku,
    InsufficientStock,
    InvalidBarcode,
    InvalidQuantity,
    InvalidReceivedQuantity,
    InvalidTransition,
    ReservationNotActive,
    SameWarehouse,
    UnknownSku,
    UnknownWarehouse,
)
from inventory.selectors import stock_available
from inventory.models import (
    Bucket,
    MoveReason,
    Receipt,
    ReceiptLine,
    ReplenishmentProposal,
    ReplenishmentRule,
    Reservation,
    StockCount,
    StockCountLine,
    StockLevel,
    StockMove,
    Transfer,
    TransferLine,
)
from o2o.db import run_joined, service
from o2o.errors import DomainError, InvalidInput
from o2o.ids import number_next
from o2o.money import FEN
from o2o.outbox import outbox_emit
from stores.models import Warehouse

LEVEL_TABLE = StockLevel._meta.db_table
RESERVATION_TABLE = Reservation._meta.db_table


@dataclass(frozen=True)
class StockLine:
    sku_id: int
    qty: int


@dataclass(frozen=True)
class _Delta:
    warehouse_id: int
    sku_id: int
    bucket: str
    on_hand: int
    reserved: int = 0

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.warehouse_id, self.sku_id, self.bucket)


# --- validation -----------------------------------------------------------------------------


def _check_qty(qty: object) -> int:
    if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
        raise InvalidQuantity(params={"qty": str(qty)})
    return qty


def _check_bucket(bucket: object) -> str:
    # An unknown bucket would open a level that nothing sells from or counts.
    if bucket not in Bucket.values:
        raise InvalidQuantity(message="Unknown stock bucket.", code="invalid_bucket", field="bucket")
    return bucket


def _check_unit_cost(cost: object) -> Decimal:
    """A unit cost is a non-negative amount in fen: Decimal or int, never float."""
    if isinstance(cost, bool) or not isinstance(cost, (Decimal, int)):
        raise InvalidInput(message="Unit cost must be a Decimal amount.", code="invalid_unit_cost",
                           field="unit_cost", params={"unit_cost": str(cost)})
    cost = Decimal(cost)
    if not cost.is_finite() or cost < 0 or cost != cost.quantize(FEN):
        raise InvalidInput(message="Unit cost must be a non-negative amount with at most two decimals.",
                           code="invalid_unit_cost", field="unit_cost", params={"unit_cost": str(cost)})
    return cost


def _merge_lines(lines: Sequence[StockLine | tuple[int, int]]) -> dict[int, int]:
    """Validate quantities and sum repeated SKUs (in first-seen order)."""
    if not lines:
        raise InvalidQuantity(message="At least one line is required.", code="no_lines")
    merged: dict[int, int] = {}
    for line in lines:
        sku_id, qty = (line.sku_id, line.qty) if isinstance(line, StockLine) else line
        if isinstance(sku_id, bool) or not isinstance(sku_id, int):
            raise UnknownSku(params={"sku_ids": [str(sku_id)]})
        merged[sku_id] = merged.get(sku_id, 0) + _check_qty(qty)
    return merged


def skus_check(sku_ids: Iterable[int], *, allow_inactive: bool = False) -> dict[int, Sku]:
    """Load SKUs by id in one query; raise for an unknown or (unless allowed) inactive one."""
    wanted = set(sku_ids)
    found = {s.id: s for s in Sku.objects.filter(id__in=wanted).only("id", "code", "is_active", "name")}
    return _skus_verify(wanted, found, allow_inactive=allow_inactive)


def _target_check(warehouse: Warehouse | int,
                  lines: Sequence[StockLine | tuple[int, int]]) -> tuple[int, dict[int, int]]:
    """``_warehouse_id``, ``_merge_lines`` and ``skus_check`` (active SKUs) with one round trip: the
    SKU query carries whether the warehouse is active.  Errors and their precedence are theirs."""
    try:
        merged = _merge_lines(lines)
    except DomainError:
        _warehouse_id(warehouse)  # an unknown warehouse is reported first
        raise
    wid = warehouse.pk if isinstance(warehouse, Warehouse) else warehouse
    rows = list(Sku.objects.filter(id__in=set(merged)).only("id", "code", "is_active", "name")
                .annotate(warehouse_active=Exists(Warehouse.objects.filter(pk=wid, is_active=True))))
    if not rows or not rows[0].warehouse_active:
        _warehouse_id(warehouse)  # raises UnknownWarehouse, or lets UnknownSku follow
    _skus_verify(set(merged), {s.id: s for s in rows})
    return wid, merged


def _skus_verify(wanted: set[int], found: dict[int, Sku], *, allow_inactive: bool = False) -> dict[int, Sku]:
    missing = wanted - found.keys()
    if missing:
        raise UnknownSku(params={"sku_ids": sorted(missing)})
    if not allow_inactive:
        inactive = sorted(s.code for s in found.values() if not s.is_active)
        if inactive:
            raise InactiveSku(params={"skus": inactive})
    return found


def sku_by_barcode(barcode: str) -> Sku:
    """Find the active SKU with this barcode (checked digits) or SKU code."""
    code = (barcode or "").strip()
    sku = Sku.objects.filter(code=code).first()
    if sku is None:
        try:
            normalized = barcode_normalize(code)
        except ValueError:
            raise InvalidBarcode(params={"barcode": code}, field="barcode")
        # A UPC-A is the EAN-13 with a leading 0; scanners send either form.
        forms = {normalized}
        if len(normalized) == 12:
            forms.add("0" + normalized)
        elif len(normalized) == 13 and normalized.startswith("0"):
            forms.add(normalized[1:])
        sku = Sku.objects.filter(barcode__in=forms).first()
    if sku is None:
        raise UnknownSku(params={"barcode": code}, field="barcode")
    if not sku.is_active:
        raise InactiveSku(params={"skus": [sku.code]}, field="barcode")
    return sku


def _warehouse_id(warehouse: Warehouse | int) -> int:
    wid = warehouse.pk if isinstance(warehouse, Warehouse) else warehouse
    if not Warehouse.objects.filter(pk=wid, is_active=True).exists():
        raise UnknownWarehouse(params={"warehouse_id": wid})
    return wid


# --- the one primitive that moves levels -------------------------------------------------------


def _levels_ensure(keys: list[tuple[int, int, str]]) -> None:
    values = ", ".join(["(%s, %s, %s, 0, 0, now())"] * len(keys))
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {LEVEL_TABLE} (warehouse_id, sku_id, bucket, on_hand, reserved, updated_at) "
            f"VALUES {values} ON CONFLICT (warehouse_id, sku_id, bucket) DO NOTHING",
            [p for key in keys for p in key],
        )


def _apply(deltas: list[_Delta], *, reason: str | None, reference: str, actor, note: str = "",
           create_missing: bool = False) -> list[StockMove]:
    """Apply deltas to levels in one conditional UPDATE; write moves for on_hand changes.

    Raises InsufficientStock (naming the short SKUs) when any level would break
    ``0 <= reserved <= on_hand``; the caller's transaction then rolls back.
    """
    combined: dict[tuple[int, int, str], list[int]] = {}
    for d in deltas:
        acc = combined.setdefault(d.key, [0, 0])
        acc[0] += d.on_hand
        acc[1] += d.reserved
    keys = sorted(combined)
    if create_missing:
        _levels_ensure(keys)
    locks.levels_lock(keys)
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(keys))
    params = [p for key in keys for p in (*key, *combined[key])]
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {LEVEL_TABLE} l SET on_hand = l.on_hand + v.d_on_hand, "
            "reserved = l.reserved + v.d_reserved, updated_at = now() "
            "FROM (VALUES " + values + ") AS v(w, s, b, d_on_hand, d_reserved) "
            "WHERE l.warehouse_id = v.w AND l.sku_id = v.s AND l.bucket = v.b "
            "AND l.reserved + v.d_reserved >= 0 "
            "AND l.on_hand + v.d_on_hand >= l.reserved + v.d_reserved "
            "RETURNING l.id, l.warehouse_id, l.sku_id, l.bucket",
            params,
        )
        updated = {(w, s, b): level_id for level_id, w, s, b in cur.fetchall()}
    short = [key for key in keys if key not in updated]
    if short:
        _refuse(short)
    more = [(w, s) for (w, s, b), (d_on_hand, d_reserved) in combined.items()
            if b == Bucket.SELLABLE and d_on_hand - d_reserved > 0]
    if more:
        soldout.soldout_clear_now_and_on_commit(more)
    moves = [
        StockMove(level_id=updated[key], warehouse_id=key[0], sku_id=key[1], bucket=key[2], qty=combined[key][0],
                  reason=reason, reference=reference, note=note[:300], actor=actor)
        for key in keys
        if combined[key][0] != 0
    ]
    if moves:
        if reason is None:
            raise AssertionError("an on_hand change needs a move reason")
        StockMove.objects.bulk_create(moves)
    outbox_emit(
        topic="stock.changed",
        payload={"reason": reason or "reservation", "reference": reference,
                 "levels": [[k[0], k[1], k[2]] for k in keys]},
        key="stock",
    )
    return moves


def _refuse(short: list[tuple[int, int, str]]) -> None:
    """Raise InsufficientStock for the short levels (still locked); a sellable level with nothing
    available is marked in the sold-out gate, so the next attempts are refused before a transaction."""
    values = ", ".join(["(%s, %s, %s)"] * len(short))
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT v.w, v.s, v.b, COALESCE(k.code, v.s::text), COALESCE(l.on_hand - l.reserved, 0) "
            f"FROM (VALUES {values}) AS v(w, s, b) LEFT JOIN {Sku._meta.db_table} k ON k.id = v.s "
            f"LEFT JOIN {LEVEL_TABLE} l ON l.warehouse_id = v.w AND l.sku_id = v.s AND l.bucket = v.b",
            [p for key in short for p in key],
        )
        rows = cur.fetchall()
    soldout.soldout_mark({(w, s): code for w, s, b, code, available in rows
                          if b == Bucket.SELLABLE and available <= 0})
    raise InsufficientStock(params={"skus": sorted(code for *_, code, _available in rows),
                                    "warehouse_ids": sorted({k[0] for k in short})})


def _actor(actor):
    return actor if actor is not None and getattr(actor, "pk", None) else None


# --- receive, adjust, sell, return ------------------------------------------------------------


@service
def stock_receive(*, warehouse: Warehouse | int, lines: Sequence[StockLine | tuple[int, int]], actor=None,
                  reason: str = MoveReason.RECEIPT, reference: str = "", bucket: str = Bucket.SELLABLE,
                  note: str = "") -> list[StockMove]:
    """Add stock (receipts, opening stock).  Creates missing levels.  Raises on bad input."""
    _check_bucket(bucket)
    wid = _warehouse_id(warehouse)
    merged = _merge_lines(lines)
    skus_check(merged, allow_inactive=True)
    deltas = [_Delta(wid, sku_id, bucket, qty) for sku_id, qty in merged.items()]
    return _apply(deltas, reason=reason, reference=reference, actor=_actor(actor), note=note, create_missing=True)


@service
def receipt_create(*, warehouse: Warehouse | int, supplier: str, lines: Sequence[tuple[int, int, object]],
                   actor=None, supplier_reference: str = "") -> Receipt:
    """Record a supplier receipt and add its stock.  ``lines`` are (sku_id, qty, unit_cost)."""
    wid = _warehouse_id(warehouse)
    if not supplier.strip():
        raise InvalidQuantity(message="Supplier is required.", code="supplier_required", field="supplier")
    receipt = Receipt.objects.create(number=number_next("RC"), warehouse_id=wid, supplier=supplier.strip(),
                                     supplier_reference=supplier_reference, received_by=_actor(actor))
    ReceiptLine.objects.bulk_create(
        [ReceiptLine(receipt=receipt, sku_id=sku_id, qty=_check_qty(qty), unit_cost=_check_unit_cost(cost))
         for sku_id, qty, cost in lines]
    )
    stock_receive(warehouse=wid, lines=[(sku_id, qty) for sku_id, qty, _ in lines], actor=actor,
                  reason=MoveReason.RECEIPT, reference=receipt.number)
    return receipt


@service
def stock_adjust(*, warehouse: Warehouse | int, sku_id: int, delta: int, actor, note: str,
                 bucket: str = Bucket.SELLABLE, reference: str = "") -> StockMove:
    """Correct on_hand by a signed delta (never below what is reserved)."""
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise InvalidQuantity(params={"qty": str(delta)})
    _check_bucket(bucket)
    wid = _warehouse_id(warehouse)
    skus_check([sku_id], allow_inactive=True)
    (move,) = _apply([_Delta(wid, sku_id, bucket, delta)], reason=MoveReason.ADJUSTMENT, reference=reference,
                     actor=_actor(actor), note=note, create_missing=delta > 0)
    return move


@service
def stock_sell(*, warehouse: Warehouse | int, lines: Sequence[StockLine | tuple[int, int]], reference: str,
               actor=None) -> list[StockMove]:
    """Take sellable stock at the moment of a sale (POS).  Only unreserved stock can be sold."""
    wid, merged = _target_check(warehouse, lines)
    deltas = [_Delta(wid, sku_id, Bucket.SELLABLE, -qty) for sku_id, qty in merged.items()]
    return _apply(deltas, reason=MoveReason.SALE, reference=reference, actor=_actor(actor))


@dataclass(frozen=True)
class SaleTake:
    """A counter sale's stock, checked and announced, to be taken by ``take()`` as the sale's last
    statement (``stock_sale_prepare``)."""

    warehouse_id: int
    lines: tuple[tuple[int, int], ...]  # (sku id, qty), SKUs merged, in id order
    reference: str
    actor_id: int | None
    codes: dict[int, str]

    def take(self) -> None:
        """Take the units in one statement: the levels locked in (warehouse, sku) order, decreased
        where ``on_hand - reserved`` covers the quantity, and a StockMove written for each level
        moved.  Raises InsufficientStock (naming the short SKUs) when a line is short; the caller's
        transaction then rolls back.  Meant as the last statement before the commit, so the level
        rows stay locked for the commit only; the writes held by ``o2o.db.joined_writes`` ride on it."""
        values = ", ".join(["(%s, %s, %s)"] * len(self.lines))
        params = [p for sku_id, qty in self.lines for p in (self.warehouse_id, sku_id, qty)]
        rows = run_joined(
            "WITH moved AS ("
            f"UPDATE {LEVEL_TABLE} l SET on_hand = l.on_hand - x.qty, updated_at = now() "
            f"FROM (SELECT k.id, v.qty FROM {LEVEL_TABLE} k JOIN (VALUES {values}) AS v(w, s, qty) "
            "ON k.warehouse_id = v.w AND k.sku_id = v.s AND k.bucket = 'sellable' "
            "ORDER BY k.warehouse_id, k.sku_id FOR UPDATE OF k) AS x "
            "WHERE l.id = x.id AND l.on_hand - l.reserved >= x.qty "
            "RETURNING l.id, l.warehouse_id, l.sku_id, x.qty) "
            f"INSERT INTO {StockMove._meta.db_table} (level_id, warehouse_id, sku_id, bucket, qty, reason, "
            "reference, note, actor_id, created_at) "
            "SELECT id, warehouse_id, sku_id, 'sellable', -qty, %s, %s, '', %s, now() FROM moved "
            "RETURNING sku_id",
            [*params, MoveReason.SALE, self.reference, self.actor_id],
        )
        moved = {sku_id for (sku_id,) in rows}
        short = [sku_id for sku_id, _ in self.lines if sku_id not in moved]
        if short:
            raise InsufficientStock(params={"skus": sorted(self.codes.get(s, str(s)) for s in short),
                                            "warehouse_ids": [self.warehouse_id]})


def stock_sale_prepare(*, warehouse_id: int, lines: Sequence[tuple[int, int]], reference: str, actor=None,
                       codes: dict[int, str]) -> SaleTake:
    """A counter sale's stock (as ``stock_sell``) in two steps, for the lean sale: this one checks the
    quantities and queues ``stock.changed`` (no statement of its own inside an ``outbox_batch``);
    ``take()`` moves the levels last.  The caller vouches that the SKUs are active and the
    warehouse is the store's (it priced the sale from them); ``codes``: {sku id: code} for the
    error.  Raises InvalidQuantity; ``take()`` raises InsufficientStock."""
    merged = _merge_lines(lines)
    keys = sorted(merged)
    outbox_emit(topic="stock.changed", key="stock",
                payload={"reason": MoveReason.SALE, "reference": reference,
                         "levels": [[warehouse_id, sku_id, Bucket.SELLABLE] for sku_id in keys]})
    actor = _actor(actor)
    return SaleTake(warehouse_id=warehouse_id, lines=tuple((k, merged[k]) for k in keys), reference=reference,
                    actor_id=actor.pk if actor is not None else None, codes=codes)


@service
def stock_restock_return(*, warehouse: Warehouse | int, lines: Sequence[StockLine | tuple[int, int]],
                         reference: str, actor=None, bucket: str = Bucket.SELLABLE) -> list[StockMove]:
    """Put returned goods into the receiving warehouse, sellable or damaged."""
    _check_bucket(bucket)
    wid = _warehouse_id(warehouse)
    merged = _merge_lines(lines)
    skus_check(merged, allow_inactive=True)
    deltas = [_Delta(wid, sku_id, bucket, qty) for sku_id, qty in merged.items()]
    return _apply(deltas, reason=MoveReason.RETURN, reference=reference, actor=_actor(actor), create_missing=True)


@service
def stock_quarantine(*, warehouse: Warehouse | int, sku_id: int, qty: int, actor, note: str = "",
                     to_damaged: bool = True) -> list[StockMove]:
    """Move units between sellable and damaged stock in one warehouse."""
    wid = _warehouse_id(warehouse)
    _check_qty(qty)
    skus_check([sku_id], allow_inactive=True)
    sign = 1 if to_damaged else -1
    deltas = [_Delta(wid, sku_id, Bucket.SELLABLE, -qty * sign), _Delta(wid, sku_id, Bucket.DAMAGED, qty * sign)]
    return _apply(deltas, reason=MoveReason.QUARANTINE, reference="", actor=_actor(actor), note=note,
                  create_missing=True)


# --- reservations -----------------------------------------------------------------------------


@service
def stock_reserve(*, warehouse: Warehouse | int, lines: Sequence[StockLine | tuple[int, int]], reference: str,
                  expires_at: datetime | None = None, actor=None) -> list[Reservation]:
    """Hold sellable stock for an unpaid order.  Expires at ``expires_at`` (default: the configured TTL)."""
    wid, merged = _target_check(warehouse, lines)
    if expires_at is None:
        expires_at = timezone.now() + timedelta(minutes=settings.O2O_RESERVATION_TTL_MINUTES)
    _apply([_Delta(wid, sku_id, Bucket.SELLABLE, 0, qty) for sku_id, qty in merged.items()],
           reason=None, reference=reference, actor=_actor(actor))
    return Reservation.objects.bulk_create(
        [Reservation(warehouse_id=wid, sku_id=sku_id, qty=qty, reference=reference, expires_at=expires_at)
         for sku_id, qty in merged.items()]
    )


def _close_reservations(*, status: str, ids: Sequence[int] | None, reference: str | None,
                        skip_locked: bool = False) -> list[tuple[int, int, int, int]]:
    """Flip active reservations to ``status``; return (id, warehouse, sku, qty) of those flipped.

    The conditional UPDATE on status makes closing exactly-once: a reservation
    that another transaction already closed is simply not returned.
    """
    if ids is None and reference is None:
        raise ValueError("ids or reference required")
    where, params = ("id = ANY(%s)", [list(ids)]) if ids is not None else ("reference = %s", [reference])
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"
    with connection.cursor() as cur:
        cur.execute(
            f"WITH target AS (SELECT id FROM {RESERVATION_TABLE} WHERE {where} AND status = 'active' "
            f"ORDER BY warehouse_id, sku_id, id{lock}) "
            f"UPDATE {RESERVATION_TABLE} r SET status = %s, closed_at = now() FROM target "
            "WHERE r.id = target.id RETURNING r.id, r.warehouse_id, r.sku_id, r.qty",
            [*params, status],
        )
        return cur.fetchall()


@service
def reservations_release(*, reference: str | None = None, ids: Sequence[int] | None = None, actor=None,
                         expired: bool = False) -> int:
    """Release active reservations (by order reference or ids).  Returns units released; 0 if none active."""
    status = Reservation.Status.EXPIRED if expired else Reservation.Status.RELEASED
    closed = _close_reservations(status=status, ids=ids, reference=reference)
    if not closed:
        return 0
    _apply([_Delta(w, s, Bucket.SELLABLE, 0, -q) for _, w, s, q in closed], reason=None,
           reference=reference or "", actor=_actor(actor))
    return sum(q for *_, q in closed)


@service
def reservations_commit(*, reference: str, actor=None, require: int | None = None) -> list[StockMove]:
    """Turn an order's active reservations into a sale: on_hand and reserved both go down.

    ``require`` is the number of reservation rows the caller expects; if fewer are
    still active (one expired), raises ReservationNotActive and nothing changes.
    """
    closed = _close_reservations(status=Reservation.Status.COMMITTED, ids=None, reference=reference)
    if not closed or (require is not None and len(closed) != require):
        raise ReservationNotActive(params={"reference": reference})
    return _apply([_Delta(w, s, Bucket.SELLABLE, -q, -q) for _, w, s, q in closed], reason=MoveReason.SALE,
                  reference=reference, actor=_actor(actor))


def reservations_expire(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Release reservations past their expiry, one transaction per batch.  Returns how many expired."""
    now = now or timezone.now()
    total = 0
    after = 0
    while True:
        # Page by id: rows another transaction holds are skipped, not fetched again and again.
        ids = list(Reservation.objects.filter(status=Reservation.Status.ACTIVE, expires_at__lte=now, id__gt=after)
                   .order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return total
        total += _expire_batch(ids)
        if len(ids) < batch_size:
            return total
        after = ids[-1]


@service
def _expire_batch(ids: list[int]) -> int:
    closed = _close_reservations(status=Reservation.Status.EXPIRED, ids=ids, reference=None, skip_locked=True)
    if closed:
        _apply([_Delta(w, s, Bucket.SELLABLE, 0, -q) for _, w, s, q in closed], reason=None,
               reference="expiry", actor=None)
        outbox_emit(topic="stock.reservations_expired", payload={"reservation_ids": [c[0] for c in closed]})
    return len(closed)


# --- transfers --------------------------------------------------------------------------------


@service
def transfer_create(*, source: Warehouse | int, destination: Warehouse | int,
                    lines: Sequence[StockLine | tuple[int, int]], actor=None, note: str = "") -> Transfer:
    """Draft a transfer.  Nothing moves until it is shipped."""
    sid, did = _warehouse_id(source), _warehouse_id(destination)
    if sid == did:
        raise SameWarehouse(field="destination")
    merged = _merge_lines(lines)
    skus_check(merged)
    transfer = Transfer.objects.create(number=number_next("TR"), source_id=sid, destination_id=did,
                                       created_by=_actor(actor), note=note)
    TransferLine.objects.bulk_create([TransferLine(transfer=transfer, sku_id=s, qty=q) for s, q in merged.items()])
    return transfer


@service
def transfer_ship(*, transfer: Transfer | int, actor=None) -> Transfer:
    """Draft → in transit.  Takes the units out of the source's available stock."""
    transfer = locks.transfer_for_update(transfer.pk if isinstance(transfer, Transfer) else transfer)
    if transfer.status != Transfer.Status.DRAFT:
        raise InvalidTransition(params={"status": transfer.status, "action": "ship"})
    lines = list(transfer.lines.all())
    if transfer.reference:
        # The units are held for an order at the source: they leave with that hold.
        reservations_consume(reference=transfer.reference, warehouse=transfer.source_id,
                             lines=[(ln.sku_id, ln.qty) for ln in lines], actor=actor,
                             reason=MoveReason.TRANSFER_OUT)
    else:
        _apply([_Delta(transfer.source_id, ln.sku_id, Bucket.SELLABLE, -ln.qty) for ln in lines],
               reason=MoveReason.TRANSFER_OUT, reference=transfer.number, actor=_actor(actor))
    transfer.status = Transfer.Status.SHIPPED
    transfer.shipped_by = _actor(actor)
    transfer.shipped_at = timezone.now()
    transfer.save(update_fields=["status", "shipped_by", "shipped_at"])
    return transfer


@service
def transfer_receive(*, transfer: Transfer | int, actor=None,
                     received: dict[int, tuple[int, int]] | None = None) -> Transfer:
    """In transit → received.  ``received`` maps sku_id → (sellable, damaged); default: all sellable.

    Units neither received sellable nor damaged are recorded as the line's
    discrepancy (lost in transit) and leave the books with the shipment.
    """
    transfer = locks.transfer_for_update(transfer.pk if isinstance(transfer, Transfer) else transfer)
    if transfer.status != Transfer.Status.SHIPPED:
        raise InvalidTransition(params={"status": transfer.status, "action": "receive"})
    lines = list(transfer.lines.all())
    if received is None:  # an empty mapping means nothing arrived, not "all of it"
        received = {ln.sku_id: (ln.qty, 0) for ln in lines}
    unknown = set(received) - {ln.sku_id for ln in lines}
    if unknown:
        raise UnknownSku(params={"sku_ids": sorted(unknown)})
    deltas = []
    for ln in lines:
        good, bad = received.get(ln.sku_id, (0, 0))
        if any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in (good, bad)) or good + bad > ln.qty:
            raise InvalidReceivedQuantity(params={"sku_id": ln.sku_id, "shipped": ln.qty})
        ln.qty_received, ln.qty_damaged = good, bad
        if good:
            deltas.append(_Delta(transfer.destination_id, ln.sku_id, Bucket.SELLABLE, good))
        if bad:
            deltas.append(_Delta(transfer.destination_id, ln.sku_id, Bucket.DAMAGED, bad))
    TransferLine.objects.bulk_update(lines, ["qty_received", "qty_damaged"])
    if deltas:
        _apply(deltas, reason=MoveReason.TRANSFER_IN, reference=transfer.number, actor=_actor(actor),
               create_missing=True)
    if transfer.reference:
        held = [(ln.sku_id, ln.qty_received) for ln in lines if ln.qty_received]
        if held:
            # Received for an order: hold the units there for the same reference, with no expiry.
            _apply([_Delta(transfer.destination_id, s, Bucket.SELLABLE, 0, q) for s, q in held], reason=None,
                   reference=transfer.reference, actor=_actor(actor))
            Reservation.objects.bulk_create([
                Reservation(warehouse_id=transfer.destination_id, sku_id=s, qty=q, reference=transfer.reference)
                for s, q in held])
    transfer.status = Transfer.Status.RECEIVED
    transfer.received_by = _actor(actor)
    transfer.received_at = timezone.now()
    transfer.save(update_fields=["status", "received_by", "received_at"])
    outbox_emit(topic="transfer.received",
                payload={"transfer": transfer.number, "reference": transfer.reference,
                         "destination_id": transfer.destination_id,
                         "lines": [[ln.sku_id, ln.qty, ln.qty_received, ln.qty_damaged] for ln in lines]},
                key=f"transfer:{transfer.pk}")
    return transfer


@service
def transfer_cancel(*, transfer: Transfer | int, actor=None) -> Transfer:
    transfer = locks.transfer_for_update(transfer.pk if isinstance(transfer, Transfer) else transfer)
    if transfer.status != Transfer.Status.DRAFT:
        raise InvalidTransition(params={"status": transfer.status, "action": "cancel"})
    transfer.status = Transfer.Status.CANCELLED
    transfer.save(update_fields=["status"])
    return transfer


# --- counts -----------------------------------------------------------------------------------


@service
def count_create(*, warehouse: Warehouse | int, lines: Sequence[tuple[int, int]], actor=None) -> StockCount:
    """Record counted quantities (sellable stock) for a warehouse, with the book figure of this moment.

    The book figure is the count's snapshot: applying the count later posts
    counted − book-when-counted, so sales, receipts and transfers between counting
    and applying are kept.  Locks nothing.
    """
    wid = _warehouse_id(warehouse)
    if not lines:
        raise InvalidQuantity(message="At least one line is required.", code="no_lines")
    counted: dict[int, int] = {}
    for sku_id, qty in lines:
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 0:
            raise InvalidQuantity(params={"qty": str(qty)})
        counted[sku_id] = counted.get(sku_id, 0) + qty  # the same SKU counted on two shelves
    skus_check(counted, allow_inactive=True)
    count = StockCount.objects.create(number=number_next("SC"), warehouse_id=wid, created_by=_actor(actor))
    book = dict(StockLevel.objects.filter(warehouse_id=wid, bucket=Bucket.SELLABLE, sku_id__in=list(counted))
                .values_list("sku_id", "on_hand"))
    StockCountLine.objects.bulk_create([StockCountLine(count=count, sku_id=s, counted=q, expected=book.get(s, 0))
                                        for s, q in counted.items()])
    return count


@service
def count_apply(*, count: StockCount | int, actor=None) -> StockCount:
    """Post an adjustment move per line: counted − the book figure when counted.

    What moved between counting and applying stays (book 20, counted 18, one sold
    since: on_hand 17, not 18).  Locks the count, then the levels in order.  Raises
    invalid_state (applied already), count_below_reserved (the adjusted stock would
    fall below what open orders hold).
    """
    count = locks.count_for_update(count.pk if isinstance(count, StockCount) else count)
    if count.status != StockCount.Status.DRAFT:
        raise InvalidTransition(params={"status": count.status, "action": "apply"})
    lines = list(count.lines.all())
    keys = sorted((count.warehouse_id, ln.sku_id, Bucket.SELLABLE) for ln in lines)
    _levels_ensure(keys)
    locks.levels_lock(keys)
    levels = {lv.sku_id: lv for lv in StockLevel.objects.filter(
        warehouse_id=count.warehouse_id, bucket=Bucket.SELLABLE, sku_id__in=[ln.sku_id for ln in lines])}
    deltas = []
    for ln in lines:
        level = levels[ln.sku_id]
        ln.difference = ln.counted - ln.expected
        if level.on_hand + ln.difference < level.reserved:
            raise CountBelowReserved(params={"sku_id": ln.sku_id, "reserved": level.reserved})
        if ln.difference:
            deltas.append(_Delta(count.warehouse_id, ln.sku_id, Bucket.SELLABLE, ln.difference))
    StockCountLine.objects.bulk_update(lines, ["difference"])
    if deltas:
        # The levels are locked above, so the figures read there still hold.
        _apply(deltas, reason=MoveReason.COUNT, reference=count.number, actor=_actor(actor))
    count.status = StockCount.Status.APPLIED
    count.applied_by = _actor(actor)
    count.applied_at = timezone.now()
    count.save(update_fields=["status", "applied_by", "applied_at"])
    return count


# --- replenishment ----------------------------------------------------------------------------


@service
def replenishment_propose(*, business_date: date | None = None) -> int:
    """Propose transfers from central to stores (and purchases for central) below their minimum.

    One proposal per warehouse×SKU per day (re-running the day adds nothing).
    A store is supplied from a central warehouse of its own region when that
    has the units available; otherwise the proposal is a purchase.
    """
    business_date = business_date or timezone.localdate()
    # Locking the rules serialises two runs of the same day, so the second sees the first's proposals.
    rules = list(ReplenishmentRule.objects.select_related("warehouse__city").order_by("pk")
                 .select_for_update(of=("self",)))
    if not rules:
        return 0
    proposed = set(ReplenishmentProposal.objects.filter(business_date=business_date)
                   .values_list("warehouse_id", "sku_id"))
    available = stock_available(sku_ids={r.sku_id for r in rules})  # the rules' and the central warehouses'
    centrals = defaultdict(list)
    for wh in Warehouse.objects.filter(kind=Warehouse.Kind.CENTRAL, is_active=True).select_related("city"):
        centrals[wh.city.region_id].append(wh)
    proposals = []
    for rule in rules:
        have = available.get((rule.warehouse_id, rule.sku_id), 0)
        if have >= rule.min_qty or (rule.warehouse_id, rule.sku_id) in proposed:
            continue
        qty = rule.max_qty - have
        source = None
        if rule.warehouse.kind != Warehouse.Kind.CENTRAL:
            for central in centrals.get(rule.warehouse.city.region_id, []):
                if available.get((central.id, rule.sku_id), 0) >= qty:
                    source = central
                    available[(central.id, rule.sku_id)] -= qty
                    break
        kind = ReplenishmentProposal.Kind.TRANSFER if source else ReplenishmentProposal.Kind.PURCHASE
        proposals.append(ReplenishmentProposal(business_date=business_date, kind=kind, warehouse=rule.warehouse,
                                               source=source, sku_id=rule.sku_id, available=have, qty=qty))
    ReplenishmentProposal.objects.bulk_create(proposals)
    return len(proposals)


@service
def proposal_accept(*, proposal: ReplenishmentProposal | int, actor=None) -> Transfer | None:
    """Accept an open proposal; a transfer proposal becomes a draft transfer."""
    pk = proposal.pk if isinstance(proposal, ReplenishmentProposal) else proposal
    proposal = ReplenishmentProposal.objects.select_for_update().get(pk=pk)
    if proposal.status != ReplenishmentProposal.Status.OPEN:
        raise InvalidTransition(params={"status": proposal.status, "action": "accept"})
    transfer = None
    if proposal.kind == ReplenishmentProposal.Kind.TRANSFER:
        transfer = transfer_create(source=proposal.source_id, destination=proposal.warehouse_id,
                                   lines=[(proposal.sku_id, proposal.qty)], actor=actor,
                                   note=f"replenishment {proposal.business_date}")
    proposal.status = ReplenishmentProposal.Status.ACCEPTED
    proposal.transfer = transfer
    proposal.save(update_fields=["status", "transfer"])
    return transfer


def level_totals(*, sku_id: int) -> dict[str, int]:
    agg = StockLevel.objects.filter(sku_id=sku_id, bucket=Bucket.SELLABLE).aggregate(
        on_hand=Sum("on_hand"), reserved=Sum("reserved"))
    return {k: v or 0 for k, v in agg.items()}


# --- order fulfilment hooks -----------------------------------------------------------------


@service
def reservations_confirm(*, reference: str) -> int:
    """A paid order's reservations stop expiring (the units stay held until they leave)."""
    return Reservation.objects.filter(reference=reference, status=Reservation.Status.ACTIVE).update(expires_at=None)


@service
def reservations_consume(*, reference: str, warehouse: Warehouse | int,
                         lines: Sequence[StockLine | tuple[int, int]], actor=None,
                         reason: str = MoveReason.SALE) -> list[StockMove]:
    """The held units leave the warehouse (shipment, pickup handover): on_hand and reserved go down.

    Partial quantities split a reservation: the consumed part is closed as
    committed and the rest stays active under the same reference.  Raises
    ReservationNotActive when the reference holds fewer units than asked.
    """
    wid = warehouse.pk if isinstance(warehouse, Warehouse) else warehouse
    merged = _merge_lines(lines)
    rows = list(Reservation.objects.filter(reference=reference, warehouse_id=wid, sku_id__in=list(merged),
                                           status=Reservation.Status.ACTIVE)
                .order_by("warehouse_id", "sku_id", "id").select_for_update())
    need = dict(merged)
    closing, remainders = [], []
    for row in rows:
        want = need.get(row.sku_id, 0)
        if want <= 0:
            continue
        take = min(want, row.qty)
        need[row.sku_id] = want - take
        closing.append(row.id)
        if take < row.qty:
            remainders.append(Reservation(warehouse_id=wid, sku_id=row.sku_id, qty=row.qty - take,
                                          reference=reference, expires_at=row.expires_at))
    if any(v > 0 for v in need.values()):
        raise ReservationNotActive(params={"reference": reference})
    Reservation.objects.filter(id__in=closing).update(status=Reservation.Status.COMMITTED, closed_at=timezone.now())
    if remainders:
        Reservation.objects.bulk_create(remainders)
    # Reserved drops by what was consumed: closed rows minus the re-opened remainders.
    return _apply([_Delta(wid, sku_id, Bucket.SELLABLE, -qty, -qty) for sku_id, qty in merged.items()],
                  reason=reason, reference=reference, actor=_actor(actor))


@service
def transfer_create_for_reference(*, source: Warehouse | int, destination: Warehouse | int, reference: str,
                                  lines: Sequence[StockLine | tuple[int, int]], actor=None) -> Transfer:
    """Draft a transfer of units already reserved at the source for ``reference``."""
    transfer = transfer_create(source=source, destination=destination, lines=lines, actor=actor,
                               note=f"for {reference}")
    transfer.reference = reference
    transfer.save(update_fields=["reference"])
    return transfer


def reserved_units(*, reference: str, warehouse: Warehouse | int) -> dict[int, int]:
    """Units held for ``reference`` at a warehouse, per SKU."""
    wid = warehouse.pk if isinstance(warehouse, Warehouse) else warehouse
    held: dict[int, int] = {}
    for sku_id, qty in Reservation.objects.filter(reference=reference, warehouse_id=wid,
                                                  status=Reservation.Status.ACTIVE).values_list("sku_id", "qty"):
        held[sku_id] = held.get(sku_id, 0) + qty
    return held


def transfers_open_for(*, reference: str) -> list[Transfer]:
    """Draft transfers moving units held for ``reference`` (cancelled with the order)."""
    return list(Transfer.objects.filter(reference=reference, status=Transfer.Status.DRAFT))


def transfers_in_transit_for(*, reference: str) -> list[Transfer]:
    return list(Transfer.objects.filter(reference=reference, status=Transfer.Status.SHIPPED))
