"""Outbox consumers of the orders app (run once per message in the worker)."""

from o2o.outbox import consumer
from orders import services


@consumer("transfer.received", name="orders.pickup_ready_on_transfer")
def pickup_ready_on_transfer(message) -> None:
    reference = message.payload.get("reference")
    if reference:
        services.order_ready_for_pickup(reference=reference)


@consumer("refund.succeeded", name="orders.refund_settled")
@consumer("refund.failed", name="orders.refund_failed")
def refund_settled(message) -> None:
    """A refund of an order's payment finished: the order's version moves and partners hear it."""
    payload = message.payload
    # A refund settled at once was part of the order change that asked for it (its version moved then).
    if payload.get("reference") and not payload.get("at_once"):
        services.order_refund_settled(reference=payload["reference"], refund_id=payload["refund_id"],
                                      succeeded=message.topic == "refund.succeeded")
