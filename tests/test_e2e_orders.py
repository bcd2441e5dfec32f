"""End to end: an online pickup order is paid through the sandbox provider, picked up at its
store, then partly returned at another store.  Stock, payments, refunds and events add up."""

from decimal import Decimal

import pytest
from django.core.management import call_command

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from inventory.models import Bucket, StockLevel, StockMove
from o2o.outbox import outbox_dispatch
from o2o.models import OutboxMessage
from orders import services
from orders.models import Channel, Fulfillment, Status
from orders.services import LineIn, ReturnLineIn
from payments.models import Payment, Refund
from payments.services import refund_process
from payments.providers.sandbox import sandbox_notification
from stores.models import Role, Warehouse
from stores.tests.factories import StaffFactory, StoreFactory, WarehouseFactory

# Committed transactions, as in production: the refund is sent to the provider after commit.
pytestmark = pytest.mark.django_db(transaction=True)


def on_hand(warehouse, sku, bucket=Bucket.SELLABLE):
    lv = StockLevel.objects.filter(warehouse=warehouse, sku=sku, bucket=bucket).first()
    return lv.on_hand if lv else 0


def test_online_pickup_order_paid_picked_up_and_returned_elsewhere():
    WarehouseFactory(kind=Warehouse.Kind.CENTRAL)
    pickup_store, return_store = StoreFactory(code="HZ01"), StoreFactory(code="HZ02")
    clerk_pickup = StaffFactory(role=Role.CLERK, store=pickup_store).user
    clerk_return = StaffFactory(role=Role.CLERK, store=return_store).user
    shirt, shoes = SkuFactory(list_price=Decimal("129.00")), SkuFactory(list_price=Decimal("399.00"))
    stock.stock_receive(warehouse=pickup_store.warehouse, lines=[(shirt.id, 4), (shoes.id, 1)])

    # Given a mini-program order for pickup, with a 20.00 discount.
    order = services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP, store=pickup_store,
                                 external_id="MP-1001", discount=Decimal("20.00"),
                                 lines=[LineIn(shirt.id, 2), LineIn(shoes.id, 1)]).order
    assert order.total == Decimal("637.00")

    # When the customer pays through the provider (a signed sandbox notification).
    payment = services.order_payment_start(order=order, tender="sandbox")
    headers, body = sandbox_notification(payment)
    services.order_payment_notify(provider="sandbox", headers=headers, body=body)
    order.refresh_from_db()
    assert order.status == Status.READY_FOR_PICKUP

    # And picks it up at the store with the code.
    services.pickup_lookup(code=order.pickup_code, store=pickup_store, actor=clerk_pickup)
    services.pickup_handover(code=order.pickup_code, store=pickup_store, actor=clerk_pickup)
    assert on_hand(pickup_store.warehouse, shirt) == 2
    assert on_hand(pickup_store.warehouse, shoes) == 0

    # Then returns one shirt (damaged) at another store.
    shirt_line = order.lines.get(sku=shirt)
    ret = services.return_create(order=order, store=return_store, actor=clerk_return, reason="wrong size",
                                 lines=[ReturnLineIn(shirt_line.pk, 1, "damaged")])
    # Subtotal 657.00; the shirts' share of the 20.00 discount is 258/657 × 20 = 7.85, so the line is
    # 250.15; per unit 125.075 → the first unit carries the odd fen: 125.08, the second 125.07.
    assert shirt_line.line_total == Decimal("250.15")
    assert ret.refund_total == Decimal("125.08")
    assert "original account" in ret.refund_policy
    assert on_hand(return_store.warehouse, shirt, Bucket.DAMAGED) == 1

    # The online refund goes back through the provider after commit (the worker runs the consumer).
    refund = Refund.objects.get()
    assert refund.status == Refund.Status.PENDING and refund.amount == Decimal("125.08")
    message = OutboxMessage.objects.get(topic="payments.refund_requested")
    outbox_dispatch(message_id=message.pk)  # the consumer queues the provider call after commit
    refund_process(refund_id=refund.pk)  # what that queued task runs, outside any transaction
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED

    order.refresh_from_db()
    payment.refresh_from_db()
    assert payment.amount - payment.refunded_amount == order.total - order.refunded_total == Decimal("511.92")
    assert list(order.events.values_list("to_status", flat=True).filter(kind="status")) == [
        Status.PENDING_PAYMENT, Status.PAID, Status.READY_FOR_PICKUP, Status.PICKED_UP]
    kinds = set(order.events.values_list("kind", flat=True))
    assert {"pickup_verified", "return"} <= kinds
    moves = StockMove.objects.filter(reference__in=[order.number, ret.number]).values_list("reason", "qty")
    assert sorted(moves) == sorted([("sale", -2), ("sale", -1), ("return", 1)])
    assert Payment.objects.count() == 1
    call_command("audit_ledgers")
