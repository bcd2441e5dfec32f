"""Named locking queries for orders (one row each; callers lock the order before its shipments)."""

from __future__ import annotations

from orders.exceptions import OrderNotFound, ShipmentNotFound
from orders.models import Order, Shipment


def order_for_update(order: Order | int) -> Order:
    pk = order.pk if isinstance(order, Order) else order
    found = Order.objects.select_for_update(of=("self",)).select_related("store").filter(pk=pk).first()
    if found is None:
        raise OrderNotFound(params={"order_id": pk})
    return found


def order_for_update_by_number(number: str) -> Order | None:
    """Lock the order with this number (None if there is none): one statement."""
    return Order.objects.select_for_update(of=("self",)).select_related("store").filter(number=number).first()


def shipment_for_update(shipment: Shipment | int) -> Shipment:
    pk = shipment.pk if isinstance(shipment, Shipment) else shipment
    found = Shipment.objects.select_for_update(of=("self",)).select_related("order").filter(pk=pk).first()
    if found is None:
        raise ShipmentNotFound(params={"shipment_id": pk})
    return found
