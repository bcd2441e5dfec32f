"""Offline sales coming back from a till: parsed, then applied exactly once each.

A till that lost the network kept selling (cash and card slips only) and queued each sale with
its client UUID and local receipt number.  ``offline_sale_apply`` records one such sale in one
transaction, through the same priced sale and order creation the counter uses
(``orders.pricing.sale_price``, ``orders.services.pos_sale_create``), in the store's open shift.

Exactly once: the client UUID is claimed first (``INSERT … ON CONFLICT DO NOTHING``, unique), so
a second post of the same sale, concurrent or later, waits for the first and returns its result.
The till queues a sale under the client UUID it first tried online (``/pos/till/complete/``): a
sale the server made there, whose answer the network lost, is answered as already recorded.

Conflicts are business events, not refusals (the goods already left the store):

* stock short: the units the books lack are booked in as an adjustment awaiting the count, the
  sale then takes them (CHECK constraints hold), and an open ``OfflineConflict`` asks the store
  manager to count;
* price changed (a promotion that ran out included): the customer keeps the price paid (the
  order carries the till's prices) and each line that differs is an open ``OfflineConflict``
  with both amounts.
"""

from __future__ import annotations

import re
import uuid as uuid_module
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from inventory import locks as stock_locks
from inventory import services as stock
from inventory.models import Bucket, StockLevel
from o2o.channels import Channel
from o2o.db import service
from o2o.errors import DomainError, InvalidInput
from o2o.money import ZERO, money, money_parse
from orders import services as order_services
from orders.models import Order
from orders.pricing import PricedLine, PricedSale, sale_price
from orders.services import TenderIn
from payments import shifts
from payments.models import Tender
from pos.models import OfflineConflict, OfflineSale
from promotions.exceptions import PromotionExhausted
from stores.models import Store
from stores.selectors import staff_store_ids

MAX_BATCH = 200
MAX_LINES = 200
OFFLINE_TENDERS = {"cash": Tender.CASH, "card": Tender.UNIONPAY_CARD}
_TILL = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class InvalidOfflineSale(InvalidInput):
    code = "invalid_offline_sale"
    default_message = _("The offline sale is not complete or not valid.")


class OfflineTenderNotAllowed(InvalidInput):
    code = "offline_tender_not_allowed"
    default_message = _("Offline sales take cash and card slips only.")


class OfflineTendersMismatch(InvalidInput):
    code = "offline_tenders_mismatch"
    default_message = _("The tenders of the offline sale do not add up to its total.")


class OfflineStoreMismatch(InvalidInput):
    code = "offline_store_mismatch"
    default_message = _("This offline sale was made at another store.")


@dataclass(frozen=True)
class OfflineLine:
    sku_id: int
    qty: int
    unit_price: Decimal  # as the till showed it and the customer paid it


@dataclass(frozen=True)
class OfflineTender:
    tender: str
    amount: Decimal
    tendered: Decimal = ZERO  # cash handed over (the change is the difference)
    reference: str = ""  # the card slip's reference


@dataclass(frozen=True)
class OfflineSaleIn:
    client_uuid: uuid_module.UUID
    till: str
    sequence: int
    receipt_number: str
    sold_at: datetime
    lines: tuple[OfflineLine, ...]
    tenders: tuple[OfflineTender, ...]
    clerk_id: int | None = None  # who was signed in at the till

    @property
    def total(self) -> Decimal:
        return money(sum((money(ln.unit_price * ln.qty) for ln in self.lines), ZERO))


@dataclass(frozen=True)
class SyncResult:
    client_uuid: str
    status: str  # "recorded" (now), "already_recorded" (an earlier post), "rejected"
    order_number: str = ""
    conflicts: tuple[str, ...] = ()
    error: dict | None = None

    def as_dict(self) -> dict:
        body = {"client_uuid": self.client_uuid, "status": self.status}
        if self.order_number:
            body["order_number"] = self.order_number
        if self.conflicts:
            body["conflicts"] = list(self.conflicts)
        if self.error:
            body["error"] = self.error
        return body


# --- parsing -------------------------------------------------------------------------------------


def _bad(field: str, message=None) -> InvalidOfflineSale:
    return InvalidOfflineSale(message, field=field)


def _int(value, field: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _bad(field)
    return value


def _money(value, field: str) -> Decimal:
    if not isinstance(value, str):
        raise _bad(field)
    try:
        amount = money_parse(value)
    except ValueError:
        raise _bad(field) from None
    if amount < 0:
        raise _bad(field)
    return amount


def offline_sale_parse(data, *, store: Store) -> OfflineSaleIn:
    """One sale of the batch as the till sent it; raises InvalidOfflineSale naming the field."""
    if not isinstance(data, dict):
        raise _bad("sale")
    try:
        key = uuid_module.UUID(str(data.get("client_uuid")))
    except ValueError:
        raise _bad("client_uuid") from None
    till = data.get("till")
    if not isinstance(till, str) or not _TILL.match(till):
        raise _bad("till")
    sequence = _int(data.get("sequence"), "sequence")
    receipt = data.get("receipt_number")
    if receipt != f"{store.code}-{till}-{sequence:06d}":
        raise (OfflineStoreMismatch(field="receipt_number")
               if isinstance(receipt, str) and not receipt.startswith(f"{store.code}-") else _bad("receipt_number"))
    sold_at = parse_datetime(data["sold_at"]) if isinstance(data.get("sold_at"), str) else None
    if sold_at is None or sold_at.tzinfo is None:
        raise _bad("sold_at")
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines or len(raw_lines) > MAX_LINES:
        raise _bad("lines")
    lines = []
    for line in raw_lines:
        if not isinstance(line, dict):
            raise _bad("lines")
        lines.append(OfflineLine(sku_id=_int(line.get("sku_id"), "lines"), qty=_int(line.get("qty"), "lines"),
                                 unit_price=_money(line.get("unit_price"), "lines")))
    raw_tenders = data.get("tenders")
    if not isinstance(raw_tenders, list) or not raw_tenders:
        raise _bad("tenders")
    tenders = []
    for t in raw_tenders:
        if not isinstance(t, dict):
            raise _bad("tenders")
        if t.get("tender") not in OFFLINE_TENDERS:
            raise OfflineTenderNotAllowed(field="tenders")
        reference = t.get("reference", "")
        if not isinstance(reference, str) or len(reference) > 64 or (t["tender"] == "card" and not reference):
            raise _bad("tenders")
        tenders.append(OfflineTender(tender=OFFLINE_TENDERS[t["tender"]], amount=_money(t.get("amount"), "tenders"),
                                     tendered=_money(t.get("tendered", "0.00"), "tenders"), reference=reference))
    clerk_id = data.get("clerk_id")
    if clerk_id is not None:
        clerk_id = _int(clerk_id, "clerk_id")
    sale = OfflineSaleIn(client_uuid=key, till=till, sequence=sequence, receipt_number=receipt, sold_at=sold_at,
                         lines=tuple(lines), tenders=tuple(tenders), clerk_id=clerk_id)
    if money(sum((t.amount for t in tenders), ZERO)) != sale.total:
        raise OfflineTendersMismatch(field="tenders", params={"due": str(sale.total)})
    return sale


# --- applying ------------------------------------------------------------------------------------


def _claim(sale: OfflineSaleIn, *, store: Store, actor) -> int | None:
    """Claim the client UUID; None when it was taken (waits for a concurrent claimer to finish)."""
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {OfflineSale._meta.db_table} (client_uuid, store_id, till, sequence, receipt_number, "
            "sold_at, synced_at, synced_by_id, paid_total, server_total) "
            "VALUES (%s, %s, %s, %s, %s, %s, now(), %s, %s, %s) ON CONFLICT (client_uuid) DO NOTHING RETURNING id",
            [sale.client_uuid, store.pk, sale.till, sale.sequence, sale.receipt_number, sale.sold_at, actor.pk,
             sale.total, sale.total])
        row = cur.fetchone()
    return row[0] if row else None


def _done(sale: OfflineSaleIn) -> SyncResult:
    found = OfflineSale.objects.select_related("order").get(client_uuid=sale.client_uuid)
    return SyncResult(client_uuid=str(sale.client_uuid), status="already_recorded",
                      order_number=found.order.number if found.order else "",
                      conflicts=tuple(found.conflicts.values_list("kind", flat=True)))


def _priced(sale: OfflineSaleIn, *, store: Store,
            exclude: frozenset[int] = frozenset()) -> tuple[PricedSale, PricedSale]:
    """(what the server charges now, what the customer paid), both as priced sales of the lines.
    ``exclude``: promotions that ran out (the customer keeps the price paid all the same)."""
    demand: dict[int, int] = {}
    paid_unit: dict[int, Decimal] = {}
    for line in sale.lines:
        demand[line.sku_id] = demand.get(line.sku_id, 0) + line.qty
        if paid_unit.setdefault(line.sku_id, line.unit_price) != line.unit_price:
            raise _bad("lines", _("One SKU appears at two prices in the offline sale."))
    server = sale_price(demand=demand, channel=Channel.POS, store_id=store.pk, promotions_exclude=exclude)
    server.raise_errors()
    if all(money(ln.line_total) == money(paid_unit[ln.sku.pk] * ln.qty) for ln in server.lines):
        return server, server
    paid = PricedSale(channel=Channel.POS, store_id=store.pk, member=None,
                      lines=tuple(PricedLine(sku=ln.sku, qty=ln.qty, unit_price=paid_unit[ln.sku.pk],
                                             category_id=ln.category_id) for ln in server.lines))
    return server, paid


def _shortfall_book(sale: OfflineSaleIn, offline: OfflineSale, priced: PricedSale, *, store: Store,
                    actor) -> list[OfflineConflict]:
    """Book in what the store's level lacks for this sale (an adjustment awaiting the count)."""
    demand = priced.demand()
    keys = sorted((store.warehouse_id, sku_id, Bucket.SELLABLE) for sku_id in demand)
    stock_locks.levels_lock(keys)
    free = {sku_id: on_hand - reserved for sku_id, on_hand, reserved in StockLevel.objects.filter(
        warehouse_id=store.warehouse_id, bucket=Bucket.SELLABLE, sku_id__in=demand
    ).values_list("sku_id", "on_hand", "reserved")}
    conflicts = []
    for sku_id, qty in sorted(demand.items()):
        short = qty - max(free.get(sku_id, 0), 0)
        if short <= 0:
            continue
        stock.stock_adjust(warehouse=store.warehouse_id, sku_id=sku_id, delta=short, actor=actor,
                           reference=sale.receipt_number,
                           note=f"offline sale {sale.receipt_number} sold {short} more than on the books; "
                                "awaiting count")
        conflicts.append(OfflineConflict(offline_sale=offline, store=store, kind=OfflineConflict.Kind.STOCK_SHORT,
                                         sku_id=sku_id, qty=qty, qty_short=short))
    return conflicts


def _price_conflicts(offline: OfflineSale, server: PricedSale, paid: PricedSale, *,
                     store: Store) -> list[OfflineConflict]:
    if paid is server:
        return []
    paid_lines = {ln.sku.pk: ln for ln in paid.lines}
    return [OfflineConflict(offline_sale=offline, store=store, kind=OfflineConflict.Kind.PRICE_CHANGED,
                            sku_id=ln.sku.pk, qty=ln.qty, paid_amount=paid_lines[ln.sku.pk].line_total,
                            server_amount=ln.line_total)
            for ln in server.lines if ln.line_total != paid_lines[ln.sku.pk].line_total]


def _seller(sale: OfflineSaleIn, *, store: Store, actor):
    """The clerk who made the sale at the till, when they are active staff of the store; else ``actor``."""
    if sale.clerk_id is None or sale.clerk_id == actor.pk:
        return actor
    clerk = get_user_model().objects.filter(pk=sale.clerk_id, is_active=True).first()
    return clerk if clerk is not None and store.pk in staff_store_ids(clerk) else actor


@service
def offline_sale_apply(*, store: Store, actor, sale: OfflineSaleIn) -> SyncResult:
    """Record one offline sale exactly once, in the store's open shift.

    Locks: the client UUID's row (a concurrent post of the same sale waits here, then returns
    this one's result), the open shift FOR SHARE, the store's stock levels of the sale's SKUs
    (fixed order).  Queues what ``pos_sale_create`` queues (order.paid, stock.changed).
    Raises ShiftNotOpen (the till keeps the sale and retries), unknown_sku / inactive_sku and
    the input errors; a stock shortfall or a price change is recorded, never refused.
    """
    offline_id = _claim(sale, store=store, actor=actor)
    if offline_id is None:
        return _done(sale)
    made = Order.objects.filter(client_uuid=sale.client_uuid, store=store).first()
    if made is not None:  # completed online (/pos/till/complete/); only its answer was lost on the way
        OfflineSale.objects.filter(pk=offline_id).update(order=made, server_total=made.total)
        return SyncResult(client_uuid=str(sale.client_uuid), status="already_recorded", order_number=made.number)
    shifts.shift_hold(store)
    server, paid = _priced(sale, store=store)
    seller = _seller(sale, store=store, actor=actor)
    offline = OfflineSale.objects.get(pk=offline_id)
    shortfalls = _shortfall_book(sale, offline, paid, store=store, actor=seller)
    tenders = [TenderIn(t.tender, t.amount, t.reference) for t in sale.tenders]
    exhausted: frozenset[int] = frozenset()
    for _attempt in range(3):
        try:
            # A savepoint: a promotion that ran out while the till was offline undoes only this
            # attempt (promotions_consume refuses before anything else is written).
            with transaction.atomic():
                result = order_services.pos_sale_create(store=store, client_uuid=sale.client_uuid, actor=seller,
                                                        priced=paid, tenders=tenders)
            break
        except PromotionExhausted as exc:
            exhausted |= frozenset(exc.params.get("promotions", ()))
            server, paid = _priced(sale, store=store, exclude=exhausted)
    else:
        raise PromotionExhausted(params={"promotions": sorted(exhausted)})
    conflicts = shortfalls + _price_conflicts(offline, server, paid, store=store)
    for payment, tender in zip(result.payments, sale.tenders):
        if payment.tender == Tender.CASH and tender.tendered > 0:
            shifts.cash_tendered_record(payment=payment, tendered=max(tender.tendered, tender.amount))
    OfflineSale.objects.filter(pk=offline_id).update(order=result.order, server_total=server.total, sold_by=seller)
    OfflineConflict.objects.bulk_create(conflicts)
    return SyncResult(client_uuid=str(sale.client_uuid), status="recorded", order_number=result.order.number,
                      conflicts=tuple(c.kind for c in conflicts))


def offline_batch_apply(*, store: Store, actor, sales: list) -> list[SyncResult]:
    """Apply a till's queued sales in order, each in its own transaction.

    A sale that cannot be read or applied is answered ``rejected`` with its error (the others
    still go through); ``retry: true`` marks errors the till should send again later (no open
    shift), the rest need a manager.
    """
    results = []
    for data in sales:
        key = str(data.get("client_uuid", "")) if isinstance(data, dict) else ""
        try:
            sale = offline_sale_parse(data, store=store)
            results.append(offline_sale_apply(store=store, actor=actor, sale=sale))
        except DomainError as exc:
            error = exc.as_dict()
            error["retry"] = isinstance(exc, shifts.ShiftNotOpen)
            results.append(SyncResult(client_uuid=key, status="rejected", error=error))
    return results
