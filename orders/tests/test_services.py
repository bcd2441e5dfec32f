import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given, settings as hsettings, strategies as st

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from inventory.models import Bucket, Reservation, StockLevel, StockMove, Transfer
from o2o.errors import DomainError
from o2o.models import OutboxMessage
from o2o.money import money
from orders import services
from orders.models import (
    Channel,
    ChannelConfig,
    Fulfillment,
    Order,
    OrderEvent,
    OrderLine,
    Return,
    Status,
)
from orders.services import LineIn, ReturnLineIn, TenderIn
from payments import services as pay_services
from payments.models import Payment, Refund
from payments.providers.sandbox import sandbox_notification
from stores.models import Role
from stores.tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def level(warehouse, sku, bucket=Bucket.SELLABLE):
    lv = StockLevel.objects.filter(warehouse=warehouse, sku=sku, bucket=bucket).first()
    return (lv.on_hand, lv.reserved) if lv else (0, 0)


def place_pickup(store, skus, qty=1, external_id=None, **kw):
    return services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store,
                                lines=[LineIn(s.id, qty) for s in skus], external_id=external_id, **kw).order


def snapshot():
    return (Order.objects.count(), OrderLine.objects.count(), StockMove.objects.count(),
            Reservation.objects.count(), Payment.objects.count(), Refund.objects.count(),
            sorted(StockLevel.objects.values_list("id", "on_hand", "reserved")))


def audit_clean():
    call_command("audit_ledgers")


# --- placement --------------------------------------------------------------------------------


def test_pickup_order_reserves_at_the_pickup_store_and_prices_on_the_server(stocked, store_a):
    order = place_pickup(store_a, stocked[:2], qty=2, discount=Decimal("10.00"))

    assert order.status == Status.PENDING_PAYMENT
    assert order.subtotal == Decimal("396.00")  # 2 SKUs × 2 × 99.00 list price
    assert order.total == Decimal("386.00")
    lines = list(order.lines.all())
    assert sum(ln.discount for ln in lines) == Decimal("10.00")
    assert all(ln.warehouse_id == store_a.warehouse_id for ln in lines)
    assert level(store_a.warehouse, stocked[0]) == (5, 2)
    assert order.pickup_code and len(order.pickup_code) == 8
    assert not order.needs_transfer
    event = order.events.get()
    assert (event.from_status, event.to_status) == ("", Status.PENDING_PAYMENT)
    assert OutboxMessage.objects.filter(topic="order.created").count() == 1
    audit_clean()


def test_ship_order_takes_the_central_warehouse_first(stocked, central):
    result = services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.SHIP_WAREHOUSE,
                                  lines=[LineIn(stocked[0].id, 3)])
    assert result.created
    assert result.order.fulfillment == Fulfillment.SHIP_WAREHOUSE
    assert level(central, stocked[0]) == (50, 3)


def test_ship_from_store_uses_stores_of_the_customer_city(stocked, central, store_a):
    order = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_STORE,
                                 ship_city_id=store_a.city_id, lines=[LineIn(stocked[0].id, 2)]).order
    assert order.fulfillment == Fulfillment.SHIP_STORE
    assert level(store_a.warehouse, stocked[0]) == (5, 2)
    assert level(central, stocked[0]) == (50, 0)


def test_split_only_when_the_channel_allows_it(stocked, central, store_a):
    # 55 units: central has 50, store A 5 — no single warehouse can supply.
    demand = [LineIn(stocked[0].id, 55)]
    with pytest.raises(DomainError) as err:
        services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_WAREHOUSE,
                             ship_city_id=store_a.city_id, lines=demand)
    assert err.value.code == "insufficient_stock"
    ChannelConfig.objects.create(channel=Channel.WEB, allow_split=True)
    order = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_WAREHOUSE,
                                 ship_city_id=store_a.city_id, lines=demand).order
    assert sorted(order.lines.values_list("qty", flat=True)) == [5, 50]
    assert level(central, stocked[0]) == (50, 50)
    assert level(store_a.warehouse, stocked[0]) == (5, 5)
    audit_clean()


def test_retried_submit_returns_the_first_order(stocked, store_a):
    first = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store_a,
                                 lines=[LineIn(stocked[0].id, 1)], external_id="W-1")
    again = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store_a,
                                 lines=[LineIn(stocked[0].id, 1)], external_id="W-1")
    assert first.created and not again.created
    assert again.order.pk == first.order.pk
    assert Order.objects.count() == 1
    assert level(store_a.warehouse, stocked[0]) == (5, 1)


def test_same_external_id_with_another_payload_is_refused(stocked, store_a):
    place_pickup(store_a, stocked[:1], external_id="W-2")
    before = snapshot()
    with pytest.raises(DomainError) as err:
        place_pickup(store_a, stocked[:1], qty=2, external_id="W-2")
    assert err.value.code == "duplicate_different_payload"
    assert snapshot() == before


def test_the_same_external_id_on_another_partner_is_another_order(stocked, central):
    kw = dict(channel=Channel.MARKETPLACE, fulfillment=Fulfillment.SHIP_WAREHOUSE,
              lines=[LineIn(stocked[0].id, 1)], external_id="X-1")
    a = services.order_place(partner="tmall", **kw).order
    b = services.order_place(partner="jd", **kw).order
    assert a.pk != b.pk


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"lines": []}, "no_lines"),
        ({"lines": "zero"}, "invalid_quantity"),
        ({"lines": "negative"}, "invalid_quantity"),
        ({"lines": "unknown"}, "unknown_sku"),
        ({"lines": "inactive"}, "inactive_sku"),
        ({"lines": "too_many"}, "insufficient_stock"),
        ({"store": None}, "store_required"),
        ({"fulfillment": Fulfillment.IN_STORE}, "invalid_fulfillment"),
        ({"channel": Channel.POS}, "invalid_fulfillment"),
        ({"discount": Decimal("-1")}, "invalid_discount"),
        ({"discount": Decimal("1000")}, "invalid_discount"),
    ],
)
def test_bad_order_input_is_refused_and_changes_nothing(stocked, store_a, kwargs, code):
    inactive = SkuFactory(is_active=False)
    lines = {
        "zero": [LineIn(stocked[0].id, 0)],
        "negative": [LineIn(stocked[0].id, -2)],
        "unknown": [LineIn(999999, 1)],
        "inactive": [LineIn(inactive.id, 1)],
        "too_many": [LineIn(stocked[0].id, 1), LineIn(stocked[1].id, 51)],  # more than any one warehouse
    }
    args = dict(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store_a,
                lines=[LineIn(stocked[0].id, 1)])
    args.update(kwargs)
    if isinstance(args["lines"], str):
        args["lines"] = lines[args["lines"]]
    before = snapshot()
    with pytest.raises(DomainError) as err:
        services.order_place(**args)
    assert err.value.code == code
    assert snapshot() == before


def test_placing_an_order_costs_the_same_queries_for_1_and_20_lines(central, store_a):
    skus = SkuFactory.create_batch(21)
    stock.stock_receive(warehouse=central, lines=[(s.id, 10) for s in skus])

    def count(n, ext):
        with CaptureQueriesContext(connection) as ctx:
            services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_WAREHOUSE, external_id=ext,
                                 lines=[LineIn(s.id, 1) for s in skus[:n]])
        return len(ctx.captured_queries)

    count(1, "warm")
    assert count(1, "one") == count(20, "twenty")


# --- payment, pickup, expiry, cancel ------------------------------------------------------------------


def test_paying_a_pickup_order_held_at_the_store_makes_it_ready(stocked, store_a):
    order = place_pickup(store_a, stocked[:1])
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
    order.refresh_from_db()
    assert order.status == Status.READY_FOR_PICKUP
    assert order.paid_total == order.total
    # The paid hold no longer expires.
    assert Reservation.objects.get(reference=order.number).expires_at is None
    assert list(order.events.values_list("to_status", flat=True)) == [
        Status.PENDING_PAYMENT, Status.PAID, Status.READY_FOR_PICKUP]
    audit_clean()


def _notify(payment):
    headers, body = sandbox_notification(payment)
    return services.order_payment_notify(provider="sandbox", headers=headers, body=body)


def test_a_second_payment_start_returns_the_open_one(stocked, store_a):
    order = place_pickup(store_a, stocked[:1])
    first = services.order_payment_start(order=order, tender="sandbox")
    again = services.order_payment_start(order=order, tender="sandbox")
    assert again.pk == first.pk
    assert Payment.objects.filter(reference=order.number).count() == 1
    audit_clean()


def test_a_start_for_another_amount_supersedes_the_open_payment(stocked, store_a):
    order = place_pickup(store_a, stocked[:1])
    stale = pay_services.payment_create(reference=order.number, tender="sandbox", amount=Decimal("1.00"))
    fresh = services.order_payment_start(order=order, tender="sandbox")
    stale.refresh_from_db()
    assert fresh.pk != stale.pk and fresh.amount == order.total
    assert stale.status == Payment.Status.CANCELLED
    assert list(Payment.objects.filter(reference=order.number, status="pending")) == [fresh]


def test_every_capture_beyond_the_due_is_refunded(stocked, store_a):
    # Given two pending provider payments for the full amount, both captured by the provider
    order = place_pickup(store_a, stocked[:1])
    first = services.order_payment_start(order=order, tender="sandbox")
    second = pay_services.payment_create(reference=order.number, tender="sandbox", amount=order.total)
    _notify(first)
    _notify(second)
    order.refresh_from_db()
    # Then the order is paid once and the second capture is refunded in full as an overpayment
    assert order.status == Status.READY_FOR_PICKUP and order.paid_total == order.total
    assert [(r.payment_id, r.amount, r.overpayment) for r in Refund.objects.all()] == [
        (second.pk, order.total, True)]
    audit_clean()
    # When cancelled, the order refunds its total from the payment that paid it
    services.order_cancel(order=order, reason="changed mind")
    first.refresh_from_db()
    assert first.refunded_amount + first.refunding_amount == order.total
    assert sum(r.amount for r in Refund.objects.all()) == 2 * order.total
    audit_clean()


def test_paying_the_order_cancels_its_other_pending_payments(stocked, store_a):
    order = place_pickup(store_a, stocked[:1])
    superseded = pay_services.payment_create(reference=order.number, tender="sandbox", amount=Decimal("1.00"))
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
    superseded.refresh_from_db()
    assert superseded.status == Payment.Status.CANCELLED
    # The provider still takes it: the money goes back, the order stays paid once
    _notify(superseded)
    order.refresh_from_db()
    assert order.paid_total == order.total
    assert Refund.objects.get(payment=superseded).overpayment
    audit_clean()


def test_payment_that_does_not_match_the_amount_due_is_refused(stocked, store_a):
    order = place_pickup(store_a, stocked[:1])
    before = snapshot()
    with pytest.raises(DomainError) as err:
        services.order_pay(order=order, tenders=[TenderIn("cash", order.total - Decimal("0.01"))])
    assert err.value.code == "payment_mismatch"
    assert snapshot() == before


def test_a_cancelled_order_cannot_be_paid(stocked, store_a):
    order = place_pickup(store_a, stocked[:1])
    services.order_cancel(order=order, reason="customer changed mind")
    assert level(store_a.warehouse, stocked[0]) == (5, 0)
    with pytest.raises(DomainError) as err:
        services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
    assert err.value.code == "order_not_payable"
    audit_clean()


def test_pickup_from_central_is_ready_only_after_the_transfer_arrives(stocked, central, store_b, clerk_b):
    order = place_pickup(store_b, stocked[:1], qty=2)
    assert order.needs_transfer
    assert level(central, stocked[0]) == (50, 2)
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
    order.refresh_from_db()
    assert order.status == Status.PAID  # the store does not have the goods yet
    transfer = Transfer.objects.get(reference=order.number)
    stock.transfer_ship(transfer=transfer)
    assert level(central, stocked[0]) == (48, 0)
    stock.transfer_receive(transfer=transfer)
    assert level(store_b.warehouse, stocked[0]) == (2, 2)
    # The worker runs the outbox consumer; here we call what it calls.
    services.order_ready_for_pickup(reference=order.number)
    order.refresh_from_db()
    assert order.status == Status.READY_FOR_PICKUP
    services.pickup_handover(code=order.pickup_code, store=store_b, actor=clerk_b)
    assert level(store_b.warehouse, stocked[0]) == (0, 0)
    audit_clean()


def _codes(monkeypatch, *codes):
    """Make the pickup code generator draw ``codes`` first, then random ones again."""
    queue, draw = list(codes), services.placement._new_pickup_code
    monkeypatch.setattr(services.placement, "_new_pickup_code", lambda: queue.pop(0) if queue else draw())


def test_a_pickup_code_collision_draws_again_and_never_returns_another_customers_order(
        stocked, store_a, monkeypatch):
    # Given an open pickup order, and a code generator that draws its code again
    first = place_pickup(store_a, stocked[:1])
    _codes(monkeypatch, first.pickup_code, first.pickup_code, "12345678")
    # When another customer places the very same basket
    result = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store_a,
                                  lines=[LineIn(stocked[0].id, 1)], customer_phone="+8613900000001")
    # Then they get an order of their own, with a code of its own
    assert result.created and result.order.pk != first.pk
    assert result.order.pickup_code == "12345678"
    assert services.pickup_lookup(code="12345678", store=store_a).pk == result.order.pk
    audit_clean()


def test_a_closed_orders_pickup_code_may_be_drawn_again(stocked, store_a, monkeypatch):
    old = place_pickup(store_a, stocked[:1])
    services.order_cancel(order=old, reason="changed mind")
    _codes(monkeypatch, old.pickup_code)
    new = place_pickup(store_a, stocked[:1])
    assert new.pickup_code == old.pickup_code and new.pk != old.pk
    # The code now stands for the open order
    assert services.pickup_lookup(code=old.pickup_code, store=store_a).pk == new.pk
    audit_clean()


def test_pickup_code_only_at_the_pickup_store_and_every_attempt_is_audited(stocked, store_a, store_b, clerk_a,
                                                                          clerk_b):
    order = place_pickup(store_a, stocked[:1])
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])

    with pytest.raises(DomainError) as err:
        services.pickup_lookup(code=order.pickup_code, store=store_b, actor=clerk_b)
    assert err.value.code == "wrong_store"
    rejected = OrderEvent.objects.get(order=order, kind=OrderEvent.Kind.PICKUP_REJECTED)
    assert (rejected.actor, rejected.store) == (clerk_b, store_b)

    with pytest.raises(DomainError) as err:
        services.pickup_handover(code=order.pickup_code, store=store_b, actor=clerk_b)
    assert err.value.code == "wrong_store"
    with pytest.raises(DomainError) as err:
        services.pickup_lookup(code="00000000x", store=store_a, actor=clerk_a)
    assert err.value.code == "pickup_code_invalid"

    assert services.pickup_lookup(code=order.pickup_code, store=store_a, actor=clerk_a).pk == order.pk
    services.pickup_handover(code=order.pickup_code, store=store_a, actor=clerk_a)
    order.refresh_from_db()
    assert order.status == Status.PICKED_UP
    handed = order.events.get(to_status=Status.PICKED_UP)
    assert (handed.actor, handed.store) == (clerk_a, store_a)
    assert level(store_a.warehouse, stocked[0]) == (4, 0)
    with pytest.raises(DomainError) as err:
        services.pickup_handover(code=order.pickup_code, store=store_a, actor=clerk_a)
    assert err.value.code == "invalid_order_state"
    audit_clean()


def test_a_clerk_of_another_store_cannot_hand_over(stocked, store_a, clerk_b):
    order = place_pickup(store_a, stocked[:1])
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
    with pytest.raises(DomainError) as err:
        services.pickup_handover(code=order.pickup_code, store=store_a, actor=clerk_b)
    assert err.value.code == "wrong_store"
    order.refresh_from_db()
    assert order.status == Status.READY_FOR_PICKUP


def test_unpaid_orders_expire_and_release_their_stock(stocked, store_a):
    order = place_pickup(store_a, stocked[:1], qty=3)
    fresh = place_pickup(store_a, stocked[1:2])
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    assert services.orders_expire() == 1
    assert services.orders_expire() == 0  # idempotent
    order.refresh_from_db()
    fresh.refresh_from_db()
    assert order.status == Status.EXPIRED
    assert fresh.status == Status.PENDING_PAYMENT
    assert level(store_a.warehouse, stocked[0]) == (5, 0)
    assert Reservation.objects.get(reference=order.number).status == Reservation.Status.EXPIRED
    audit_clean()


def test_cancelling_a_paid_order_refunds_it(stocked, store_a):
    order = place_pickup(store_a, stocked[:2])
    services.order_pay(order=order, tenders=[TenderIn("cash", Decimal("100.00")),
                                             TenderIn("unionpay_card", order.total - Decimal("100.00"),
                                                      card_reference="REF123")])
    services.order_cancel(order=order, reason="out of stock in store")
    order.refresh_from_db()
    assert order.status == Status.CANCELLED
    assert order.refunded_total == order.total
    assert sum(r.amount for r in Refund.objects.all()) == order.total
    assert level(store_a.warehouse, stocked[0]) == (5, 0)
    audit_clean()


def test_a_shipped_order_cannot_be_cancelled(stocked, central):
    order = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_WAREHOUSE,
                                 lines=[LineIn(stocked[0].id, 1)]).order
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
    shipment = services.shipment_create(order=order)
    services.shipment_ship(shipment=shipment, carrier="SF", tracking_number="SF100")
    with pytest.raises(DomainError) as err:
        services.order_cancel(order=order)
    assert err.value.code == "invalid_order_state"


# --- shipping -----------------------------------------------------------------------------------------


def test_pick_pack_ship_in_two_partial_shipments(stocked, central):
    order = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_WAREHOUSE,
                                 lines=[LineIn(stocked[0].id, 3), LineIn(stocked[1].id, 1)]).order
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
    first_line = order.lines.get(sku=stocked[0])
    shipment = services.shipment_create(order=order, lines=[(first_line.pk, 2)])
    services.shipment_pack(shipment=shipment)
    services.shipment_ship(shipment=shipment, carrier="SF", tracking_number="SF1")
    order.refresh_from_db()
    assert order.status == Status.PARTIALLY_SHIPPED
    assert level(central, stocked[0]) == (48, 1)

    with pytest.raises(DomainError) as err:
        services.shipment_create(order=order, lines=[(first_line.pk, 2)])
    assert err.value.code == "ship_exceeds_order"
    rest = services.shipment_create(order=order)
    with pytest.raises(DomainError) as err:
        services.shipment_ship(shipment=rest, carrier="", tracking_number="")
    assert err.value.code == "tracking_required"
    services.shipment_ship(shipment=rest, carrier="SF", tracking_number="SF2")
    order.refresh_from_db()
    assert order.status == Status.SHIPPED
    assert level(central, stocked[0]) == (47, 0)
    assert level(central, stocked[1]) == (49, 0)
    assert OutboxMessage.objects.filter(topic="order.shipped").count() == 2
    audit_clean()


def test_ship_from_store_is_confirmed_only_by_that_store(stocked, store_a, clerk_a, clerk_b):
    order = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_STORE,
                                 ship_city_id=store_a.city_id, lines=[LineIn(stocked[0].id, 1)]).order
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
    shipment = services.shipment_create(order=order)
    with pytest.raises(DomainError) as err:
        services.shipment_ship(shipment=shipment, carrier="SF", tracking_number="SF9", actor=clerk_b)
    assert err.value.code == "wrong_store"
    services.shipment_ship(shipment=shipment, carrier="SF", tracking_number="SF9", actor=clerk_a)
    assert level(store_a.warehouse, stocked[0]) == (4, 0)


# --- POS ----------------------------------------------------------------------------------------------


def test_pos_sale_takes_stock_at_the_moment_of_sale(stocked, store_a, clerk_a):
    sale_id = uuid.uuid4()
    result = services.pos_sale_create(store=store_a, client_uuid=sale_id, actor=clerk_a,
                                      lines=[LineIn(stocked[0].id, 2)],
                                      tenders=[TenderIn("cash", Decimal("198.00"))])
    order = result.order
    assert order.status == Status.COMPLETED
    assert order.channel == Channel.POS and order.fulfillment == Fulfillment.IN_STORE
    assert level(store_a.warehouse, stocked[0]) == (3, 0)
    assert order.paid_total == Decimal("198.00")
    retry = services.pos_sale_create(store=store_a, client_uuid=str(sale_id), actor=clerk_a,
                                     lines=[LineIn(stocked[0].id, 2)], tenders=[TenderIn("cash", Decimal("198.00"))])
    assert not retry.created and retry.order.pk == order.pk
    assert level(store_a.warehouse, stocked[0]) == (3, 0)
    audit_clean()


def test_a_pos_sale_retried_past_the_first_lookup_is_recognised_by_its_sale_id(stocked, store_a, monkeypatch):
    # A retry that raced the first submit past the lookup meets the sale id's unique constraint
    sale_id = uuid.uuid4()
    kwargs = {"store": store_a, "client_uuid": sale_id, "lines": [LineIn(stocked[0].id, 1)],
              "tenders": [TenderIn("cash", Decimal("99.00"))]}
    first = services.pos_sale_create(**kwargs).order
    real, calls = services.placement._existing, []

    def existing_missed_once(**kw):
        calls.append(kw)
        return None if len(calls) == 1 else real(**kw)

    monkeypatch.setattr(services.placement, "_existing", existing_missed_once)
    retry = services.pos_sale_create(**kwargs)
    assert not retry.created and retry.order.pk == first.pk and len(calls) == 2
    audit_clean()


@pytest.mark.parametrize("case, code", [
    ("short_payment", "payment_mismatch"),
    ("out_of_stock", "insufficient_stock"),
    ("bad_uuid", "invalid_sale_id"),
    ("reused_uuid", "duplicate_different_payload"),
])
def test_bad_pos_sales_change_nothing(stocked, store_a, clerk_a, case, code):
    used = uuid.uuid4()
    services.pos_sale_create(store=store_a, client_uuid=used, lines=[LineIn(stocked[1].id, 1)],
                             tenders=[TenderIn("cash", Decimal("99.00"))])
    args = dict(store=store_a, client_uuid=uuid.uuid4(), actor=clerk_a, lines=[LineIn(stocked[0].id, 1)],
                tenders=[TenderIn("cash", Decimal("99.00"))])
    if case == "short_payment":
        args["tenders"] = [TenderIn("cash", Decimal("98.99"))]
    elif case == "out_of_stock":
        args["lines"] = [LineIn(stocked[0].id, 6)]
        args["tenders"] = [TenderIn("cash", Decimal("594.00"))]
    elif case == "bad_uuid":
        args["client_uuid"] = "not-a-uuid"
    else:
        args["client_uuid"] = used
    before = snapshot()
    with pytest.raises(DomainError) as err:
        services.pos_sale_create(**args)
    assert err.value.code == code
    assert snapshot() == before


def test_pos_sale_query_count_does_not_grow_with_lines(store_a):
    skus = SkuFactory.create_batch(20)
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(s.id, 10) for s in skus])

    def count(n):
        with CaptureQueriesContext(connection) as ctx:
            services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(s.id, 1) for s in skus[:n]],
                                     tenders=[TenderIn("cash", Decimal("99.00") * n)])
        return len(ctx.captured_queries)

    count(1)
    assert count(1) == count(20)


# --- returns ------------------------------------------------------------------------------------------


def test_return_at_another_store_restocks_there_and_refunds_exactly(stocked, store_a, store_b, clerk_b):
    order = place_pickup(store_a, stocked[:3], qty=3, discount=Decimal("10.00"))
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
    services.pickup_handover(code=order.pickup_code, store=store_a)
    line = order.lines.order_by("line_no").first()

    ret = services.return_create(order=order, store=store_b, actor=clerk_b, lines=[
        ReturnLineIn(line.pk, 1, "sellable"), ReturnLineIn(line.pk, 1, "damaged")])
    assert level(store_b.warehouse, line.sku) == (1, 0)
    assert level(store_b.warehouse, line.sku, Bucket.DAMAGED) == (1, 0)
    # 3 × 99.00 − 3.34 allocated discount = 293.66 over 3 units: 97.89 + 97.89 (+ 97.88 left)
    assert line.line_total == Decimal("293.66")
    assert ret.refund_total == Decimal("195.78")
    ret2 = services.return_create(order=order, store=store_b, lines=[ReturnLineIn(line.pk, 1)])
    assert ret.refund_total + ret2.refund_total == line.line_total
    order.refresh_from_db()
    assert order.refunded_total == line.line_total
    with pytest.raises(DomainError) as err:
        services.return_create(order=order, store=store_b, lines=[ReturnLineIn(line.pk, 1)])
    assert err.value.code == "return_exceeds_purchase"
    audit_clean()


def test_returns_are_refused_before_handover_and_for_foreign_lines(stocked, store_a, store_b):
    order = place_pickup(store_a, stocked[:1])
    other = place_pickup(store_a, stocked[1:2])
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
    with pytest.raises(DomainError) as err:
        services.return_create(order=order, store=store_b, lines=[ReturnLineIn(order.lines.get().pk, 1)])
    assert err.value.code == "order_not_returnable"
    services.pickup_handover(code=order.pickup_code, store=store_a)
    before = snapshot()
    for lines, code in [([ReturnLineIn(other.lines.get().pk, 1)], "unknown_order_line"),
                        ([ReturnLineIn(order.lines.get().pk, 0)], "invalid_quantity"),
                        ([ReturnLineIn(order.lines.get().pk, 2)], "return_exceeds_purchase"),
                        ([], "no_lines")]:
        with pytest.raises(DomainError) as err:
            services.return_create(order=order, store=store_b, lines=lines)
        assert err.value.code == code
    assert snapshot() == before
    assert Return.objects.count() == 0


@given(total_fen=st.integers(min_value=0, max_value=10**7), qty=st.integers(min_value=1, max_value=40),
       cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=6))
@hsettings(max_examples=200, deadline=None)
def test_unit_refunds_of_a_line_always_add_up_to_the_line_total(total_fen, qty, cuts):
    line = OrderLine(line_total=money(Decimal(total_fen) / 100), qty=qty)
    returned, refunded = 0, Decimal("0.00")
    for cut in cuts:
        take = min(cut, qty - returned)
        if take <= 0:
            break
        refunded += services.line_refund_amount(line, returned, take)
        returned += take
    refunded += services.line_refund_amount(line, returned, qty - returned) if returned < qty else 0
    assert refunded == line.line_total


def test_goods_bought_at_the_counter_can_be_returned_at_another_store(stocked, store_a, store_b):
    order = services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(stocked[0].id, 2)],
                                     tenders=[TenderIn("cash", Decimal("198.00"))]).order
    line = order.lines.get()
    assert line.qty_shipped == 2  # taken in store: handed over at the sale
    ret = services.return_create(order=order, store=store_b, lines=[ReturnLineIn(line.pk, 2)])
    assert ret.refund_total == Decimal("198.00")
    assert level(store_b.warehouse, stocked[0]) == (2, 0)
    assert "at store HZ002" in ret.refund_policy
    audit_clean()


def test_returns_after_the_channel_window_need_a_manager(stocked, store_a, store_b, clerk_b):
    ChannelConfig.objects.create(channel=Channel.POS, return_window_days=7)
    manager = StaffFactory(role=Role.STORE_MANAGER, store=store_b).user
    order = services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(stocked[0].id, 2)],
                                     tenders=[TenderIn("cash", Decimal("198.00"))]).order
    Order.objects.filter(pk=order.pk).update(handed_over_at=timezone.now() - timedelta(days=8))
    line = order.lines.get()
    before = snapshot()
    with pytest.raises(DomainError) as err:
        services.return_create(order=order, store=store_b, actor=clerk_b, lines=[ReturnLineIn(line.pk, 1)])
    assert err.value.code == "return_window_closed"
    assert snapshot() == before
    ret = services.return_create(order=order, store=store_b, actor=clerk_b, approved_by=manager,
                                 lines=[ReturnLineIn(line.pk, 1)])
    assert (ret.created_by, ret.approved_by) == (clerk_b, manager)


def test_cancel_waits_while_goods_are_in_transit_to_the_pickup_store(stocked, store_b):
    order = place_pickup(store_b, stocked[:1])
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
    stock.transfer_ship(transfer=Transfer.objects.get(reference=order.number))
    with pytest.raises(DomainError) as err:
        services.order_cancel(order=order)
    assert err.value.code == "goods_in_transit"
    order.refresh_from_db()
    assert order.status == Status.PAID
    audit_clean()


def test_cancelling_before_the_transfer_ships_cancels_the_transfer_too(stocked, central, store_b):
    order = place_pickup(store_b, stocked[:1], qty=2)
    services.order_pay(order=order, tenders=[TenderIn("cash", order.total)])
    services.order_cancel(order=order)
    assert Transfer.objects.get(reference=order.number).status == Transfer.Status.CANCELLED
    assert level(central, stocked[0]) == (50, 0)
    audit_clean()


def test_exchange_for_dearer_goods_takes_only_the_difference(stocked, store_a, store_b, clerk_b):
    cheap, dear = stocked[0], SkuFactory(list_price=Decimal("150.00"))
    stock.stock_receive(warehouse=store_b.warehouse, lines=[(dear.id, 3)])
    order = services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(cheap.id, 1)],
                                     tenders=[TenderIn("unionpay_card", Decimal("99.00"), card_reference="C-1")]).order
    result = services.exchange_create(order=order, store=store_b, actor=clerk_b, client_uuid=uuid.uuid4(),
                                      return_lines=[ReturnLineIn(order.lines.get().pk, 1)],
                                      new_lines=[LineIn(dear.id, 1)],
                                      tenders=[TenderIn("cash", Decimal("51.00"))])
    assert (result.credit, result.refunded) == (Decimal("99.00"), Decimal("0.00"))
    new = result.order
    assert new.total == Decimal("150.00") and new.paid_total == Decimal("150.00")
    assert sorted(new_payment.tender for new_payment in Payment.objects.filter(reference=new.number)) == [
        "cash", "exchange_credit"]
    original = Payment.objects.get(reference=order.number)
    assert original.refunded_amount == Decimal("99.00")
    assert original.refunds.get().method == Refund.Method.EXCHANGE
    assert level(store_b.warehouse, cheap) == (1, 0)
    assert level(store_b.warehouse, dear) == (2, 0)
    assert result.ret.exchange_order == new
    audit_clean()


def test_exchange_for_cheaper_goods_refunds_the_rest(stocked, store_a):
    dear, cheap = SkuFactory(list_price=Decimal("150.00")), stocked[0]
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(dear.id, 1)])
    order = services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(dear.id, 1)],
                                     tenders=[TenderIn("cash", Decimal("150.00"))]).order
    result = services.exchange_create(order=order, store=store_a, client_uuid=uuid.uuid4(), tenders=[],
                                      return_lines=[ReturnLineIn(order.lines.get().pk, 1, "damaged")],
                                      new_lines=[LineIn(cheap.id, 1)])
    assert (result.credit, result.refunded) == (Decimal("99.00"), Decimal("51.00"))
    order.refresh_from_db()
    assert order.refunded_total == Decimal("150.00")
    refunds = sorted((r.method, r.amount) for r in Refund.objects.filter(payment__reference=order.number))
    assert refunds == [("cash", Decimal("51.00")), ("exchange", Decimal("99.00"))]
    assert level(store_a.warehouse, dear, Bucket.DAMAGED) == (1, 0)
    audit_clean()


def test_a_failed_exchange_changes_nothing(stocked, store_a):
    order = services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(stocked[0].id, 1)],
                                     tenders=[TenderIn("cash", Decimal("99.00"))]).order
    before = snapshot()
    with pytest.raises(DomainError) as err:  # the new goods cost more, and nobody pays the difference
        services.exchange_create(order=order, store=store_a, client_uuid=uuid.uuid4(), tenders=[],
                                 return_lines=[ReturnLineIn(order.lines.get().pk, 1)],
                                 new_lines=[LineIn(stocked[1].id, 2)])
    assert err.value.code == "payment_mismatch"
    assert snapshot() == before
    assert Return.objects.count() == 0


def test_pickup_qr_encodes_the_pickup_code(stocked, store_a):
    from orders.selectors import pickup_qr_payload, pickup_qr_svg

    order = place_pickup(store_a, stocked[:1])
    svg = pickup_qr_svg(order)
    assert svg.startswith("<svg") and "</svg>" in svg
    assert pickup_qr_payload(order) == f"o2o:pickup:{order.pickup_code}"
    ship = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_WAREHOUSE,
                                lines=[LineIn(stocked[0].id, 1)]).order
    assert pickup_qr_svg(ship) == ""


# --- an exchange keeps its customer -----------------------------------------------------------------


def _member_sale(store, sku, member, tenders=None):
    return services.pos_sale_create(store=store, client_uuid=uuid.uuid4(), lines=[LineIn(sku.id, 1)], member=member,
                                    tenders=tenders or [TenderIn("cash", sku.list_price)]).order


def _points(member):
    member.refresh_from_db()
    return member.points_available, member.points_frozen


def test_an_exchange_sale_belongs_to_the_original_member_and_earns_like_a_purchase(stocked, store_a):
    from members.services import members as member_services

    shirt, dear = stocked[0], SkuFactory(list_price=Decimal("150.00"))
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(dear.id, 2)])
    buyer = member_services.member_register(phone="13900139002", channel="pos")
    order = _member_sale(store_a, shirt, buyer)
    assert _points(buyer) == (0, 99)
    result = services.exchange_create(order=order, store=store_a, client_uuid=uuid.uuid4(),
                                      return_lines=[ReturnLineIn(order.lines.get().pk, 1)],
                                      new_lines=[LineIn(dear.id, 1)], tenders=[TenderIn("cash", Decimal("51.00"))])
    assert result.order.member == buyer and result.order.customer_phone == buyer.phone
    assert _points(buyer) == (0, 150)
    audit_clean()


def test_an_exchange_of_a_merged_duplicates_order_goes_to_the_member_it_became(stocked, store_a):
    from members.services import members as member_services

    shirt, jeans = stocked[:2]
    duplicate = member_services.member_register(phone="13900139003", channel="pos")
    survivor = member_services.member_register(phone="13900139004", channel="pos")
    order = _member_sale(store_a, shirt, duplicate)
    member_services.member_merge(source=duplicate, target=survivor)
    result = services.exchange_create(order=order, store=store_a, client_uuid=uuid.uuid4(), member=survivor,
                                      return_lines=[ReturnLineIn(order.lines.get().pk, 1)],
                                      new_lines=[LineIn(jeans.id, 1)], tenders=[])
    assert result.order.member == survivor
    audit_clean()


def test_a_points_paid_original_exchanged_gives_no_points_back_twice(stocked, store_a):
    from members.services import members as member_services, points

    shirt, dear = stocked[0], SkuFactory(list_price=Decimal("150.00"))
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(dear.id, 1)])
    buyer = member_services.member_register(phone="13900139005", channel="pos")
    points.points_adjust(member=buyer, points=1000, reason="welcome")
    order = _member_sale(store_a, shirt, buyer, tenders=[TenderIn("points", Decimal("9.00")),
                                                         TenderIn("cash", Decimal("90.00"))])
    before = _points(buyer)
    assert before == (100, 90)
    result = services.exchange_create(order=order, store=store_a, client_uuid=uuid.uuid4(),
                                      return_lines=[ReturnLineIn(order.lines.get().pk, 1)],
                                      new_lines=[LineIn(dear.id, 1)], tenders=[TenderIn("cash", Decimal("51.00"))])
    earned = result.order.total  # 1 point per yuan, the whole exchange credit counting as paid
    assert _points(buyer) == (before[0], before[1] - 90 + earned)
    audit_clean()
