"""Stock under real concurrency: threads with their own PostgreSQL connections.

Every scenario starts its threads behind a barrier so they hit the same rows at
once.  Whatever the interleaving, no unit is taken twice, the only refusal is
``InsufficientStock`` (deadlocks are avoided by ordered locks, or retried), and
``audit_ledgers`` is clean afterwards.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from catalog.tests.factories import SkuFactory
from inventory import services
from inventory.exceptions import InsufficientStock, ReservationNotActive
from inventory.models import Bucket, MoveReason, Reservation, StockCountLine, StockLevel, StockMove, Transfer
from tests.concurrency import in_thread, run_at_once


pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

UNITS = 10
ATTEMPTS = 30


@pytest.fixture(autouse=True)
def no_broker_round_trips(monkeypatch):
    # Each commit would kick the outbox relay through Redis; the relay is not under test here.
    monkeypatch.setattr("o2o.outbox._kick_relay", lambda: None)


def wait_for_lock_waiter(table: str, timeout: float = 10.0) -> bool:
    """True once some other session of this database waits on a lock in a statement on ``table``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE %s",
                [f"%{table}%"],
            )
            if cur.fetchone()[0]:
                return True
        time.sleep(0.02)
    return False


def audit() -> None:
    out = StringIO()
    call_command("audit_ledgers", stdout=out)  # raises CommandError on any violation
    assert "all ledgers consistent" in out.getvalue()


def units_taken(warehouse, sku) -> dict[str, int]:
    """Units of ``sku`` that left or are held at ``warehouse``, per way out."""
    moves = StockMove.objects.filter(warehouse=warehouse, sku=sku, bucket=Bucket.SELLABLE)
    return {
        "sold": -(moves.filter(reason=MoveReason.SALE).aggregate(s=Sum("qty"))["s"] or 0),
        "shipped": -(moves.filter(reason=MoveReason.TRANSFER_OUT).aggregate(s=Sum("qty"))["s"] or 0),
        "reserved": Reservation.objects.filter(warehouse=warehouse, sku=sku, status=Reservation.Status.ACTIVE)
        .aggregate(s=Sum("qty"))["s"] or 0,
    }


def channel_job(kind: str, i: int, source_id: int, destination_id: int, lines: list[tuple[int, int]]):
    """One customer or clerk taking stock: a web order hold, a till sale, or a shipped transfer."""

    def job():
        if kind == "reserve":
            services.stock_reserve(warehouse=source_id, lines=lines, reference=f"WEB-{i}")
        elif kind == "sell":
            services.stock_sell(warehouse=source_id, lines=lines, reference=f"POS-{i}")
        else:
            transfer = services.transfer_create(source=source_id, destination=destination_id, lines=lines)
            services.transfer_ship(transfer=transfer.pk)
        return kind

    return job


KINDS = ("reserve", "sell", "transfer")


def assert_only_shortages(outcomes: list[object]) -> None:
    unexpected = [o for o in outcomes
                  if isinstance(o, BaseException) and not isinstance(o, InsufficientStock)]
    assert unexpected == [], unexpected


def test_mixed_channels_on_one_sku_never_oversell(central, store_a):
    # given 10 units at central, and 30 single-unit attempts to hold, sell or ship them
    sku = SkuFactory()
    services.stock_receive(warehouse=central, lines=[(sku.id, UNITS)])
    jobs = [channel_job(KINDS[i % 3], i, central.id, store_a.warehouse_id, [(sku.id, 1)])
            for i in range(ATTEMPTS)]

    # when they all go at once
    outcomes = run_at_once(jobs)

    # then exactly 10 succeed and every other attempt is told the stock ran out
    assert_only_shortages(outcomes)
    succeeded = [o for o in outcomes if isinstance(o, str)]
    assert len(succeeded) == UNITS
    taken = units_taken(central, sku)
    assert sum(taken.values()) == UNITS
    assert taken == {"reserved": succeeded.count("reserve"), "sold": succeeded.count("sell"),
                     "shipped": succeeded.count("transfer")}
    level = StockLevel.objects.get(warehouse=central, sku=sku, bucket=Bucket.SELLABLE)
    assert (level.on_hand, level.reserved) == (UNITS - taken["sold"] - taken["shipped"], taken["reserved"])
    assert 0 <= level.reserved <= level.on_hand
    assert Transfer.objects.filter(status=Transfer.Status.SHIPPED).count() == taken["shipped"]
    assert not StockLevel.objects.filter(warehouse=store_a.warehouse).exists()  # nothing received yet
    audit()


def test_two_skus_requested_in_opposite_orders_neither_deadlock_nor_oversell(central, store_a):
    # given 10 units each of two SKUs, and 30 requests for one of each, half listing them b-then-a
    a, b = SkuFactory(), SkuFactory()
    services.stock_receive(warehouse=central, lines=[(a.id, UNITS), (b.id, UNITS)])
    jobs = []
    for i in range(ATTEMPTS):
        lines = [(a.id, 1), (b.id, 1)] if i % 2 else [(b.id, 1), (a.id, 1)]
        jobs.append(channel_job(KINDS[(i // 2) % 3], i, central.id, store_a.warehouse_id, lines))

    outcomes = run_at_once(jobs)

    # then no deadlock escapes, exactly 10 requests got both units, the rest got nothing
    assert_only_shortages(outcomes)
    assert sum(isinstance(o, str) for o in outcomes) == UNITS
    for sku in (a, b):
        assert sum(units_taken(central, sku).values()) == UNITS
        level = StockLevel.objects.get(warehouse=central, sku=sku, bucket=Bucket.SELLABLE)
        assert 0 <= level.reserved <= level.on_hand
    assert units_taken(central, a) == units_taken(central, b)
    audit()


def test_two_skus_across_two_warehouses_in_opposite_orders(central, store_a):
    # given both warehouses stocked, and sales that each take from one while transfers move between them
    a, b = SkuFactory(), SkuFactory()
    store = store_a.warehouse
    for wh in (central, store):
        services.stock_receive(warehouse=wh, lines=[(a.id, UNITS), (b.id, UNITS)])
    jobs = []
    for i in range(ATTEMPTS):
        lines = [(a.id, 1), (b.id, 1)] if i % 2 else [(b.id, 1), (a.id, 1)]
        source, destination = (central.id, store.id) if i % 4 < 2 else (store.id, central.id)
        jobs.append(channel_job(KINDS[i % 3], i, source, destination, lines))

    outcomes = run_at_once(jobs)

    # then each warehouse gave out exactly its 10 of each SKU (15 requests came for each)
    assert_only_shortages(outcomes)
    assert sum(isinstance(o, str) for o in outcomes) == 2 * UNITS
    for wh in (central, store):
        for sku in (a, b):
            assert sum(units_taken(wh, sku).values()) == UNITS
            level = StockLevel.objects.get(warehouse=wh, sku=sku, bucket=Bucket.SELLABLE)
            assert 0 <= level.reserved <= level.on_hand
    audit()


def test_a_reservation_is_committed_or_expired_never_both(central):
    # given 24 web orders each holding one unit, all past their expiry
    sku = SkuFactory()
    services.stock_receive(warehouse=central, lines=[(sku.id, 24)])
    past = timezone.now() - timedelta(seconds=1)
    for i in range(24):
        services.stock_reserve(warehouse=central, lines=[(sku.id, 1)], reference=f"WEB-{i}", expires_at=past)

    # when their payments arrive while the expiry job runs, repeatedly, at the same moment
    def pay(i):
        return lambda: services.reservations_commit(reference=f"WEB-{i}", require=1)

    jobs = [pay(i) for i in range(24)] + [lambda: services.reservations_expire(batch_size=5)] * 6
    outcomes = run_at_once(jobs)

    # then every payment either committed its hold or found it expired, and no unit was both
    unexpected = [o for o in outcomes
                  if isinstance(o, BaseException) and not isinstance(o, ReservationNotActive)]
    assert unexpected == []
    committed = sum(isinstance(o, list) for o in outcomes[:24])
    expired = sum(o for o in outcomes[24:])
    assert committed + expired == 24
    assert Reservation.objects.filter(status="committed").count() == committed
    assert Reservation.objects.filter(status="expired").count() == expired
    level = StockLevel.objects.get(warehouse=central, sku=sku, bucket=Bucket.SELLABLE)
    assert (level.on_hand, level.reserved) == (24 - committed, 0)
    audit()


def test_expiry_skips_a_reservation_held_by_an_open_transaction_and_does_not_spin(central):
    # given two past-due holds, the first one locked by a payment still in flight
    sku = SkuFactory()
    services.stock_receive(warehouse=central, lines=[(sku.id, 5)])
    past = timezone.now() - timedelta(seconds=1)
    (busy,) = services.stock_reserve(warehouse=central, lines=[(sku.id, 1)], reference="WEB-1",
                                     expires_at=past)
    (idle,) = services.stock_reserve(warehouse=central, lines=[(sku.id, 2)], reference="WEB-2",
                                     expires_at=past)
    locked, release = threading.Event(), threading.Event()

    def payment_in_flight():
        with transaction.atomic():
            Reservation.objects.select_for_update().get(pk=busy.pk)
            locked.set()
            release.wait(timeout=30)

    holder, _ = in_thread(payment_in_flight)
    assert locked.wait(timeout=10)

    # when the expiry job runs in batches of one
    expirer, box = in_thread(lambda: services.reservations_expire(batch_size=1))
    expirer.join(timeout=5)
    finished_while_locked = not expirer.is_alive()
    release.set()
    holder.join(timeout=30)
    expirer.join(timeout=30)

    # then it expired the free hold and returned, leaving the busy one for the next run
    assert finished_while_locked, "the expiry job kept re-reading a row another transaction holds"
    assert box == {"result": 1}
    assert dict(Reservation.objects.values_list("reference", "status")) == {"WEB-1": "active",
                                                                            "WEB-2": "expired"}
    assert services.reservations_expire(batch_size=1) == 1
    assert Reservation.objects.get(pk=idle.pk).status == "expired"
    audit()


def test_count_apply_posts_its_difference_against_the_book_figure_when_counted(central):
    # given 10 on the books and a count of 8 about to be applied
    sku = SkuFactory()
    services.stock_receive(warehouse=central, lines=[(sku.id, UNITS)])
    count = services.count_create(warehouse=central, lines=[(sku.id, 8)])
    line_locked, release_line = threading.Event(), threading.Event()

    def hold_count_line():
        # parks count_apply after it has read the books and before it posts its move
        with transaction.atomic():
            StockCountLine.objects.select_for_update().get(count=count)
            line_locked.set()
            release_line.wait(timeout=30)

    holder, _ = in_thread(hold_count_line)
    assert line_locked.wait(timeout=10)
    applier, applied = in_thread(lambda: services.count_apply(count=count.pk))
    assert wait_for_lock_waiter("inventory_stockcountline")

    # when a till sells one unit while the count is being applied
    seller, sold = in_thread(lambda: services.stock_sell(warehouse=central.id, lines=[(sku.id, 1)],
                                                         reference="POS-1"))
    # it either goes through at once or queues behind the count; wait until one of the two has happened
    deadline = time.monotonic() + 10
    while seller.is_alive() and not wait_for_lock_waiter("inventory_stocklevel", timeout=0.05):
        assert time.monotonic() < deadline, "the sale neither finished nor waited"
    release_line.set()
    for t in (holder, applier, seller):
        t.join(timeout=30)

    # then the count posts what it found missing against the book when counted (10 − 8), whenever the sale
    # landed, and the sale stays
    assert "error" not in applied and "error" not in sold
    count_move = StockMove.objects.get(reference=count.number)
    line = count.lines.get()
    assert (line.expected, line.difference) == (UNITS, count_move.qty) == (10, -2)
    assert StockLevel.objects.get(pk=count_move.level_id).on_hand == 7  # 8 counted, 1 sold
    audit()
