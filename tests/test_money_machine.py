"""Money, stock and points conserved under any sequence of what the faces do.

A hypothesis state machine drives the service entry points the POS and the partner API call:
counter sales (with a member, some paid partly in points), online pickup orders, payment starts
(pressed twice on two phones), provider notifications (repeated, and late on a cancelled
order), cancellations, hand-overs, returns and exchanges at the counter.  The store rounds cash to
the jiao (抹零), as the till does: the cash due is rounded down and the difference taken off the sale,
and one SKU is priced to the fen, so refunds meet the rounding too.  After every step:

* money: what the customers paid and were not given back (Σ captured − Σ refunded, money
  tenders) equals what the order book says it holds (Σ total − refunded of paid orders);
* stock: per SKU, the units on hand are the opening stock less what left the stores and has
  not come back;
* points: the member's balance is the sum of their entries, and points paid for returned or
  exchanged goods come back once (the audit's check);
* ``audit_ledgers`` finds nothing.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import F, Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from inventory.models import StockLevel
from members.models import PointsEntry
from members.services import points as points_services
from members.services.members import member_register
from o2o.audit import audit_run
from o2o.errors import DomainError
from o2o.money import ZERO, money, round_to_unit
from orders import services
from orders.pricing import sale_price, sale_round_cash
from orders.models import Channel, Fulfillment, Order, OrderLine, Status
from orders.services import LineIn, ReturnLineIn, TenderIn
from payments import shifts
from payments.models import Payment, Refund
from payments.providers.sandbox import sandbox_notification
from stores.models import Role
from stores.tests.factories import StaffFactory, StoreFactory

OPENING = 40
UNIT = Decimal("0.10")  # the store's cash rounding: to the jiao
NOT_MONEY = ("exchange_credit", "points", "wallet")  # value moved inside the books, not money
MACHINE = settings(max_examples=12, stateful_step_count=16, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class MoneyMachine(RuleBasedStateMachine):
    """One store with a clerk, three SKUs and one member; rolled back after each example."""

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.store = StoreFactory(cash_rounding="jiao")
        self.clerk = StaffFactory(role=Role.CLERK, store=self.store).user
        shifts.shift_open(store=self.store, actor=self.clerk, opening_float=Decimal("100.00"))
        self.skus = [SkuFactory(list_price=Decimal(p)) for p in ("39.90", "129.00", "8.80", "12.34")]
        stock.stock_receive(warehouse=self.store.warehouse, lines=[(s.id, OPENING) for s in self.skus])
        self.member = member_register(phone="+8613900000001", channel=Channel.POS, store_id=self.store.pk)
        points_services.points_adjust(member=self.member, points=3000, reason="opening points")
        self.orders: list[int] = []

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def attempt(self, call):
        """Run one step as its face would; a refusal must be a domain error and change nothing."""
        try:
            with transaction.atomic():
                return call()
        except DomainError:
            return None

    # --- the counter ------------------------------------------------------------------------

    @rule(sku=st.integers(0, 3), qty=st.integers(1, 3), with_member=st.booleans(), points=st.sampled_from([0, 500]))
    def counter_sale(self, sku, qty, with_member, points):
        def sell():
            member = self.member if with_member else None
            priced = sale_price(demand={self.skus[sku].id: qty}, channel=Channel.POS, store_id=self.store.pk,
                                member=member)
            by_points = min(money(Decimal(points) / 100), priced.total) if with_member else ZERO
            priced, cash = self.cash_rounded(priced, money(priced.total - by_points))
            tenders = [t for t in (TenderIn("cash", cash), TenderIn("points", by_points)) if t.amount > 0]
            return services.pos_sale_create(store=self.store, client_uuid=uuid.uuid4(), priced=priced,
                                            tenders=tenders, actor=self.clerk)

        result = self.attempt(sell)
        if result is not None:
            self.orders.append(result.order.pk)

    @staticmethod
    def cash_rounded(priced, owed):
        """As the till does: the cash due rounded down to the unit, the rest (抹零) off the sale."""
        cash = round_to_unit(owed, UNIT, down=True) if owed > 0 else ZERO
        return sale_round_cash(priced, money(max(owed, ZERO) - cash)), cash

    @rule(data=st.data())
    @precondition(lambda self: self.orders)
    def counter_return(self, data):
        order = Order.objects.get(pk=data.draw(st.sampled_from(self.orders)))
        line = order.lines.first()
        left = line.qty - line.qty_returned
        if left <= 0 or order.status not in {Status.COMPLETED, Status.PICKED_UP}:
            return
        qty = data.draw(st.integers(1, left))
        self.attempt(lambda: services.return_create(order=order, store=self.store, actor=self.clerk,
                                                    lines=[ReturnLineIn(line.pk, qty)], reason="changed mind"))

    @rule(data=st.data(), new_sku=st.integers(0, 3))
    @precondition(lambda self: self.orders)
    def counter_exchange(self, data, new_sku):
        order = Order.objects.get(pk=data.draw(st.sampled_from(self.orders)))
        line = order.lines.first()
        if line.qty - line.qty_returned <= 0 or order.status not in {Status.COMPLETED, Status.PICKED_UP}:
            return
        credit = services.line_refund_amount(line, line.qty_returned, 1)

        def exchange():
            priced = sale_price(demand={self.skus[new_sku].id: 1}, channel=Channel.POS, store_id=self.store.pk,
                                member=services.exchange_member(order, None))
            priced, cash = self.cash_rounded(priced, money(priced.total - credit))
            return services.exchange_create(
                order=order, store=self.store, client_uuid=uuid.uuid4(), actor=self.clerk, priced=priced,
                tenders=[TenderIn("cash", cash)] if cash > 0 else [], return_lines=[ReturnLineIn(line.pk, 1)])

        result = self.attempt(exchange)
        if result is not None:
            self.orders.append(result.order.pk)

    # --- online ---------------------------------------------------------------------------------

    @rule(sku=st.integers(0, 2), qty=st.integers(1, 2), with_member=st.booleans())
    def online_order(self, sku, qty, with_member):
        result = self.attempt(lambda: services.order_place(
            channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP, store=self.store,
            external_id=uuid.uuid4().hex, lines=[LineIn(self.skus[sku].id, qty)],
            member=self.member if with_member else None))
        if result is not None:
            self.orders.append(result.order.pk)

    def online(self, data, *statuses) -> Order | None:
        wanted = [pk for pk in self.orders if Order.objects.filter(pk=pk, status__in=statuses,
                                                                   channel=Channel.MINI_PROGRAM).exists()]
        return Order.objects.get(pk=data.draw(st.sampled_from(wanted))) if wanted else None

    @rule(data=st.data(), twice=st.booleans())
    @precondition(lambda self: self.orders)
    def pay_start(self, data, twice):
        """The customer presses pay (on two phones: twice)."""
        order = self.online(data, Status.PENDING_PAYMENT)
        if order is not None:
            self.start_payment(order, times=2 if twice else 1)

    def start_payment(self, order: Order, *, times: int = 1) -> None:
        for _ in range(times):
            self.attempt(lambda: services.order_payment_start(order=order.pk, tender="sandbox"))

    @rule(data=st.data(), again=st.booleans())
    def provider_notifies(self, data, again):
        """The provider captures a started payment (and may say so twice)."""
        pending = list(Payment.objects.filter(status=Payment.Status.PENDING, tender="sandbox")
                       .values_list("pk", flat=True))
        if not pending:
            return
        self.notify(Payment.objects.get(pk=data.draw(st.sampled_from(pending))), times=2 if again else 1)

    @rule(data=st.data())
    def late_notification(self, data):
        """The provider reports a capture of a payment we gave up (its order was cancelled meanwhile)."""
        given_up = list(Payment.objects.filter(status=Payment.Status.CANCELLED, tender="sandbox")
                        .values_list("pk", flat=True))
        if given_up:
            self.notify(Payment.objects.get(pk=data.draw(st.sampled_from(given_up))))

    def notify(self, payment: Payment, *, times: int = 1) -> None:
        headers, body = sandbox_notification(payment)
        for _ in range(times):
            self.attempt(lambda: services.order_payment_notify(provider="sandbox", headers=headers, body=body))

    @rule(data=st.data())
    @precondition(lambda self: self.orders)
    def cancel(self, data):
        order = self.online(data, Status.PENDING_PAYMENT, Status.PAID, Status.READY_FOR_PICKUP)
        if order is not None:
            self.attempt(lambda: services.order_cancel(order=order.pk, reason="customer cancelled"))

    @rule(data=st.data())
    @precondition(lambda self: self.orders)
    def hand_over(self, data):
        order = self.online(data, Status.READY_FOR_PICKUP)
        if order is not None:
            self.attempt(lambda: services.pickup_handover(code=order.pickup_code, store=self.store,
                                                          actor=self.clerk))

    # --- what must hold after every step ------------------------------------------------------------

    @invariant()
    def money_in_equals_money_out_plus_money_held(self):
        money_payments = Payment.objects.filter(status=Payment.Status.CAPTURED).exclude(tender__in=NOT_MONEY)
        paid_in = money_payments.aggregate(s=Sum("amount"))["s"] or ZERO
        paid_out = (Refund.objects.filter(payment__in=money_payments, status__in=["succeeded", "pending"])
                    .aggregate(s=Sum("amount"))["s"] or ZERO)
        non_money = Payment.objects.filter(status=Payment.Status.CAPTURED, tender__in=NOT_MONEY)
        non_money_net = (non_money.aggregate(s=Sum("amount"))["s"] or ZERO) - (
            Refund.objects.filter(payment__in=non_money, status__in=["succeeded", "pending"])
            .aggregate(s=Sum("amount"))["s"] or ZERO)
        held = ZERO
        for total, refunded in Order.objects.filter(paid_at__isnull=False).values_list("total", "refunded_total"):
            held += total - refunded
        assert paid_in - paid_out + non_money_net == held

    @invariant()
    def stock_left_the_stores_only_with_sales(self):
        for sku in self.skus:
            on_hand = StockLevel.objects.filter(sku=sku).aggregate(s=Sum("on_hand"))["s"] or 0
            sold = (OrderLine.objects.filter(sku=sku, order__handed_over_at__isnull=False)
                    .aggregate(s=Sum(F("qty") - F("qty_returned")))["s"] or 0)
            assert on_hand == OPENING - sold, sku.code

    @invariant()
    def points_balance_is_its_ledger(self):
        """Earned, spent, reversed and given back, the member's points are the sum of their entries
        (and the audit below checks none came back twice across a return and an exchange)."""
        self.member.refresh_from_db()
        entries = PointsEntry.objects.filter(member=self.member).aggregate(
            a=Sum("available_delta"), f=Sum("frozen_delta"))
        assert (self.member.points_available, self.member.points_frozen) == (entries["a"] or 0, entries["f"] or 0)
        assert self.member.points_available >= 0

    @invariant()
    def the_audit_finds_nothing(self):
        assert [(title, v) for _inv, title, v in audit_run() if v] == []


@pytest.mark.slow
@pytest.mark.django_db
def test_money_stock_and_points_are_conserved_through_the_faces():
    run_state_machine_as_test(MoneyMachine, settings=MACHINE)


@pytest.mark.django_db
def test_a_payment_captured_after_its_order_was_cancelled_leaves_the_books_balanced():
    """The machine's steps in the order that charged customers twice: pay pressed on two phones,
    the order cancelled, then the provider's capture arriving late, twice."""
    machine = MoneyMachine()
    try:
        order = services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP,
                                     store=machine.store, external_id="late-1",
                                     lines=[LineIn(machine.skus[1].id, 1)]).order
        machine.orders.append(order.pk)
        machine.start_payment(order, times=2)
        payments = list(Payment.objects.filter(reference=order.number))
        services.order_cancel(order=order.pk, reason="customer cancelled")
        for payment in payments:
            machine.notify(payment, times=2)

        captured = Payment.objects.filter(reference=order.number, status=Payment.Status.CAPTURED)
        assert captured.count() == 1  # one live payment per order and tender: the second start reused it
        assert Refund.objects.filter(payment__in=captured).aggregate(s=Sum("amount"))["s"] == order.total
        machine.money_in_equals_money_out_plus_money_held()
        machine.stock_left_the_stores_only_with_sales()
        machine.the_audit_finds_nothing()
    finally:
        machine.teardown()
