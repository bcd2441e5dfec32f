"""Fulfilment: pickup in store (transfer, readiness, the code handed over) and shipping (partial
shipments, packing, carrier and tracking)."""

from __future__ import annotations

from typing import Sequence

from django.db.models import F
from django.utils import timezone

from inventory import services as stock
from o2o.db import service
from o2o.errors import InvalidInput
from o2o.ids import number_next
from orders import locks, membership
from orders.events import order_event, order_transition
from orders.exceptions import (
    InvalidOrderTransition,
    PickupCodeInvalid,
    ReturnExceedsPurchase,
    UnknownOrderLine,
    WrongStore,
)
from orders.models import (
    Fulfillment,
    Order,
    OrderEvent,
    OrderLine,
    Shipment,
    ShipmentLine,
    Status,
)
from stores.models import Store
from orders.services.cod import cod_awaiting
from orders.services.shared import (
    _check_store_staff,
    _check_store_staff_for_warehouse,
    _user,
    return_window_end,
)


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
def shipment_create(*, order: Order | int, lines: Sequence[tuple[int, int]] | None = None,
                    warehouse_id: int | None = None, actor=None) -> Shipment:
    """Start picking a (partial) shipment from one warehouse of the order.  Default: all that is left."""
    order = locks.order_for_update(order)
    shippable = order.status in {Status.PAID, Status.PARTIALLY_SHIPPED} or (
        order.status == Status.PENDING_PAYMENT and cod_awaiting(order))
    if order.fulfillment not in {Fulfillment.SHIP_WAREHOUSE, Fulfillment.SHIP_STORE} or not shippable:
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
                data={"shipment": shipment.number}, emit="order.updated")
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
    order = locks.order_for_update(shipment.order_id)
    if shipment.status != Shipment.Status.PICKING:
        raise InvalidOrderTransition(params={"from": shipment.status, "to": Shipment.Status.PACKED})
    shipment.status = Shipment.Status.PACKED
    shipment.save(update_fields=["status", "updated_at"])
    order_event(order, OrderEvent.Kind.SHIPMENT, actor=actor, reason="packed",
                data={"shipment": shipment.number}, emit="order.updated")
    return shipment


@service
def shipment_ship(*, shipment: Shipment | int, carrier: str, tracking_number: str, actor=None) -> Shipment:
    """Hand the parcel to the carrier: the held units leave the warehouse; the order is (partially) shipped.

    For a ship-from-store order, only staff of that store may confirm.  A cash-on-delivery order
    ships unpaid: its points and commission accrue when the courier's remittance pays it.
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
    shipment.save(update_fields=["status", "carrier", "tracking_number", "shipped_by", "shipped_at", "updated_at"])
    left = sum(ln.qty - ln.qty_shipped for ln in OrderLine.objects.filter(order=order))
    if left == 0:
        order.handed_over_at = timezone.now()
        Order.objects.filter(pk=order.pk).update(handed_over_at=order.handed_over_at)
        if order.paid_at is not None:
            membership.on_handed_over(order, list(OrderLine.objects.filter(order=order).order_by("line_no")),
                                      frozen_until=return_window_end(order))
    order_transition(order, Status.SHIPPED if left == 0 else Status.PARTIALLY_SHIPPED, actor=actor,
                     emit="order.shipped", data={"shipment": shipment.number, "carrier": shipment.carrier,
                                                 "tracking_number": shipment.tracking_number})
    return shipment


def _pickup_order(code: str, queryset) -> Order | None:
    """The order a pickup code stands for: the open one holding it, else the last that held it.

    A code is unique among open pickup orders and reused once they close; an order never
    reopens, so the open holder of a code is always its newest."""
    return queryset.filter(pickup_code=(code or "").strip()).order_by("-id").first()


def pickup_lookup(*, code: str, store: Store, actor=None) -> Order:
    """Find the order for a pickup code, checking it is picked up at ``store``.

    Every attempt is audited (who, where, when); a refused attempt is recorded
    in its own transaction, then the error is raised.
    """
    order = _pickup_order(code, Order.objects.select_related("store"))
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
    order = _pickup_order(code, Order.objects.all())
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
