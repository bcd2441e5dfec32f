"""Outbox consumers of the orders app (run once per message in the worker)."""

from o2o.outbox import consumer
from orders import services


@consumer("transfer.received", name="orders.pickup_ready_on_transfer")
def pickup_ready_on_transfer(message) -> None:
    reference = message.payload.get("reference")
    if reference:
        services.order_ready_for_pickup(reference=reference)
