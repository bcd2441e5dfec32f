"""Import marketplace orders: pull through the adapter, place each with ``order_place``.

Idempotent on the marketplace's order id: orders are placed under channel
``marketplace`` and partner = the marketplace code with ``external_id`` = its
order id, so pulling the same order again returns the first one.  The cursor
the marketplace gave is kept in Redis; losing it only means pulling (and
harmlessly re-placing) orders again.  An order that cannot be placed (unknown
SKU, no stock…) is reported with its error code and logged; the others go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

import redis
from celery import shared_task
from django.db import connection

from catalog.models import Sku
from members import selectors as member_read
from members.exceptions import InvalidPhone
from o2o.db import service
from o2o.errors import DomainError
from o2o.money import ZERO, money
from integrations.marketplaces import MarketplaceAdapter, RemoteOrder, marketplaces
from o2o.ratelimit import redis_client
from orders import services
from orders.models import Channel, Fulfillment, Status
from orders.services import LineIn, TenderIn
from payments.models import Tender
from stores.models import City, Store

log = logging.getLogger(__name__)

FULFILLMENTS = {Fulfillment.PICKUP, Fulfillment.SHIP_WAREHOUSE, Fulfillment.SHIP_STORE}


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)  # order numbers
    existing: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (marketplace order id, error code)


def _cursor_key(code: str) -> str:
    return f"o2o:marketplace:{code}:cursor"


class ImportRefused(DomainError):
    code = "import_refused"


def _buyer(remote: RemoteOrder):
    """The member the marketplace's buyer is, by phone (only an existing member: a marketplace
    buyer is not registered without their consent); they earn points by the channel's rule."""
    if not remote.customer_phone:
        return None
    try:
        return member_read.member_by_phone(remote.customer_phone)
    except InvalidPhone:
        return None


def _marketplace_discount(remote: RemoteOrder, skus: dict[str, int]) -> tuple[Decimal, dict[int, Decimal] | None]:
    """What the marketplace took off our list prices, as the order's discount, so the order is booked
    at what the marketplace charged: (discount, {sku id: its part}).

    Each line keeps the marketplace's own price: its discount is list price less the marketplace's
    price, times the quantity.  When the marketplace charged more than list on some line, only the
    order's net discount is kept, spread by list value (None for the parts); without prices, or when it
    charged more than list in all, nothing is taken off."""
    if not remote.lines or any(line.price is None for line in remote.lines):
        return ZERO, None
    listed = dict(Sku.objects.filter(pk__in=skus.values()).values_list("pk", "list_price"))
    per_sku: dict[int, Decimal] = {}
    for line in remote.lines:
        sku_id = skus[line.sku_code]
        per_sku[sku_id] = per_sku.get(sku_id, ZERO) + (listed[sku_id] - line.price) * line.qty
    total = money(sum(per_sku.values(), ZERO))
    if all(part >= 0 for part in per_sku.values()):
        return total, {sku_id: money(part) for sku_id, part in per_sku.items()}
    return money(max(ZERO, total)), None


@service
def _place(code: str, remote: RemoteOrder):
    """Place the marketplace's order and, when the marketplace says it is paid, pay it in the same
    transaction with the marketplace tender.  A re-pull of an order placed unpaid and paid since
    pays it then; a re-pull of a paid order changes nothing."""
    codes = [line.sku_code for line in remote.lines]
    skus = dict(Sku.objects.filter(code__in=codes).values_list("code", "id"))
    missing = [line.sku_code for line in remote.lines if line.sku_code not in skus]
    if missing:
        raise ImportRefused(code="unknown_sku", params={"skus": missing})
    if remote.fulfillment not in FULFILLMENTS:
        raise ImportRefused(code="invalid_fulfillment")
    store = Store.objects.filter(code=remote.store_code,
                                 is_active=True).first() if remote.store_code else None
    city = City.objects.filter(code=remote.ship_city_code).first() if remote.ship_city_code else None
    discount, line_discounts = _marketplace_discount(remote, skus)
    placed = services.order_place(
        channel=Channel.MARKETPLACE, partner=code, external_id=remote.external_id,
        fulfillment=remote.fulfillment,
        store=store, ship_city_id=city.pk if city else None, ship_address=remote.ship_address,
        customer_name=remote.customer_name, customer_phone=remote.customer_phone,
        member=_buyer(remote), discount=discount, line_discounts=line_discounts,
        lines=[LineIn(sku_id=skus[line.sku_code], qty=line.qty) for line in remote.lines])
    if remote.paid and placed.order.status == Status.PENDING_PAYMENT:
        order = placed.order
        services.order_pay(order=order, tenders=[TenderIn(
            Tender.MARKETPLACE, order.total - order.paid_total,
            card_reference=f"{code}:{remote.external_id}"[:64])])
        order.refresh_from_db()
    return placed


def marketplace_orders_import(*, code: str, adapter: MarketplaceAdapter | None = None) -> ImportResult:
    """Pull one page of the marketplace's orders and place them.  Outside any transaction (network)."""
    if connection.in_atomic_block:
        raise RuntimeError("marketplace_orders_import calls the network; call it outside any transaction")
    adapter = adapter or marketplaces()[code]
    try:
        cursor = redis_client().get(_cursor_key(code))
    except redis.RedisError:
        cursor = None
    batch = adapter.orders_fetch(cursor=cursor.decode() if isinstance(cursor, bytes) else cursor)
    result = ImportResult(failed=[(ident, "unreadable_order") for ident, _reason in batch.rejected])
    for remote in batch.orders:
        try:
            placed = _place(code, remote)
        except DomainError as exc:
            log.warning("marketplace %s order %s not imported: %s", code, remote.external_id, exc.code)
            result.failed.append((remote.external_id, exc.code))
            continue
        (result.created if placed.created else result.existing).append(placed.order.number)
    if batch.cursor:
        try:
            redis_client().set(_cursor_key(code), batch.cursor)
        except redis.RedisError as exc:
            log.warning("marketplace %s cursor not saved: %s", code, exc)
    return result


@shared_task(name="orders.api.imports.marketplace_orders", ignore_result=True)
def marketplace_orders_import_task() -> dict:
    summary = {}
    for code, adapter in marketplaces().items():
        try:
            result = marketplace_orders_import(code=code, adapter=adapter)
        except Exception as exc:  # one marketplace down must not stop the others
            log.warning("marketplace %s import failed: %s", code, exc)
            continue
        summary[code] = {"created": len(result.created), "existing": len(result.existing),
                         "failed": len(result.failed)}
    return summary
