"""Ledger properties of the stock core over random sequences of operations.

A Python model keeps the expected on_hand and reserved per (warehouse, SKU,
bucket).  After every step the database must agree with it, ``on_hand`` must
equal the sum of the level's moves, ``reserved`` the sum of its active
reservations, ``0 <= reserved <= on_hand`` must hold, and a refused operation
must have changed nothing.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from catalog.tests.factories import SkuFactory
from inventory import services
from inventory.exceptions import (
    CountBelowReserved,
    InsufficientStock,
    InvalidQuantity,
    ReservationNotActive,
)
from inventory.models import Bucket, Reservation, StockLevel
from stores.models import Warehouse
from stores.tests.factories import StoreFactory, UserFactory, WarehouseFactory

Key = tuple[int, int, str]

SELLABLE, DAMAGED = Bucket.SELLABLE.value, Bucket.DAMAGED.value
warehouse_index = st.integers(0, 1)
sku_index = st.integers(0, 1)
quantity = st.integers(1, 6)
bucket = st.sampled_from([SELLABLE, DAMAGED])
lines = st.lists(st.tuples(sku_index, quantity), min_size=1, max_size=3)
bad_quantity = st.sampled_from([0, -1, -5, 1.5, True, "2", None, Decimal("1")])


class StockMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Each example runs in a savepoint of the test's transaction and is rolled back at teardown.
        self._example = transaction.atomic()
        self._example.__enter__()
        self.user = UserFactory(username="stock-clerk")
        self.warehouses = [WarehouseFactory(kind=Warehouse.Kind.CENTRAL).id, StoreFactory().warehouse_id]
        self.skus = [s.id for s in SkuFactory.create_batch(2)]
        self.levels: dict[Key, list[int]] = {}
        self.moves = 0
        # reservation id -> (warehouse, sku, qty, reference, past due)
        self.active: dict[int, tuple[int, int, int, str, bool]] = {}
        self.references: list[str] = []
        self.in_transit: dict[int, dict[int, int]] = {}  # transfer id -> {sku: qty shipped}
        self.serial = 0

    def teardown(self) -> None:
        # The invariants below check the books after every step; the audit command checks them once more
        # the way operations staff would, before the example is rolled back.
        try:
            call_command("audit_ledgers", stdout=StringIO())
        finally:
            transaction.set_rollback(True)
            self._example.__exit__(None, None, None)

    # --- the model ------------------------------------------------------------------------

    def _next_ref(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    def _lines(self, drawn: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], dict[int, int]]:
        as_ids = [(self.skus[s], q) for s, q in drawn]
        merged: Counter[int] = Counter()
        for sku, q in as_ids:
            merged[sku] += q
        return as_ids, dict(merged)

    def _fits(self, deltas: dict[Key, tuple[int, int]]) -> bool:
        for key, (d_on_hand, d_reserved) in deltas.items():
            on_hand, reserved = self.levels.get(key, (0, 0))
            if reserved + d_reserved < 0 or on_hand + d_on_hand < reserved + d_reserved:
                return False
        return True

    def _book(self, deltas: dict[Key, tuple[int, int]]) -> None:
        for key, (d_on_hand, d_reserved) in deltas.items():
            level = self.levels.setdefault(key, [0, 0])
            level[0] += d_on_hand
            level[1] += d_reserved
            self.moves += d_on_hand != 0

    def _run(self, deltas: dict[Key, tuple[int, int]], refusal: type[Exception], call):
        """Run ``call``; it must succeed exactly when the model says the deltas fit."""
        if self._fits(deltas):
            result = call()
            self._book(deltas)
            return result
        with pytest.raises(refusal):
            call()
        return None

    # --- operations -----------------------------------------------------------------------

    @rule(w=warehouse_index, drawn=lines, b=bucket)
    def receive(self, w, drawn, b):
        wid = self.warehouses[w]
        as_ids, merged = self._lines(drawn)
        self._run({(wid, s, b): (q, 0) for s, q in merged.items()}, Exception,
                  lambda: services.stock_receive(warehouse=wid, lines=as_ids, bucket=b, actor=self.user))

    @rule(w=warehouse_index, s=sku_index, delta=st.integers(-6, 6).filter(bool), b=bucket)
    def adjust(self, w, s, delta, b):
        wid, sku = self.warehouses[w], self.skus[s]
        self._run({(wid, sku, b): (delta, 0)}, InsufficientStock,
                  lambda: services.stock_adjust(warehouse=wid, sku_id=sku, delta=delta, actor=self.user,
                                                note="check", bucket=b))

    @rule(w=warehouse_index, drawn=lines, past_due=st.booleans())
    def reserve(self, w, drawn, past_due):
        wid = self.warehouses[w]
        as_ids, merged = self._lines(drawn)
        ref = self._next_ref("WEB")
        expires = timezone.now() + (timedelta(hours=-1) if past_due else timedelta(hours=1))
        held = self._run({(wid, s, SELLABLE): (0, q) for s, q in merged.items()}, InsufficientStock,
                         lambda: services.stock_reserve(warehouse=wid, lines=as_ids, reference=ref,
                                                        expires_at=expires))
        if held is not None:
            assert sorted((r.sku_id, r.qty) for r in held) == sorted(merged.items())
            for r in held:
                self.active[r.id] = (wid, r.sku_id, r.qty, ref, past_due)
            self.references.append(ref)

    def _held_by(self, ref: str) -> dict[int, tuple[int, int, int, str, bool]]:
        return {rid: r for rid, r in self.active.items() if r[3] == ref}

    @precondition(lambda self: self.references)
    @rule(data=st.data())
    def release(self, data):
        ref = data.draw(st.sampled_from(self.references))
        held = self._held_by(ref)
        released = services.reservations_release(reference=ref, actor=self.user)
        assert released == sum(r[2] for r in held.values())
        self._book({(w, s, SELLABLE): (0, -q) for w, s, q, _, _ in held.values()})
        for rid in held:
            del self.active[rid]

    @precondition(lambda self: self.references)
    @rule(data=st.data())
    def commit(self, data):
        ref = data.draw(st.sampled_from(self.references))
        held = self._held_by(ref)
        if not held:
            with pytest.raises(ReservationNotActive):
                services.reservations_commit(reference=ref)
            return
        services.reservations_commit(reference=ref, actor=self.user, require=len(held))
        self._book({(w, s, SELLABLE): (-q, -q) for w, s, q, _, _ in held.values()})
        for rid in held:
            del self.active[rid]

    @rule()
    def expire(self):
        due = {rid: r for rid, r in self.active.items() if r[4]}
        assert services.reservations_expire() == len(due)
        for rid, (w, s, q, _, _) in due.items():
            self._book({(w, s, SELLABLE): (0, -q)})
            del self.active[rid]

    @rule(w=warehouse_index, drawn=lines)
    def sell(self, w, drawn):
        wid = self.warehouses[w]
        as_ids, merged = self._lines(drawn)
        self._run({(wid, s, SELLABLE): (-q, 0) for s, q in merged.items()}, InsufficientStock,
                  lambda: services.stock_sell(warehouse=wid, lines=as_ids, reference=self._next_ref("POS")))

    @rule(w=warehouse_index, s=sku_index, q=quantity, b=bucket)
    def restock_return(self, w, s, q, b):
        wid, sku = self.warehouses[w], self.skus[s]
        self._run({(wid, sku, b): (q, 0)}, Exception,
                  lambda: services.stock_restock_return(warehouse=wid, lines=[(sku, q)], bucket=b,
                                                        reference=self._next_ref("RMA")))

    @rule(w=warehouse_index, s=sku_index, q=quantity, to_damaged=st.booleans())
    def quarantine(self, w, s, q, to_damaged):
        wid, sku = self.warehouses[w], self.skus[s]
        sign = 1 if to_damaged else -1
        deltas = {(wid, sku, SELLABLE): (-q * sign, 0), (wid, sku, DAMAGED): (q * sign, 0)}
        self._run(deltas, InsufficientStock,
                  lambda: services.stock_quarantine(warehouse=wid, sku_id=sku, qty=q, actor=self.user,
                                                    to_damaged=to_damaged))

    @rule(w=warehouse_index, drawn=lines)
    def transfer_ship(self, w, drawn):
        source, destination = self.warehouses[w], self.warehouses[1 - w]
        as_ids, merged = self._lines(drawn)
        transfer = services.transfer_create(source=source, destination=destination, lines=as_ids)
        shipped = self._run({(source, s, SELLABLE): (-q, 0) for s, q in merged.items()}, InsufficientStock,
                            lambda: services.transfer_ship(transfer=transfer, actor=self.user))
        if shipped is None:
            services.transfer_cancel(transfer=transfer)
        else:
            self.in_transit[transfer.id] = (destination, merged)

    @precondition(lambda self: self.in_transit)
    @rule(data=st.data())
    def transfer_receive(self, data):
        transfer_id = data.draw(st.sampled_from(sorted(self.in_transit)))
        destination, shipped = self.in_transit.pop(transfer_id)
        received, deltas = {}, {}
        for sku, q in shipped.items():
            good = data.draw(st.integers(0, q))
            bad = data.draw(st.integers(0, q - good))
            received[sku] = (good, bad)
            if good:
                deltas[(destination, sku, SELLABLE)] = (good, 0)
            if bad:
                deltas[(destination, sku, DAMAGED)] = (bad, 0)
        self._run(deltas, Exception,
                  lambda: services.transfer_receive(transfer=transfer_id, received=received, actor=self.user))

    @rule(w=warehouse_index, counted=st.dictionaries(sku_index, st.integers(0, 12), min_size=1, max_size=2))
    def count(self, w, counted):
        wid = self.warehouses[w]
        figures = {self.skus[s]: n for s, n in counted.items()}
        count = services.count_create(warehouse=wid, lines=list(figures.items()))
        deltas = {}
        for sku, n in figures.items():
            on_hand, reserved = self.levels.get((wid, sku, SELLABLE), (0, 0))
            deltas[(wid, sku, SELLABLE)] = (n - on_hand, 0)
        below_reserved = any(n < self.levels.get((wid, sku, SELLABLE), (0, 0))[1]
                             for sku, n in figures.items())
        if below_reserved:
            with pytest.raises(CountBelowReserved):
                services.count_apply(count=count)
            return
        self._run(deltas, Exception, lambda: services.count_apply(count=count, actor=self.user))

    @rule(w=warehouse_index, s=sku_index, qty=bad_quantity,
          which=st.sampled_from(["receive", "sell", "reserve", "return", "quarantine", "transfer"]))
    def refuse_a_bad_quantity(self, w, s, qty, which):
        wid, other, sku = self.warehouses[w], self.warehouses[1 - w], self.skus[s]
        bad_lines = [(self.skus[1 - s], 1), (sku, qty)]
        call = {
            "receive": lambda: services.stock_receive(warehouse=wid, lines=bad_lines),
            "sell": lambda: services.stock_sell(warehouse=wid, lines=bad_lines, reference="POS-BAD"),
            "reserve": lambda: services.stock_reserve(warehouse=wid, lines=bad_lines, reference="WEB-BAD"),
            "return": lambda: services.stock_restock_return(warehouse=wid, lines=bad_lines,
                                                            reference="RMA-BAD"),
            "quarantine": lambda: services.stock_quarantine(warehouse=wid, sku_id=sku, qty=qty,
                                                            actor=self.user),
            "transfer": lambda: services.transfer_create(source=wid, destination=other, lines=bad_lines),
        }[which]
        with pytest.raises(InvalidQuantity) as info:
            call()
        assert info.value.code == "invalid_quantity"

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def books_agree_with_the_model(self):
        # Two queries per step: levels with their move totals, and the active reservations.
        levels = list(StockLevel.objects.annotate(moves_total=Sum("moves__qty"), moves_count=Count("moves"))
                      .values_list("warehouse_id", "sku_id", "bucket", "on_hand", "reserved", "moves_total",
                                   "moves_count"))
        active = dict(Reservation.objects.filter(status=Reservation.Status.ACTIVE).values_list("id", "qty"))

        # levels equal the model (a level not in the database counts as zero)
        in_db = {(w, s, b): (o, r) for w, s, b, o, r, _, _ in levels}
        for key in in_db.keys() | self.levels.keys():
            assert in_db.get(key, (0, 0)) == tuple(self.levels.get(key, (0, 0))), key
        # on_hand is the sum of the level's moves, and no move was written or lost beyond the model's
        assert sum(n for *_, n in levels) == self.moves
        for w, s, b, on_hand, reserved, moves_total, _ in levels:
            assert on_hand == (moves_total or 0), (w, s, b)
            assert 0 <= reserved <= on_hand, (w, s, b)
        # reserved is the sum of the level's active reservations
        assert active == {rid: r[2] for rid, r in self.active.items()}
        held: Counter[tuple[int, int]] = Counter()
        for w, s, q, _, _ in self.active.values():
            held[(w, s)] += q
        for w, s, b, _, reserved, _, _ in levels:
            if b == SELLABLE:
                assert reserved == held.get((w, s), 0), (w, s)


@pytest.mark.django_db
def test_stock_ledgers_hold_over_random_operation_sequences():
    run_state_machine_as_test(
        StockMachine,
        settings=settings(max_examples=40, stateful_step_count=25, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
    )
