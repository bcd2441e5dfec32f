"""Order audit rows and the status pipeline guard."""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from o2o.db import insert_joined
from o2o.outbox import outbox_emit
from orders.exceptions import InvalidOrderTransition
from orders.models import TRANSITIONS, Order, OrderEvent


def order_transition(order: Order, to_status: str, *, actor=None, store=None, reason: str = "",
                     data: dict | None = None, emit: str | None = None) -> OrderEvent:
    """Move ``order`` (already locked by the caller) to ``to_status`` and audit it.

    Raises InvalidOrderTransition for any move not in the pipeline.  Emits the
    outbox event ``emit`` (e.g. "order.paid") in the same transaction.
    """
    from_status = order.status or ""
    if to_status not in TRANSITIONS.get(from_status, set()):
        raise InvalidOrderTransition(params={"from": from_status, "to": to_status})
    order.status = to_status
    order.version = (order.version or 0) + 1
    if order.pk:
        # A bulk update skips auto_now: bump updated_at so "updated since" filters see the change.
        order.updated_at = timezone.now()
        Order.objects.filter(pk=order.pk).update(status=to_status, version=F("version") + 1,
                                                 updated_at=order.updated_at)
    event = OrderEvent.objects.create(order=order, kind=OrderEvent.Kind.STATUS, from_status=from_status,
                                      to_status=to_status, actor=_user(actor), store=store, reason=reason,
                                      data=data or {})
    if emit:
        order_emit(order, emit, data)
    return event


def order_born(order: Order, status: str) -> None:
    """Give a new, unsaved ``order`` the status (and version) its first status event records, so
    it is inserted once in its final state; ``order_born_audit`` writes that event after the
    insert.  Raises InvalidOrderTransition for a status an order cannot start in."""
    if status not in TRANSITIONS.get("", set()):
        raise InvalidOrderTransition(params={"from": "", "to": status})
    order.status = status
    order.version = (order.version or 0) + 1


def order_born_audit(order: Order, *, actor=None, store=None, emit: str | None = None) -> OrderEvent:
    """The status event of an order inserted in its final state (``order_born``), and its message."""
    event = OrderEvent(order=order, kind=OrderEvent.Kind.STATUS, from_status="", to_status=order.status,
                       actor=_user(actor), store=store, data={})
    if not insert_joined([event]):  # held for the transaction's last statement inside ``joined_writes``
        event.save(force_insert=True)
    if emit:
        order_emit(order, emit)
    return event


# Events a partner sees in the order's output (paid and refunded totals, lines shipped or
# returned, shipments): each moves the order's version, so an ETag read before it is stale.
VISIBLE_KINDS = frozenset({OrderEvent.Kind.PAYMENT, OrderEvent.Kind.SHIPMENT, OrderEvent.Kind.RETURN,
                           OrderEvent.Kind.UPDATE})


def order_version_bump(order: Order) -> None:
    """Move the version (and updated_at) of ``order``, locked by the caller, after a visible change."""
    order.version = (order.version or 0) + 1
    order.updated_at = timezone.now()
    Order.objects.filter(pk=order.pk).update(version=F("version") + 1, updated_at=order.updated_at)


def order_event(order: Order, kind: str, *, actor=None, store=None, reason: str = "", data: dict | None = None,
                emit: str | None = None) -> OrderEvent:
    """Audit a change that keeps the status; a visible one moves the version before it is emitted."""
    if kind in VISIBLE_KINDS:
        order_version_bump(order)
    event = OrderEvent.objects.create(order=order, kind=kind, from_status=order.status, to_status=order.status,
                                      actor=_user(actor), store=store, reason=reason, data=data or {})
    if emit:
        order_emit(order, emit, data)
    return event


def order_emit(order: Order, topic: str, data: dict | None = None) -> None:
    # The version lets receivers drop events that arrive out of order.
    outbox_emit(topic=topic, key=f"order:{order.pk}",
                payload={"order": order.number, "order_id": order.pk, "channel": order.channel,
                         "partner": order.partner, "status": order.status, "version": order.version,
                         "store_id": order.store_id, **(data or {})})


def _user(actor):
    return actor if actor is not None and getattr(actor, "pk", None) else None
