"""Races across channels on real PostgreSQL with real threads: exactly one effect each time."""

import functools
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from inventory.models import StockLevel
from o2o.errors import DomainError
from orders import services
from orders.models import Channel, Fulfillment, Order, OrderEvent, Return, Status
from orders.services import LineIn, ReturnLineIn, TenderIn
from payments.models import Payment, PaymentNotification
from payments.providers.sandbox import sandbox_notification
from stores.models import Role, Warehouse
from stores.tests.factories import StaffFactory, StoreFactory, WarehouseFactory
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db(transaction=True)


def run_threads(n, target):
    """``target(i)`` for i in 0..n-1, in threads released together; results or exceptions."""
    return run_at_once([functools.partial(target, i) for i in range(n)], timeout=60)


@pytest.fixture
def world():
    central = WarehouseFactory(kind=Warehouse.Kind.CENTRAL, code="CW")
    store = StoreFactory(code="S1")
    other = StoreFactory(code="S2")
    sku = SkuFactory()
    clerks = [StaffFactory(role=Role.CLERK, store=store).user for _ in range(2)]
    return {"central": central, "store": store, "other": other, "sku": sku, "clerks": clerks}


def test_online_orders_and_pos_sales_race_for_the_last_units(world):
    store, sku = world["store"], world["sku"]
    stock.stock_receive(warehouse=store.warehouse, lines=[(sku.id, 7)])

    def attempt(i):
        if i % 2:
            return services.pos_sale_create(store=store, client_uuid=uuid.uuid4(), lines=[LineIn(sku.id, 1)],
                                            tenders=[TenderIn("cash", Decimal("99.00"))]).order
        return services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store,
                                    lines=[LineIn(sku.id, 1)], external_id=f"W{i}").order

    results = run_threads(24, attempt)
    wins = [r for r in results if isinstance(r, Order)]
    losses = [r for r in results if isinstance(r, Exception)]
    assert len(wins) == 7
    assert all(isinstance(e, DomainError) and e.code == "insufficient_stock" for e in losses), losses
    level = StockLevel.objects.get(warehouse=store.warehouse, sku=sku)
    sold = sum(1 for o in wins if o.channel == Channel.POS)
    held = sum(1 for o in wins if o.channel == Channel.WEB)
    assert (level.on_hand, level.reserved) == (7 - sold, held)
    call_command("audit_ledgers")


def test_the_same_retried_pos_sale_makes_one_order(world):
    store, sku = world["store"], world["sku"]
    stock.stock_receive(warehouse=store.warehouse, lines=[(sku.id, 10)])
    sale_id = uuid.uuid4()
    results = run_threads(10, lambda i: services.pos_sale_create(
        store=store, client_uuid=sale_id, lines=[LineIn(sku.id, 2)], tenders=[TenderIn("cash", Decimal("198.00"))]))
    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.order.pk for r in results}) == 1
    assert sum(1 for r in results if r.created) == 1
    assert StockLevel.objects.get(warehouse=store.warehouse, sku=sku).on_hand == 8
    call_command("audit_ledgers")


def test_pos_sales_of_the_same_skus_in_opposite_line_orders_take_the_levels_in_one_order(world):
    """The sale's last statement locks the levels in (warehouse, sku) order whatever the basket's
    order, so two baskets of the same SKUs scanned in opposite orders never deadlock."""
    store = world["store"]
    skus = [world["sku"], SkuFactory(), SkuFactory()]
    stock.stock_receive(warehouse=store.warehouse, lines=[(s.id, 20) for s in skus])

    def attempt(i):
        lines = [LineIn(s.id, 1) for s in (skus if i % 2 else list(reversed(skus)))]
        total = sum((s.list_price for s in skus), Decimal("0"))
        return services.pos_sale_create(store=store, client_uuid=uuid.uuid4(), lines=lines,
                                        tenders=[TenderIn("cash", total)]).order

    results = run_threads(12, attempt)
    assert all(isinstance(r, Order) for r in results), results
    assert sorted(StockLevel.objects.filter(warehouse=store.warehouse).values_list("on_hand", flat=True)) == [8] * 3
    call_command("audit_ledgers")


def test_two_notifications_for_one_payment_apply_once(world):
    store, sku = world["store"], world["sku"]
    stock.stock_receive(warehouse=store.warehouse, lines=[(sku.id, 3)])
    order = services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP, store=store,
                                 lines=[LineIn(sku.id, 1)], external_id="MP-1").order
    payment = services.order_payment_start(order=order, tender="sandbox")
    headers, body = sandbox_notification(payment)

    results = run_threads(8, lambda i: services.order_payment_notify(provider="sandbox", headers=headers, body=body))
    assert all(not isinstance(r, Exception) for r in results), results
    order.refresh_from_db()
    assert order.status == Status.READY_FOR_PICKUP
    assert order.events.filter(to_status=Status.PAID).count() == 1
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.CAPTURED
    outcomes = list(PaymentNotification.objects.values_list("outcome", flat=True))
    assert outcomes.count("applied") == 1 and len(outcomes) == 8
    call_command("audit_ledgers")


def test_two_clerks_handing_over_one_pickup_code(world):
    store, sku = world["store"], world["sku"]
    stock.stock_receive(warehouse=store.warehouse, lines=[(sku.id, 3)])
    order = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store,
                                 lines=[LineIn(sku.id, 1)], external_id="P-1").order
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])

    clerks = world["clerks"]
    results = run_threads(2, lambda i: services.pickup_handover(code=order.pickup_code, store=store,
                                                                actor=clerks[i]))
    ok = [r for r in results if isinstance(r, Order)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(ok) == 1 and len(errors) == 1
    assert errors[0].code == "invalid_order_state"
    assert OrderEvent.objects.filter(order=order, to_status=Status.PICKED_UP).count() == 1
    assert StockLevel.objects.get(warehouse=store.warehouse, sku=sku).on_hand == 2
    call_command("audit_ledgers")


def test_two_returns_of_the_same_line(world):
    store, other, sku = world["store"], world["other"], world["sku"]
    stock.stock_receive(warehouse=store.warehouse, lines=[(sku.id, 3)])
    order = services.pos_sale_create(store=store, client_uuid=uuid.uuid4(), lines=[LineIn(sku.id, 1)],
                                     tenders=[TenderIn("cash", Decimal("99.00"))]).order
    line = order.lines.get()
    results = run_threads(6, lambda i: services.return_create(
        order=order, store=other if i % 2 else store, lines=[ReturnLineIn(line.pk, 1)]))
    ok = [r for r in results if isinstance(r, Return)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(ok) == 1
    assert all(isinstance(e, DomainError) and e.code == "return_exceeds_purchase" for e in errors), errors
    order.refresh_from_db()
    assert order.refunded_total == Decimal("99.00")
    call_command("audit_ledgers")
