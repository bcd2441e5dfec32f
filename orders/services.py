"""Order writes for every channel: placement, payment, cancellation, expiry, POS sales,
shipping, pickup and returns.  Each public function is one transaction (``@service``).

Locks: an order is locked with ``orders.locks.order_for_update`` before any
state change; stock is changed only through ``inventory.services`` (ordered
row locks + conditional updates); payments through ``payments.services``
(payment row locks).  Side effects leave through the outbox.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from inventory import services as stock
from inventory.models import Bucket
from members.exceptions import PointsCapExceeded
from members.models import Member
from members.selectors import points_redeem_cap, points_value
from o2o.db import service
from o2o.errors import InvalidInput
from o2o.ids import number_next
from o2o.money import ZERO, allocate, money
from orders import allocation, locks, membership
from orders.events import order_event, order_transition
from orders.exceptions import (
    DuplicateDifferentPayload,
    ExchangeMemberMismatch,
    GoodsInTransit,
    InvalidFulfillment,
    InvalidOrderTransition,
    MemberRequired,
    OrderNotPayable,
    OrderNotReturnable,
    PaymentMismatch,
    PickupCodeInvalid,
    ReturnExceedsPurchase,
    ReturnWindowClosed,
    StoreRequired,
    UnknownOrderLine,
    WrongStore,
)
from orders.pricing import PricedSale, sale_price
from orders.models import (
    Channel,
    Fulfillment,
    Order,
    OrderEvent,
    OrderLine,
    Return,
    ReturnLine,
    Shipment,
    ShipmentLine,
    Status,
)
from payments import micropay
from payments import selectors as pay_read
from payments import services as pay
from payments.models import Payment, Refund
from payments.tenders import tender_for
from stores.models import Store

ONLINE_CHANNELS = {Channel.WEB, Channel.MINI_PROGRAM, Channel.MARKETPLACE}
HANDED_OVER = {Status.PICKED_UP, Status.COMPLETED, Status.SHIPPED, Status.PARTIALLY_SHIPPED}


@dataclass(frozen=True)
class LineIn:
    sku_id: int
    qty: int


@dataclass(frozen=True)
class TenderIn:
    tender: str
    amount: Decimal
    card_reference: str = ""
    # A payment-code payment already captured for this sale (payments.micropay), taken as this tender.
    payment_id: int | None = None


@dataclass
class PlaceResult:
    order: Order
    created: bool
    payments: list[Payment] = field(default_factory=list)


# --- helpers ----------------------------------------------------------------------------------


def _payload_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _demand(lines: Sequence[LineIn]) -> dict[int, int]:
    if not lines:
        raise InvalidInput(message="An order needs at least one line.", code="no_lines", field="lines")
    demand: dict[int, int] = {}
    for line in lines:
        if isinstance(line.qty, bool) or not isinstance(line.qty, int) or line.qty <= 0:
            raise stock.InvalidQuantity(params={"qty": str(line.qty)}, field="lines")
        demand[line.sku_id] = demand.get(line.sku_id, 0) + line.qty
    return demand


def _lines_create(order: Order, priced: PricedSale, plan: dict[int, dict[int, int]] | None,
                  warehouse_id: int | None, handed_over: bool = False) -> list[OrderLine]:
    """One OrderLine per SKU and warehouse; a split SKU's discount is re-allocated across its parts."""
    lines, line_no = [], 0
    for row in priced.lines:
        sku = row.sku
        parts = [(w, q[sku.id]) for w, q in plan.items() if sku.id in q] if plan else [(warehouse_id, row.qty)]
        discounts = allocate(row.discount, [Decimal(q) for _, q in parts])
        coupon_parts = allocate(row.coupon, [Decimal(q) for _, q in parts])
        for (wid, qty), disc, coupon in zip(parts, discounts, coupon_parts):
            line_no += 1
            lines.append(OrderLine(order=order, line_no=line_no, sku=sku, sku_code=sku.code, name=sku.name,
                                   unit_price=row.unit_price, qty=qty, discount=disc, warehouse_id=wid,
                                   coupon_discount=coupon, category_id_snapshot=row.category_id,
                                   line_total=money(row.unit_price * qty - disc),
                                   qty_shipped=qty if handed_over else 0))
    return OrderLine.objects.bulk_create(lines)


def _existing(*, lookup: dict[str, Any], request_hash: str) -> Order | None:
    order = Order.objects.filter(**lookup).first()
    if order is None:
        return None
    if order.request_hash != request_hash:
        raise DuplicateDifferentPayload(params={"order": order.number})
    return order


def _insert_order(order: Order, *, lookup: dict[str, Any], request_hash: str) -> tuple[Order, bool]:
    """Insert the order row; if a concurrent submit with the same key won, return that one instead."""
    try:
        with transaction.atomic():
            order.save(force_insert=True)
        return order, True
    except IntegrityError:
        existing = _existing(lookup=lookup, request_hash=request_hash)
        if existing is None:
            raise
        return existing, False


def _new_pickup_code() -> str:
    return f"{secrets.randbelow(10**8):08d}"


def _member_fields(member, quote, *, chosen_guide_id: int | None) -> dict[str, Any]:
    guide = membership.guide_resolve(member=member, chosen_guide_id=chosen_guide_id) if (
        member is not None or chosen_guide_id) else None
    return {"member": member, "guide": guide, "coupon_code": quote.code if quote else "",
            "coupon_discount": quote.discount if quote else ZERO,
            "coupon_cost_ecommerce": quote.ecommerce_amount if quote else ZERO,
            "coupon_cost_store": quote.store_amount if quote else ZERO}


# --- online orders ----------------------------------------------------------------------------


@service
def order_place(*, channel: str, lines: Sequence[LineIn], fulfillment: str, external_id: str | None = None,
                partner: str = "", store: Store | None = None, ship_city_id: int | None = None,
                ship_address: str = "", customer_name: str = "", customer_phone: str = "",
                discount: Decimal = ZERO, actor=None, member=None, coupon_code: str = "",
                chosen_guide_id: int | None = None) -> PlaceResult:
    """Place an online order and reserve its stock.  Idempotent on (channel, partner, external id).

    With a ``member``, the order is attributed to the member's bound guide and a
    ``coupon_code`` of theirs is redeemed on it (restored if the order is cancelled or expires).
    ``chosen_guide_id`` attributes the order to that guide (a QR scene without a member).
    Locks: stock levels of the chosen warehouse(s), ordered; the coupon row.  Queues: ``order.created``.
    Raises: invalid_quantity, unknown_sku, inactive_sku, insufficient_stock, store_required,
    invalid_fulfillment, invalid_discount, duplicate_different_payload, member_not_found and
    the coupon errors (coupon_expired, coupon_used, coupon_out_of_scope, …).
    """
    if channel not in ONLINE_CHANNELS:
        raise InvalidFulfillment(message="Use the POS sale for store sales.", field="channel")
    if fulfillment not in {Fulfillment.PICKUP, Fulfillment.SHIP_WAREHOUSE, Fulfillment.SHIP_STORE}:
        raise InvalidFulfillment(field="fulfillment")
    if fulfillment == Fulfillment.PICKUP and store is None:
        raise StoreRequired(field="store")
    demand = _demand(lines)
    member = membership.member_resolve(member)
    request_hash = _payload_hash({"lines": sorted(demand.items()), "fulfillment": fulfillment,
                                  "store": store.pk if store else None, "city": ship_city_id,
                                  "discount": str(money(discount)), "member": member.pk if member else None,
                                  "coupon": coupon_code or "", **({"guide": chosen_guide_id} if chosen_guide_id else {})})
    lookup = {"channel": channel, "partner": partner, "external_id": external_id}
    if external_id:
        existing = _existing(lookup=lookup, request_hash=request_hash)
        if existing is not None:
            return PlaceResult(existing, created=False)
    priced = sale_price(demand=demand, channel=channel, store_id=store.pk if store else None,
                        order_discount=discount, coupon_code=coupon_code, member=member)
    config = allocation.channel_config(channel)
    warehouses = allocation.candidates(channel=channel, fulfillment=fulfillment, store=store,
                                       ship_city_id=ship_city_id, config=config)
    plan = allocation.allocate(demand=demand, warehouse_ids=warehouses,
                               allow_split=config.allow_split and fulfillment != Fulfillment.PICKUP)
    if fulfillment != Fulfillment.PICKUP:
        kinds = dict(Store.objects.filter(warehouse_id__in=list(plan)).values_list("warehouse_id", "id"))
        fulfillment = Fulfillment.SHIP_STORE if kinds and set(plan) <= set(kinds) else Fulfillment.SHIP_WAREHOUSE
    order = Order(number=number_next("SO"), channel=channel, partner=partner, external_id=external_id,
                  request_hash=request_hash, store=store, fulfillment=fulfillment, status=Status.PENDING_PAYMENT,
                  customer_name=customer_name, customer_phone=customer_phone, ship_city_id=ship_city_id,
                  ship_address=ship_address, subtotal=priced.subtotal, discount_total=priced.discount_total,
                  total=priced.total, created_by=_user(actor),
                  expires_at=timezone.now() + timedelta(minutes=settings.O2O_RESERVATION_TTL_MINUTES),
                  needs_transfer=fulfillment == Fulfillment.PICKUP and store.warehouse_id not in plan,
                  pickup_code=_new_pickup_code() if fulfillment == Fulfillment.PICKUP else None,
                  **_member_fields(member, priced.coupon, chosen_guide_id=chosen_guide_id))
    order, created = _insert_order(order, lookup=lookup, request_hash=request_hash)
    if not created:
        return PlaceResult(order, created=False)
    _lines_create(order, priced, plan, None)
    membership.coupon_redeem(order, priced, actor=actor, partner=partner)
    for warehouse_id, skus in sorted(plan.items()):
        stock.stock_reserve(warehouse=warehouse_id, lines=list(skus.items()), reference=order.number,
                            expires_at=order.expires_at, actor=actor)
    order.status = ""
    order_transition(order, Status.PENDING_PAYMENT, actor=actor, store=store, emit="order.created")
    return PlaceResult(order, created=True)


@service
def order_pay(*, order: Order | int, tenders: Sequence[TenderIn], actor=None, store: Store | None = None) -> Order:
    """Pay an online order with tenders captured at once (cash on delivery, card, cash at pickup).

    Provider tenders (WeChat Pay, Alipay) are paid by their notification, see ``order_payment_notify``.
    Raises order_not_payable, payment_mismatch, invalid_amount.
    """
    order = locks.order_for_update(order)
    if order.status != Status.PENDING_PAYMENT:
        raise OrderNotPayable(params={"status": order.status})
    due = money(order.total - order.paid_total)
    if money(sum((t.amount for t in tenders), ZERO)) != due:
        raise PaymentMismatch(params={"due": str(due)})
    _check_points_cap(order.total, tenders)
    for t in tenders:
        pay.payment_create(reference=order.number, tender=t.tender, amount=t.amount, store=store, actor=actor,
                           card_reference=t.card_reference, member=order.member_id)
    _order_settle_payments(order, actor=actor, store=store)
    return order


@service
def order_pay_member_tenders(*, order: Order | int, tenders: Sequence[TenderIn], actor=None) -> Order:
    """Take part (or all) of an unpaid online order from the member's points or wallet.

    The rest is paid at the provider (``order_payment_start`` asks for what is still due).
    A cancelled or expired order gives these back through the refund of their tender.
    Locks the order, then the member's ledgers (through the tenders).
    Raises order_not_payable, member_required, payment_mismatch (more than is due),
    points_cap_exceeded, points_insufficient, wallet_insufficient.
    """
    order = locks.order_for_update(order)
    if order.status != Status.PENDING_PAYMENT:
        raise OrderNotPayable(params={"status": order.status})
    if order.member_id is None:
        raise MemberRequired(field="member")
    due = money(order.total - order.paid_total)
    if money(sum((t.amount for t in tenders), ZERO)) > due:
        raise PaymentMismatch(params={"due": str(due)})
    _check_points_cap(order.total, tenders)
    for t in tenders:
        pay.payment_create(reference=order.number, tender=t.tender, amount=t.amount, actor=actor,
                           member=order.member_id)
    _order_settle_payments(order, actor=actor, store=None)
    return order


def _check_points_cap(total: Decimal, tenders: Sequence[TenderIn]) -> None:
    """Points may pay at most the programme's share of an order."""
    by_points = money(sum((t.amount for t in tenders if t.tender == "points"), ZERO))
    if by_points > 0 and by_points > points_value(points_redeem_cap(order_amount=total)):
        raise PointsCapExceeded(params={"cap": str(points_value(points_redeem_cap(order_amount=total)))})


@service
def order_payment_start(*, order: Order | int, tender: str, actor=None) -> Payment:
    """Open a pending provider payment for what is still due (the client then pays at the provider)."""
    order = locks.order_for_update(order)
    if order.status != Status.PENDING_PAYMENT:
        raise OrderNotPayable(params={"status": order.status})
    return pay.payment_create(reference=order.number, tender=tender, amount=money(order.total - order.paid_total),
                              actor=actor)


@service
def order_payment_notify(*, provider: str, headers: dict[str, str], body: bytes) -> Order | None:
    """Apply a provider notification exactly once and, when it completes payment, mark the order paid.

    A payment that lands on a cancelled or expired order is refunded at once
    (recorded on the order) rather than resurrecting it.
    """
    result = pay.notification_handle(provider=provider, headers=headers, body=body)
    if not (result.applied and result.captured):
        return None
    order = Order.objects.filter(number=result.reference).first()
    if order is None:
        return None
    order = locks.order_for_update(order)
    if order.status == Status.PENDING_PAYMENT:
        _order_settle_payments(order, actor=None, store=None)
    elif order.status in {Status.CANCELLED, Status.EXPIRED}:
        payment = result.payment
        pay.refund_create(payment=payment, amount=payment.amount, reason="payment after cancellation",
                          policy="late payment on a closed order refunded to the original account")
        order_event(order, OrderEvent.Kind.PAYMENT, reason="late payment refunded",
                    data={"payment_id": payment.pk, "amount": str(payment.amount)})
    return order


def _order_settle_payments(order: Order, *, actor, store) -> None:
    """Recompute the captured total; when it covers the order, pay it and confirm its stock."""
    captured = pay_read.reference_totals(reference=order.number).captured
    Order.objects.filter(pk=order.pk).update(paid_total=captured, updated_at=timezone.now())
    order.paid_total = captured
    if captured < order.total:
        return
    order.paid_at = timezone.now()
    Order.objects.filter(pk=order.pk).update(paid_at=order.paid_at)
    order_transition(order, Status.PAID, actor=actor, store=store, emit="order.paid",
                     data={"paid_total": str(captured)})
    membership.on_paid(order)
    stock.reservations_confirm(reference=order.number)
    if order.fulfillment == Fulfillment.PICKUP:
        if order.needs_transfer:
            _pickup_transfer_create(order, actor=actor)
        else:
            order_transition(order, Status.READY_FOR_PICKUP, actor=actor, store=order.store,
                             emit="order.ready_for_pickup")


def _pickup_transfer_create(order: Order, *, actor) -> None:
    by_source: dict[int, list[tuple[int, int]]] = {}
    for line in order.lines.all():
        if line.warehouse_id != order.store.warehouse_id:
            by_source.setdefault(line.warehouse_id, []).append((line.sku_id, line.qty))
    for source, lines in sorted(by_source.items()):
        stock.transfer_create_for_reference(source=source, destination=order.store.warehouse_id,
                                            reference=order.number, lines=lines, actor=actor)
    order_event(order, OrderEvent.Kind.NOTE, actor=actor, reason="transfer to pickup store requested",
                data={"sources": sorted(by_source)})


@service
def order_ready_for_pickup(*, reference: str, actor=None) -> Order | None:
    """Called when a transfer for the order arrives: ready once the store holds every unit."""
    order = Order.objects.filter(number=reference, fulfillment=Fulfillment.PICKUP).first()
    if order is None:
        return None
    order = locks.order_for_update(order)
    if order.status != Status.PAID:
        return order
    held = stock.reserved_units(reference=order.number, warehouse=order.store.warehouse_id)
    needed: dict[int, int] = {}
    for line in order.lines.all():
        needed[line.sku_id] = needed.get(line.sku_id, 0) + line.qty
    if all(held.get(s, 0) >= q for s, q in needed.items()):
        lines = OrderLine.objects.filter(order=order)
        lines.update(warehouse_id=order.store.warehouse_id)
        order_transition(order, Status.READY_FOR_PICKUP, actor=actor, store=order.store,
                         emit="order.ready_for_pickup")
    return order


@service
def order_cancel(*, order: Order | int, actor=None, reason: str = "") -> Order:
    """Cancel before the goods leave: release held stock; refund what was paid to the original tenders."""
    order = locks.order_for_update(order)
    if order.status not in {Status.PENDING_PAYMENT, Status.PAID, Status.READY_FOR_PICKUP}:
        raise InvalidOrderTransition(params={"from": order.status, "to": Status.CANCELLED})
    if stock.transfers_in_transit_for(reference=order.number):
        raise GoodsInTransit(params={"order": order.number})
    stock.reservations_release(reference=order.number, actor=actor)
    for transfer in stock.transfers_open_for(reference=order.number):
        stock.transfer_cancel(transfer=transfer, actor=actor)
    _payments_cancel_pending(order, actor=actor)
    refundable = money(order.paid_total - order.refunded_total)
    if refundable > 0:
        _refund(order, refundable, actor=actor, store=None, reason=reason or "order cancelled")
    membership.coupon_restore(order, actor=actor)
    order_transition(order, Status.CANCELLED, actor=actor, reason=reason, emit="order.cancelled")
    return order


def orders_expire(*, now=None, batch_size: int = 200) -> int:
    """Expire unpaid online orders past their pay-by time, releasing their stock.  Idempotent."""
    now = now or timezone.now()
    ids = list(Order.objects.filter(status=Status.PENDING_PAYMENT, expires_at__lte=now)
               .order_by("id").values_list("id", flat=True)[:batch_size])
    expired = 0
    for order_id in ids:
        expired += _order_expire(order_id)
    return expired


@service
def _order_expire(order_id: int) -> int:
    order = locks.order_for_update(order_id)
    if order.status != Status.PENDING_PAYMENT:
        return 0
    stock.reservations_release(reference=order.number, expired=True)
    _payments_cancel_pending(order, actor=None)
    # Points or wallet taken at placement go back to the member.
    _refund(order, money(order.paid_total - order.refunded_total), actor=None, store=None,
            reason="order expired unpaid")
    membership.coupon_restore(order, actor=None)
    order_transition(order, Status.EXPIRED, reason="not paid in time", emit="order.cancelled")
    return 1


# --- POS ----------------------------------------------------------------------------------------


@service
def pos_sale_create(*, store: Store, client_uuid: uuid.UUID | str, tenders: Sequence[TenderIn],
                    lines: Sequence[LineIn] = (), priced: PricedSale | None = None, actor=None,
                    discount: Decimal = ZERO, customer_phone: str = "", member=None, coupon_code: str = "",
                    guide_id: int | None = None) -> PlaceResult:
    """Ring up a store sale: stock leaves the store's stockroom now, the payments are captured.

    With a ``member``: their coupon is verified (核销) and redeemed, wallet and points
    tenders draw on their ledgers, points are earned (frozen for the return window) and
    the guide chosen here — or else the member's bound guide — accrues commission.
    ``priced``: the sale as the counter priced it (``orders.pricing.sale_price``), taken as it is;
    without it, ``lines``, ``discount``, ``coupon_code`` and ``member`` are priced here, once.
    Idempotent on the client-generated sale UUID: a retried submit returns the first sale.
    A tender with ``payment_id`` is a payment-code payment captured for this sale before
    its transaction (``payments.micropay``): it is taken over, not charged again.
    Raises: invalid_quantity, unknown_sku, inactive_sku, insufficient_stock, payment_mismatch,
    duplicate_different_payload, member_not_found, not_a_guide, points_cap_exceeded,
    points_insufficient, wallet_insufficient and the coupon errors.
    """
    try:
        client_uuid = uuid.UUID(str(client_uuid))
    except ValueError:
        raise InvalidInput(message="Invalid sale id.", code="invalid_sale_id", field="client_uuid")
    if priced is not None:
        demand, member = priced.demand(), priced.member
        discount, coupon_code = priced.order_discount, priced.coupon_code
    else:
        demand, member = _demand(lines), membership.member_resolve(member)
    request_hash = _payload_hash({"store": store.pk, "lines": sorted(demand.items()),
                                  "tenders": [(t.tender, str(money(t.amount))) for t in tenders],
                                  "discount": str(money(discount)), "member": member.pk if member else None,
                                  "coupon": coupon_code or "", "guide": guide_id})
    lookup = {"client_uuid": client_uuid}
    existing = _existing(lookup=lookup, request_hash=request_hash)
    if existing is not None:
        return PlaceResult(existing, created=False)
    if priced is None:
        priced = sale_price(demand=demand, channel=Channel.POS, store_id=store.pk, order_discount=discount,
                            coupon_code=coupon_code, member=member)
    total = priced.total
    if money(sum((t.amount for t in tenders), ZERO)) != total:
        raise PaymentMismatch(params={"due": str(total)})
    _check_points_cap(total, tenders)
    order = Order(number=number_next("PS"), channel=Channel.POS, client_uuid=client_uuid, request_hash=request_hash,
                  store=store, fulfillment=Fulfillment.IN_STORE, status=Status.COMPLETED,
                  subtotal=priced.subtotal, discount_total=priced.discount_total, total=total,
                  created_by=_user(actor), customer_phone=customer_phone,
                  **_member_fields(member, priced.coupon, chosen_guide_id=guide_id))
    order, created = _insert_order(order, lookup=lookup, request_hash=request_hash)
    if not created:
        return PlaceResult(order, created=False)
    lines_made = _lines_create(order, priced, None, store.warehouse_id, handed_over=True)
    stock.stock_sell(warehouse=store.warehouse_id, lines=[(ln.sku_id, ln.qty) for ln in lines_made],
                     reference=order.number, actor=actor)
    membership.coupon_redeem(order, priced, actor=actor)
    payments = [pay.payment_create(reference=order.number, tender=t.tender, amount=t.amount, store=store,
                                   actor=actor, card_reference=t.card_reference, member=member)
                if t.payment_id is None else
                micropay.micropay_attach(payment=t.payment_id, client_uuid=client_uuid,
                                         reference=order.number, tender=t.tender, amount=money(t.amount),
                                         store=store)
                for t in tenders]
    captured = pay_read.reference_totals(reference=order.number).captured
    if captured != total:
        raise PaymentMismatch(message="POS tenders must be captured at the counter.", params={"due": str(total)})
    order.paid_total, order.paid_at = captured, timezone.now()
    order.handed_over_at = order.paid_at
    Order.objects.filter(pk=order.pk).update(paid_total=captured, paid_at=order.paid_at,
                                             handed_over_at=order.paid_at)
    order.status = ""
    order_transition(order, Status.COMPLETED, actor=actor, store=store, emit="order.paid")
    paid = membership.money_paid(payments)  # the payments just taken: no need to read them back
    membership.on_paid(order, paid=paid)
    membership.on_handed_over(order, lines_made, frozen_until=return_window_end(order), paid=paid)
    return PlaceResult(order, created=True, payments=payments)


# --- shipping ---------------------------------------------------------------------------------------


@service
def shipment_create(*, order: Order | int, lines: Sequence[tuple[int, int]] | None = None,
                    warehouse_id: int | None = None, actor=None) -> Shipment:
    """Start picking a (partial) shipment from one warehouse of the order.  Default: all that is left."""
    order = locks.order_for_update(order)
    if order.fulfillment not in {Fulfillment.SHIP_WAREHOUSE, Fulfillment.SHIP_STORE} or order.status not in {
            Status.PAID, Status.PARTIALLY_SHIPPED}:
        raise InvalidOrderTransition(params={"from": order.status, "to": "shipment"})
    order_lines = {ln.pk: ln for ln in order.lines.all()}
    pending = _pending_shipment_qty(order)
    if lines is None:
        lines = [(pk, ln.qty - ln.qty_shipped - pending.get(pk, 0)) for pk, ln in order_lines.items()
                 if (warehouse_id is None or ln.warehouse_id == warehouse_id)]
        lines = [(pk, q) for pk, q in lines if q > 0]
    chosen = []
    for line_id, qty in lines:
        ln = order_lines.get(line_id)
        if ln is None:
            raise UnknownOrderLine(params={"line_id": line_id})
        stock._check_qty(qty)
        if qty > ln.qty - ln.qty_shipped - pending.get(line_id, 0):
            raise ReturnExceedsPurchase(message="More than is left to ship.", code="ship_exceeds_order",
                                        params={"line_id": line_id})
        chosen.append((ln, qty))
    warehouses = {ln.warehouse_id for ln, _ in chosen}
    if not chosen or len(warehouses) != 1:
        raise InvalidInput(message="A shipment leaves from one warehouse with at least one line.",
                           code="invalid_shipment")
    shipment = Shipment.objects.create(number=number_next("SH"), order=order, warehouse_id=warehouses.pop(),
                                       created_by=_user(actor))
    ShipmentLine.objects.bulk_create([ShipmentLine(shipment=shipment, order_line=ln, qty=q) for ln, q in chosen])
    order_event(order, OrderEvent.Kind.SHIPMENT, actor=actor, reason="picking",
                data={"shipment": shipment.number})
    return shipment


def _pending_shipment_qty(order: Order) -> dict[int, int]:
    pending: dict[int, int] = {}
    for line_id, qty in ShipmentLine.objects.filter(
            shipment__order=order, shipment__status__in=[Shipment.Status.PICKING, Shipment.Status.PACKED]
    ).values_list("order_line_id", "qty"):
        pending[line_id] = pending.get(line_id, 0) + qty
    return pending


@service
def shipment_pack(*, shipment: Shipment | int, actor=None) -> Shipment:
    shipment = locks.shipment_for_update(shipment)
    if shipment.status != Shipment.Status.PICKING:
        raise InvalidOrderTransition(params={"from": shipment.status, "to": Shipment.Status.PACKED})
    shipment.status = Shipment.Status.PACKED
    shipment.save(update_fields=["status"])
    order_event(shipment.order, OrderEvent.Kind.SHIPMENT, actor=actor, reason="packed",
                data={"shipment": shipment.number})
    return shipment


@service
def shipment_ship(*, shipment: Shipment | int, carrier: str, tracking_number: str, actor=None) -> Shipment:
    """Hand the parcel to the carrier: the held units leave the warehouse; the order is (partially) shipped.

    For a ship-from-store order, only staff of that store may confirm.
    """
    if not carrier.strip() or not tracking_number.strip():
        raise InvalidInput(message="Carrier and tracking number are required.", code="tracking_required",
                           field="tracking_number")
    shipment = locks.shipment_for_update(shipment)
    order = locks.order_for_update(shipment.order_id)
    if shipment.status == Shipment.Status.SHIPPED:
        raise InvalidOrderTransition(params={"from": shipment.status, "to": Shipment.Status.SHIPPED})
    _check_store_staff_for_warehouse(actor, shipment.warehouse_id)
    ship_lines = list(shipment.lines.select_related("order_line"))
    stock.reservations_consume(reference=order.number, warehouse=shipment.warehouse_id,
                               lines=[(sl.order_line.sku_id, sl.qty) for sl in ship_lines], actor=actor)
    for sl in ship_lines:
        OrderLine.objects.filter(pk=sl.order_line_id).update(qty_shipped=F("qty_shipped") + sl.qty)
    shipment.status, shipment.carrier, shipment.tracking_number = (Shipment.Status.SHIPPED, carrier.strip(),
                                                                   tracking_number.strip())
    shipment.shipped_by, shipment.shipped_at = _user(actor), timezone.now()
    shipment.save(update_fields=["status", "carrier", "tracking_number", "shipped_by", "shipped_at"])
    left = sum(ln.qty - ln.qty_shipped for ln in OrderLine.objects.filter(order=order))
    if left == 0:
        order.handed_over_at = timezone.now()
        Order.objects.filter(pk=order.pk).update(handed_over_at=order.handed_over_at)
        membership.on_handed_over(order, list(OrderLine.objects.filter(order=order).order_by("line_no")),
                                  frozen_until=return_window_end(order))
    order_transition(order, Status.SHIPPED if left == 0 else Status.PARTIALLY_SHIPPED, actor=actor,
                     emit="order.shipped", data={"shipment": shipment.number, "carrier": shipment.carrier,
                                                 "tracking_number": shipment.tracking_number})
    return shipment


def _check_store_staff_for_warehouse(actor, warehouse_id: int) -> None:
    from stores.selectors import staff_store_ids

    store = Store.objects.filter(warehouse_id=warehouse_id).first()
    if store is None or actor is None:
        return  # warehouse shipments are confirmed by HQ/warehouse staff or a partner system
    if store.pk not in staff_store_ids(actor):
        raise WrongStore(message="Only staff of the shipping store can confirm this shipment.")


# --- pickup ---------------------------------------------------------------------------------------


def pickup_lookup(*, code: str, store: Store, actor=None) -> Order:
    """Find the order for a pickup code, checking it is picked up at ``store``.

    Every attempt is audited (who, where, when); a refused attempt is recorded
    in its own transaction, then the error is raised.
    """
    order = Order.objects.filter(pickup_code=(code or "").strip()).select_related("store").first()
    if order is None:
        raise PickupCodeInvalid(field="code")
    if order.store_id != store.pk:
        _pickup_rejected(order, store=store, actor=actor)
        raise WrongStore(field="code")
    _pickup_audit(order, store=store, actor=actor)
    return order


@service
def _pickup_audit(order: Order, *, store: Store, actor) -> None:
    order_event(order, OrderEvent.Kind.PICKUP_VERIFIED, actor=actor, store=store, reason="code verified")


@service
def _pickup_rejected(order: Order, *, store: Store, actor) -> None:
    order_event(order, OrderEvent.Kind.PICKUP_REJECTED, actor=actor, store=store, reason="wrong store")


@service
def pickup_handover(*, code: str, store: Store, actor=None) -> Order:
    """Give the goods to the customer: verify code and store, consume the store's hold, mark picked up.

    Two clerks confirming the same code at once: the order row lock lets one
    through; the other gets invalid_order_state.
    """
    order = Order.objects.filter(pickup_code=(code or "").strip()).first()
    if order is None:
        raise PickupCodeInvalid(field="code")
    order = locks.order_for_update(order)
    if order.store_id != store.pk:
        raise WrongStore(field="code")
    if order.status != Status.READY_FOR_PICKUP:
        raise InvalidOrderTransition(params={"from": order.status, "to": Status.PICKED_UP})
    _check_store_staff(actor, store)
    lines = list(order.lines.all())
    stock.reservations_consume(reference=order.number, warehouse=store.warehouse_id,
                               lines=[(ln.sku_id, ln.qty) for ln in lines], actor=actor)
    OrderLine.objects.filter(order=order).update(qty_shipped=F("qty"))
    order.handed_over_at = timezone.now()
    Order.objects.filter(pk=order.pk).update(handed_over_at=order.handed_over_at)
    order_transition(order, Status.PICKED_UP, actor=actor, store=store, reason="handed over",
                     emit="order.picked_up")
    membership.on_handed_over(order, lines, frozen_until=return_window_end(order))
    return order


def _check_store_staff(actor, store: Store) -> None:
    from stores.selectors import staff_store_ids

    if actor is not None and store.pk not in staff_store_ids(actor):
        raise WrongStore(message="You are not staff of this store.")


# --- returns ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnLineIn:
    order_line_id: int
    qty: int
    condition: str = ReturnLine.Condition.SELLABLE


def return_window_end(order: Order):
    """The end of the order's return window: handed-over time + the channel's window days."""
    start = order.handed_over_at or order.paid_at or order.created_at
    return start + timedelta(days=allocation.channel_config(order.channel).return_window_days)


def line_refund_amount(line: OrderLine, already_returned: int, qty: int) -> Decimal:
    """The exact refund for units ``already_returned+1 … +qty`` of a line, allocated per unit to the fen."""
    per_unit = allocate(line.line_total, [Decimal(1)] * line.qty)
    return money(sum(per_unit[already_returned:already_returned + qty], ZERO))


@service
def return_create(*, order: Order | int, store: Store, lines: Sequence[ReturnLineIn], actor=None,
                  reason: str = "", client_uuid: uuid.UUID | str | None = None, approved_by=None) -> Return:
    """Take back goods of any order at any store; restock there; refund exactly to the original tenders.

    Locks: the order row, then its lines are read under that lock (so two returns of
    the same line serialize).  After the channel's return window, a manager's
    ``approved_by`` is required (recorded on the return).  Queues ``order.returned``.
    Raises return_exceeds_purchase, order_not_returnable, return_window_closed,
    unknown_order_line, invalid_quantity.
    """
    if client_uuid:
        existing = Return.objects.filter(client_uuid=client_uuid).first()
        if existing:
            return existing
    order = locks.order_for_update(order)
    ret = _return_goods(order, store=store, lines=lines, actor=actor, reason=reason, client_uuid=client_uuid,
                        approved_by=approved_by)
    ret.refund_policy = _refund(order, ret.refund_total, actor=actor, store=store, reason=f"return {ret.number}")
    ret.save(update_fields=["refund_policy"])
    _after_return(order, ret, actor=actor, store=store)
    order_event(order, OrderEvent.Kind.RETURN, actor=actor, store=store, reason=reason,
                data={"return": ret.number, "refund": str(ret.refund_total)}, emit="order.returned")
    return ret


def _return_goods(order: Order, *, store: Store, lines: Sequence[ReturnLineIn], actor, reason: str,
                  client_uuid, approved_by) -> Return:
    """Record a return of ``order`` (locked by the caller) and restock; the refund is the caller's."""
    if order.status not in HANDED_OVER:
        raise OrderNotReturnable(params={"status": order.status})
    if approved_by is None and return_window_end(order) < timezone.now():
        raise ReturnWindowClosed(params={"until": return_window_end(order).isoformat()})
    order_lines = {ln.pk: ln for ln in order.lines.all()}
    picked: dict[int, list[ReturnLineIn]] = {}
    for rl in lines:
        if rl.order_line_id not in order_lines:
            raise UnknownOrderLine(params={"line_id": rl.order_line_id})
        stock._check_qty(rl.qty)
        if rl.condition not in ReturnLine.Condition.values:
            raise InvalidInput(message="Unknown condition.", code="invalid_condition", field="condition")
        picked.setdefault(rl.order_line_id, []).append(rl)
    if not picked:
        raise InvalidInput(message="Pick at least one line to return.", code="no_lines", field="lines")
    ret = Return(number=number_next("RT"), order=order, store=store, reason=reason, refund_total=ZERO,
                 created_by=_user(actor), client_uuid=client_uuid or None, approved_by=_user(approved_by))
    ret.save()
    return_lines, restock = [], {ReturnLine.Condition.SELLABLE: [], ReturnLine.Condition.DAMAGED: []}
    for line_id, items in picked.items():
        ln = order_lines[line_id]
        qty = sum(i.qty for i in items)
        if ln.qty_returned + qty > ln.qty_shipped:
            raise ReturnExceedsPurchase(params={"line_id": line_id, "returnable": ln.qty_shipped - ln.qty_returned})
        done, refund = ln.qty_returned, ZERO
        for item in items:
            amount = line_refund_amount(ln, done, item.qty)
            done += item.qty
            refund += amount
            return_lines.append(ReturnLine(ret=ret, order_line=ln, qty=item.qty, condition=item.condition,
                                           refund_amount=amount))
            restock[item.condition].append((ln.sku_id, item.qty))
        OrderLine.objects.filter(pk=ln.pk).update(qty_returned=F("qty_returned") + qty,
                                                  refunded_amount=F("refunded_amount") + refund)
    ReturnLine.objects.bulk_create(return_lines)
    for condition, items in restock.items():
        if items:
            stock.stock_restock_return(warehouse=store.warehouse_id, lines=items, reference=ret.number,
                                       actor=actor, bucket=Bucket.SELLABLE if condition == "sellable"
                                       else Bucket.DAMAGED)
    ret.refund_total = money(sum((r.refund_amount for r in return_lines), ZERO))
    ret.save(update_fields=["refund_total"])
    return ret


def _after_return(order: Order, ret: Return, *, actor, store: Store, reason: str = "") -> None:
    left = sum(ln.qty - ln.qty_returned for ln in OrderLine.objects.filter(order=order))
    membership.on_returned(order, refund=ret.refund_total, reference=ret.number, fully_returned=left == 0,
                           actor=actor, store_id=store.pk, reason=reason or f"return {ret.number}")


@dataclass
class ExchangeResult:
    ret: Return
    order: Order
    credit: Decimal
    refunded: Decimal


def exchange_member(order: Order, chosen: Member | None) -> Member | None:
    """The member an exchange sale belongs to: the original order's, or the one the clerk attached
    when the original had none.  Raises ExchangeMemberMismatch for another member than the original's."""
    if order.member_id is None:
        return chosen
    original = membership.member_resolve(order.member_id)  # a merged duplicate: the member it became
    if chosen is not None and chosen.pk != original.pk:
        raise ExchangeMemberMismatch(field="member", params={"order": order.number})
    return original


@service
def exchange_create(*, order: Order | int, store: Store, return_lines: Sequence[ReturnLineIn],
                    tenders: Sequence[TenderIn], client_uuid: uuid.UUID | str, new_lines: Sequence[LineIn] = (),
                    priced: PricedSale | None = None, actor=None, reason: str = "exchange",
                    approved_by=None, member=None, guide_id: int | None = None) -> ExchangeResult:
    """Return goods and sell new ones in one operation; only the price difference changes hands.

    The returned value R pays for the new sale (total N) as exchange credit up to
    min(R, N): the original order is refunded that part with method "exchange"
    (no money moves, and points or wallet money that paid for it stay in the credit:
    they are not given back as well) and the new sale takes it as an
    ``exchange_credit`` payment.  If N > R the customer pays N − R with ``tenders``;
    if N < R the rest, R − N, is refunded to the original tenders as in any return.
    The new sale belongs to the original order's member (a ``member`` — or the
    ``priced`` sale's — may be attached only when the original had none), so it
    earns points, counts in the member's spend and is attributed to ``guide_id`` or
    else the member's bound guide, like any sale; the returned lines' points and
    commission are reversed as in any return.  Idempotent on the new sale's
    ``client_uuid``.  ``priced``: the new goods as the counter priced them (else
    ``new_lines`` are priced here).  Raises exchange_member_mismatch and what
    return_create and pos_sale_create raise.
    """
    order = locks.order_for_update(order)
    chosen = priced.member if priced is not None and priced.member is not None else membership.member_resolve(member)
    member = exchange_member(order, chosen)
    ret = _return_goods(order, store=store, lines=return_lines, actor=actor, reason=reason, client_uuid=None,
                        approved_by=approved_by)
    if priced is None:
        priced = sale_price(demand=_demand(new_lines), channel=Channel.POS, store_id=store.pk, member=member)
    elif priced.member != member:
        priced = replace(priced, member=member)
    credit = min(ret.refund_total, priced.total)
    sale_tenders = ([TenderIn("exchange_credit", credit)] if credit > 0 else []) + list(tenders)
    sale = pos_sale_create(store=store, client_uuid=client_uuid, priced=priced, tenders=sale_tenders,
                           actor=actor, customer_phone=member.phone if member else order.customer_phone,
                           guide_id=guide_id)
    if not sale.created:
        raise DuplicateDifferentPayload(message="This sale id was already used.", params={"order": sale.order.number})
    policies = [_refund(order, credit, actor=actor, store=store, reason=f"exchange {ret.number}", exchange=True)]
    rest = money(ret.refund_total - credit)
    policies.append(_refund(order, rest, actor=actor, store=store, reason=f"return {ret.number}"))
    ret.exchange_order = sale.order
    ret.refund_policy = "; ".join(p for p in policies if p)
    ret.save(update_fields=["exchange_order", "refund_policy"])
    _after_return(order, ret, actor=actor, store=store,
                  reason=f"exchange {ret.number}: new sale {sale.order.number}")
    order_event(order, OrderEvent.Kind.RETURN, actor=actor, store=store, reason=reason,
                data={"return": ret.number, "refund": str(ret.refund_total), "exchange_order": sale.order.number,
                      "credit": str(credit)}, emit="order.returned")
    return ExchangeResult(ret=ret, order=sale.order, credit=credit, refunded=rest)


def _refunds_proportional(order: Order, amount: Decimal) -> list[tuple[Payment, Decimal]]:
    """Split a refund across the order's captured payments in proportion to what each can still refund.

    So a return of half an order paid half in points and half in cash gives back half
    the points and half the cash; the parts add up to ``amount`` to the fen.
    """
    payments = [p for p in pay_read.payments_for_reference(reference=order.number)
                .filter(status=Payment.Status.CAPTURED) if p.refundable_amount > 0]
    parts = allocate(amount, [p.refundable_amount for p in payments]) if payments else []
    if not payments or sum(parts, ZERO) != amount or any(part > p.refundable_amount
                                                        for p, part in zip(payments, parts)):
        # Let payments say why (over-refund) with its own error.
        return pay.refunds_allocate(reference=order.number, amount=amount)
    return [(p, part) for p, part in zip(payments, parts) if part > 0]


def _payments_cancel_pending(order: Order, *, actor) -> None:
    for payment in pay_read.payments_for_reference(reference=order.number).filter(status=Payment.Status.PENDING):
        pay.payment_cancel(payment=payment, actor=actor)


def _refund_method(payment: Payment, store: Store | None) -> str:
    # Cash (and exchange credit, which no account stands behind) is paid out where the customer stands.
    if payment.tender in ("cash", "exchange_credit") and store is not None:
        return Refund.Method.CASH
    return Refund.Method.ORIGINAL


def refund_policy_for(payment: Payment, store: Store | None) -> str:
    """The refund policy: money always goes back to the tender it came from.

    An online (provider) payment returned at a store counter is refunded to the
    customer's original WeChat Pay / Alipay account, not paid out of the drawer;
    cash is paid out at the receiving store; a card is credited back to the card.
    """
    kind = tender_for(payment.tender)
    where = f" at store {store.code}" if store else ""
    if payment.tender == "exchange_credit":
        return f"exchange credit: paid out in cash{where}"
    if kind.provider_backed:
        return f"{payment.tender}: refunded to the original account{where}"
    return f"{payment.tender}: refunded to the original tender{where}"


def _refund(order: Order, amount: Decimal, *, actor, store: Store | None, reason: str,
            exchange: bool = False) -> str:
    """Refund ``amount`` across the order's captured payments; returns the policy text recorded."""
    if amount <= 0:
        return ""
    policies = []
    for payment, part in _refunds_proportional(order, amount):
        if exchange:
            method, policy = Refund.Method.EXCHANGE, f"{payment.tender}: credited to the exchange sale"
        else:
            method, policy = _refund_method(payment, store), refund_policy_for(payment, store)
        pay.refund_create(payment=payment, amount=part, reason=reason, actor=actor, store=store, policy=policy,
                          method=method)
        policies.append(policy)
    Order.objects.filter(pk=order.pk).update(refunded_total=F("refunded_total") + amount,
                                             updated_at=timezone.now())
    order.refunded_total = money(order.refunded_total + amount)
    return "; ".join(dict.fromkeys(policies))


def _user(actor):
    return actor if actor is not None and getattr(actor, "pk", None) else None
