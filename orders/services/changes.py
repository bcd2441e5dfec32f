"""Changes a partner may make to an order before it is fulfilled: the delivery details, the remark,
and the pickup store while the order is unpaid."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from inventory import services as stock
from o2o.db import service
from o2o.errors import InvalidInput
from orders import allocation, locks
from orders.events import order_event
from orders.exceptions import FulfilmentStarted, InvalidOrderTransition, OrderAlreadyPaid
from orders.models import Fulfillment, Order, OrderEvent, OrderLine, Shipment, Status
from stores.exceptions import NotLaunched
from stores.models import Capability, Store
from stores.selectors import capability_enabled

# Until the goods are picked, packed or handed over, the delivery details may still change.
CHANGEABLE = frozenset({Status.PENDING_PAYMENT, Status.PAID})
DELIVERY_FIELDS = ("ship_address", "customer_name", "customer_phone")


@dataclass(frozen=True)
class OrderChanges:
    """What to change; a field left as None stays as it is."""

    ship_address: str | None = None
    customer_name: str | None = None
    customer_phone: str | None = None
    remark: str | None = None
    store: Store | None = None


@service
def order_update(*, order: Order | int, changes: OrderChanges, actor=None) -> Order:
    """Change an order's delivery details, remark or (unpaid pickup) store; one audit event, one version.

    Locks the order row; moving the pickup store also releases and re-takes its stock reservations
    (ordered level locks, in ``inventory.services``).  The order keeps its prices.  Queues
    ``order.updated``.  Raises invalid_order_state (closed), fulfilment_started (a shipment exists or
    the goods are ready / gone), order_already_paid (store after payment), invalid_input (a delivery
    detail of a pickup order, a store of a shipped one), pickup_not_launched, insufficient_stock.
    """
    order = locks.order_for_update(order)
    if order.status in {Status.CANCELLED, Status.EXPIRED}:
        raise InvalidOrderTransition(params={"from": order.status, "to": "updated"})
    if order.status not in CHANGEABLE or Shipment.objects.filter(order=order).exists():
        raise FulfilmentStarted(params={"status": order.status})
    fields = []
    for name in (*DELIVERY_FIELDS, "remark"):
        value = getattr(changes, name)
        if value is None or value == getattr(order, name):
            continue
        if name == "ship_address" and order.fulfillment == Fulfillment.PICKUP:
            raise InvalidInput(message=_("A pickup order has no delivery address."), field=name)
        setattr(order, name, value)
        fields.append(name)
    if changes.store is not None and changes.store.pk != order.store_id:
        _pickup_store_move(order, changes.store, actor=actor)
        fields += ["store", "needs_transfer"]
    if not fields:
        return order
    order.save(update_fields=fields)
    order_event(order, OrderEvent.Kind.UPDATE, actor=actor, store=order.store, reason="details changed",
                data={"changed": sorted(f for f in fields if f != "needs_transfer")}, emit="order.updated")
    return order


def _pickup_store_move(order: Order, store: Store, *, actor) -> None:
    """Hold the order's goods for pickup at ``store`` instead (the order is locked and unpaid)."""
    if order.fulfillment != Fulfillment.PICKUP:
        raise InvalidInput(message=_("Only a pickup order has a pickup store."), field="store")
    if order.status != Status.PENDING_PAYMENT:
        raise OrderAlreadyPaid(params={"status": order.status})
    if not capability_enabled(Capability.PICKUP, store=store):
        raise NotLaunched(capability=Capability.PICKUP, store=store, field="store")
    lines = list(OrderLine.objects.filter(order=order).order_by("line_no"))
    demand: dict[int, int] = {}
    for line in lines:
        demand[line.sku_id] = demand.get(line.sku_id, 0) + line.qty
    config = allocation.channel_config(order.channel)
    warehouses = allocation.candidates(channel=order.channel, fulfillment=Fulfillment.PICKUP, store=store,
                                       ship_city_id=None, config=config)
    # Released first, so the units this order holds count as available where it is moved to.
    stock.reservations_release(reference=order.number, actor=actor)
    plan = allocation.allocate(demand=demand, warehouse_ids=warehouses, allow_split=False)
    for warehouse_id, skus in sorted(plan.items()):
        stock.stock_reserve(warehouse=warehouse_id, lines=list(skus.items()), reference=order.number,
                            expires_at=order.expires_at, actor=actor)
    where = {sku_id: warehouse_id for warehouse_id, skus in plan.items() for sku_id in skus}
    for line in lines:
        if line.warehouse_id != where[line.sku_id]:
            OrderLine.objects.filter(pk=line.pk).update(warehouse_id=where[line.sku_id])
    order.store = store
    order.needs_transfer = store.warehouse_id not in plan


def member_orders_erase(member) -> None:
    """Blank the customer's name, phone and address on a member's orders (their erasure, PIPL); the
    amounts, lines and events stay.  Runs inside ``members.privacy.member_erase``'s transaction."""
    Order.objects.filter(member=member).update(customer_name="", customer_phone="", ship_address="")
