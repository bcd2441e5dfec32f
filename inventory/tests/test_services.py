"""The stock services: every path, and every refused input.

A refused call must raise a domain error with a stable code and leave the books
exactly as they were (levels, moves, reservations, documents, outbox).  Every
test ends with ``manage.py audit_ledgers`` run against what it left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from stdnum import ean

from catalog.models import Sku
from catalog.tests.factories import SkuFactory
from inventory import services
from inventory.models import (
    Bucket,
    MoveReason,
    Receipt,
    ReceiptLine,
    ReplenishmentProposal,
    ReplenishmentRule,
    Reservation,
    StockCount,
    StockCountLine,
    StockLevel,
    StockMove,
    Transfer,
    TransferLine,
)
from inventory.exceptions import UnknownSku
from o2o.errors import DomainError
from o2o.models import OutboxMessage
from stores.models import Warehouse
from stores.tests.factories import CityFactory, RegionFactory, StoreFactory, WarehouseFactory

pytestmark = pytest.mark.django_db

NO_SUCH_ID = 8_000_000_000
BAD_QUANTITIES = [0, -1, 2.5, "3", True, None, Decimal("2")]


# --- helpers ---------------------------------------------------------------------------------


def level(warehouse, sku, bucket=Bucket.SELLABLE) -> tuple[int, int] | None:
    """(on_hand, reserved) of a level, or None when the level does not exist."""
    return (StockLevel.objects.filter(warehouse=warehouse, sku=sku, bucket=bucket)
            .values_list("on_hand", "reserved").first())


def books() -> dict[str, list]:
    """Everything a stock service may write, as plain values."""
    return {
        "levels": sorted(StockLevel.objects.values_list("id", "warehouse_id", "sku_id", "bucket", "on_hand",
                                                        "reserved")),
        "moves": sorted(StockMove.objects.values_list("id", "level_id", "qty", "reason", "reference")),
        "reservations": sorted(Reservation.objects.values_list(
            "id", "warehouse_id", "sku_id", "qty", "status", "reference", "expires_at")),
        "transfers": sorted(Transfer.objects.values_list("id", "status", "shipped_at", "received_at")),
        "transfer_lines": sorted(TransferLine.objects.values_list("id", "qty", "qty_received",
                                                                 "qty_damaged")),
        "receipts": sorted(Receipt.objects.values_list("id", flat=True)),
        "receipt_lines": sorted(ReceiptLine.objects.values_list("id", flat=True)),
        "counts": sorted(StockCount.objects.values_list("id", "status")),
        "count_lines": sorted(StockCountLine.objects.values_list("id", "counted", "expected", "difference")),
        "proposals": sorted(ReplenishmentProposal.objects.values_list("id", "status", "transfer_id")),
        "outbox": sorted(OutboxMessage.objects.values_list("id", flat=True)),
    }


def refused(code: str, call) -> DomainError:
    """Run ``call``: it must raise a DomainError with ``code`` and change nothing at all."""
    before = books()
    with pytest.raises(DomainError) as info:
        call()
    assert info.value.code == code, f"expected {code}, got {info.value!r}"
    assert books() == before
    return info.value


def moves_of(reference: str) -> list[tuple]:
    return sorted(StockMove.objects.filter(reference=reference)
                  .values_list("warehouse_id", "sku_id", "bucket", "qty", "reason"))


@pytest.fixture(autouse=True)
def audit_after_each_test(db):
    yield
    out = StringIO()
    call_command("audit_ledgers", stdout=out)  # raises CommandError on any violation
    assert "all ledgers consistent" in out.getvalue()


@pytest.fixture
def store_wh(store_a) -> Warehouse:
    return store_a.warehouse


@pytest.fixture
def stocked(central, skus):
    """Central holds 10 sellable units of each of five SKUs."""
    services.stock_receive(warehouse=central, lines=[(s.id, 10) for s in skus], reason=MoveReason.OPENING,
                           reference="OPENING")
    return skus


@pytest.fixture
def inactive_sku(db) -> Sku:
    return SkuFactory(is_active=False)


# --- the audit itself ------------------------------------------------------------------------


def test_audit_flags_levels_that_disagree_with_their_ledgers(central, sku):
    # given a level whose on_hand and reserved no longer match its moves and reservations
    services.stock_receive(warehouse=central, lines=[(sku.id, 5)])
    StockLevel.objects.filter(warehouse=central, sku=sku).update(on_hand=7, reserved=1)
    # when the audit runs, then it fails and names both broken invariants
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=out)
    assert "on_hand 7 != moves 5" in out.getvalue()
    assert "reserved 1 != active reservations 0" in out.getvalue()
    # (put the books right so the closing audit passes)
    StockLevel.objects.filter(warehouse=central, sku=sku).update(on_hand=5, reserved=0)


# --- stock_receive ---------------------------------------------------------------------------


def test_receive_creates_levels_and_sums_repeated_skus(central, skus, hq_user):
    a, b = skus[:2]
    # when receiving a, b and a again on separate lines
    moves = services.stock_receive(warehouse=central,
                                   lines=[(a.id, 3), services.StockLine(b.id, 4), (a.id, 2)],
                                   actor=hq_user, reference="PO-1", note="first delivery")
    # then each SKU has one level and one receipt move with the summed quantity
    assert level(central, a) == (5, 0)
    assert level(central, b) == (4, 0)
    assert len(moves) == 2
    assert moves_of("PO-1") == sorted([(central.id, a.id, "sellable", 5, "receipt"),
                                       (central.id, b.id, "sellable", 4, "receipt")])
    assert set(StockMove.objects.values_list("actor_id", "note")) == {(hq_user.id, "first delivery")}


def test_receive_adds_to_an_existing_level(central, stocked):
    services.stock_receive(warehouse=central, lines=[(stocked[0].id, 7)])
    assert level(central, stocked[0]) == (17, 0)
    assert StockMove.objects.filter(sku=stocked[0]).count() == 2


def test_receive_into_the_damaged_bucket_keeps_it_apart(central, sku):
    services.stock_receive(warehouse=central, lines=[(sku.id, 4)], bucket=Bucket.DAMAGED, reference="RTV-1")
    assert level(central, sku, Bucket.DAMAGED) == (4, 0)
    assert level(central, sku) is None


def test_receive_accepts_a_discontinued_sku(central, inactive_sku):
    # late deliveries of a SKU that is no longer sold still have to be booked
    services.stock_receive(warehouse=central, lines=[(inactive_sku.id, 2)])
    assert level(central, inactive_sku) == (2, 0)


def test_receive_refuses_an_unknown_bucket(central, sku):
    refused("invalid_bucket",
            lambda: services.stock_receive(warehouse=central, lines=[(sku.id, 1)], bucket="Sellable"))


def test_receive_refuses_no_lines(central):
    refused("no_lines", lambda: services.stock_receive(warehouse=central, lines=[]))


# --- receipt_create --------------------------------------------------------------------------


def test_receipt_records_lines_at_cost_and_adds_stock(central, skus, hq_user):
    a, b = skus[:2]
    receipt = services.receipt_create(warehouse=central, supplier=" 杭州服饰有限公司 ", actor=hq_user,
                                      supplier_reference="INV-88",
                                      lines=[(a.id, 12, Decimal("35.50")), (b.id, 3, 20)])
    assert receipt.number.startswith("RC")
    assert receipt.supplier == "杭州服饰有限公司"
    assert receipt.received_by == hq_user
    assert sorted(receipt.lines.values_list("sku_id", "qty", "unit_cost")) == sorted(
        [(a.id, 12, Decimal("35.50")), (b.id, 3, Decimal("20.00"))])
    assert level(central, a) == (12, 0)
    assert level(central, b) == (3, 0)
    assert moves_of(receipt.number) == sorted([(central.id, a.id, "sellable", 12, "receipt"),
                                               (central.id, b.id, "sellable", 3, "receipt")])


def test_receipt_requires_a_supplier(central, sku):
    refused("supplier_required",
            lambda: services.receipt_create(warehouse=central, supplier="  ",
                                            lines=[(sku.id, 1, Decimal("1.00"))]))


@pytest.mark.parametrize("cost", [1.5, Decimal("-0.01"), Decimal("1.005"), Decimal("NaN"), "12.00", None,
                                  True])
def test_receipt_refuses_a_unit_cost_that_is_not_a_decimal_amount(central, stocked, cost):
    refused("invalid_unit_cost",
            lambda: services.receipt_create(warehouse=central, supplier="S",
                                            lines=[(stocked[0].id, 1, Decimal("1.00")),
                                                   (stocked[1].id, 1, cost)]))


@pytest.mark.parametrize("qty", [0, -2, True, 1.0])
def test_receipt_refuses_a_bad_quantity(central, stocked, qty):
    refused("invalid_quantity",
            lambda: services.receipt_create(warehouse=central, supplier="S",
                                            lines=[(stocked[0].id, 1, Decimal("1.00")),
                                                   (stocked[1].id, qty, 0)]))


def test_receipt_refuses_an_unknown_sku(central, stocked):
    refused("unknown_sku",
            lambda: services.receipt_create(warehouse=central, supplier="S",
                                            lines=[(stocked[0].id, 1, Decimal("1.00")), (NO_SUCH_ID, 1, 0)]))


# --- stock_adjust ----------------------------------------------------------------------------


def test_adjust_up_creates_the_level_and_records_who_and_why(central, sku, hq_user):
    move = services.stock_adjust(warehouse=central, sku_id=sku.id, delta=6, actor=hq_user,
                                 note="found in back room")
    assert level(central, sku) == (6, 0)
    assert (move.qty, move.reason, move.actor_id, move.note) == (
        6, "adjustment", hq_user.id, "found in back room")


def test_adjust_down(central, stocked, hq_user):
    services.stock_adjust(warehouse=central, sku_id=stocked[0].id, delta=-4, actor=hq_user, note="broken")
    assert level(central, stocked[0]) == (6, 0)
    assert StockMove.objects.filter(sku=stocked[0], reason="adjustment").get().qty == -4


def test_adjust_down_never_goes_below_what_is_reserved(central, stocked, hq_user):
    # given 10 on hand of which 4 are held for an order
    sku = stocked[0]
    services.stock_reserve(warehouse=central, lines=[(sku.id, 4)], reference="O-1")
    # when taking 7 away, then it is refused: only 6 are not promised
    refused("insufficient_stock",
            lambda: services.stock_adjust(warehouse=central, sku_id=sku.id, delta=-7, actor=hq_user,
                                          note="x"))
    # and taking exactly the 6 free units is allowed
    services.stock_adjust(warehouse=central, sku_id=sku.id, delta=-6, actor=hq_user, note="x")
    assert level(central, sku) == (4, 4)


def test_adjust_down_on_a_level_that_does_not_exist_is_refused(central, sku, hq_user):
    refused("insufficient_stock",
            lambda: services.stock_adjust(warehouse=central, sku_id=sku.id, delta=-1, actor=hq_user,
                                          note="x"))
    assert level(central, sku) is None


def test_adjust_the_damaged_bucket(central, sku, hq_user):
    for delta in (2, -1):
        services.stock_adjust(warehouse=central, sku_id=sku.id, delta=delta, actor=hq_user, note="x",
                              bucket=Bucket.DAMAGED)
    assert level(central, sku, Bucket.DAMAGED) == (1, 0)
    assert level(central, sku) is None


@pytest.mark.parametrize("delta", [0, 1.5, True, "2", None])
def test_adjust_refuses_a_bad_delta(central, stocked, hq_user, delta):
    refused("invalid_quantity",
            lambda: services.stock_adjust(warehouse=central, sku_id=stocked[0].id, delta=delta, actor=hq_user,
                                          note="x"))


def test_adjust_refuses_an_unknown_bucket_and_sku(central, stocked, hq_user):
    refused("invalid_bucket", lambda: services.stock_adjust(warehouse=central, sku_id=stocked[0].id, delta=1,
                                                            actor=hq_user, note="x", bucket="lost"))
    refused("unknown_sku", lambda: services.stock_adjust(warehouse=central, sku_id=NO_SUCH_ID, delta=1,
                                                         actor=hq_user, note="x"))


# --- stock_sell (POS) ------------------------------------------------------------------------


def test_sell_takes_stock_at_the_moment_of_sale(central, stocked, hq_user):
    a, b = stocked[:2]
    moves = services.stock_sell(warehouse=central, lines=[(a.id, 2), (b.id, 1), (a.id, 1)], reference="POS-1",
                                actor=hq_user)
    assert level(central, a) == (7, 0)
    assert level(central, b) == (9, 0)
    assert {m.actor_id for m in moves} == {hq_user.id}
    assert moves_of("POS-1") == sorted([(central.id, a.id, "sellable", -3, "sale"),
                                        (central.id, b.id, "sellable", -1, "sale")])


def test_sell_only_takes_unreserved_stock(central, stocked):
    # given 10 on hand, 8 of them held for an online order
    sku = stocked[0]
    services.stock_reserve(warehouse=central, lines=[(sku.id, 8)], reference="WEB-1")
    # when the till sells 3, then it is refused: the held units are not for sale
    error = refused("insufficient_stock",
                    lambda: services.stock_sell(warehouse=central, lines=[(sku.id, 3)], reference="POS-1"))
    assert error.params["skus"] == [sku.code]
    # and the 2 free units can be sold
    services.stock_sell(warehouse=central, lines=[(sku.id, 2)], reference="POS-2")
    assert level(central, sku) == (8, 8)


def test_sell_with_one_short_line_changes_nothing_at_all(central, stocked):
    a, b, c = stocked[:3]
    error = refused("insufficient_stock", lambda: services.stock_sell(
        warehouse=central, lines=[(a.id, 5), (b.id, 11), (c.id, 1)], reference="POS-1"))
    assert error.params["skus"] == [b.code]
    assert [level(central, s) for s in (a, b, c)] == [(10, 0)] * 3


def test_sell_never_takes_damaged_stock(central, sku):
    services.stock_receive(warehouse=central, lines=[(sku.id, 5)], bucket=Bucket.DAMAGED)
    refused("insufficient_stock",
            lambda: services.stock_sell(warehouse=central, lines=[(sku.id, 1)], reference="P"))


def test_sell_of_a_sku_never_stocked_here_is_refused(store_wh, stocked):
    refused("insufficient_stock",
            lambda: services.stock_sell(warehouse=store_wh, lines=[(stocked[0].id, 1)], reference="P"))


# --- stock_restock_return --------------------------------------------------------------------


def test_return_restocks_sellable_units(central, stocked):
    services.stock_sell(warehouse=central, lines=[(stocked[0].id, 3)], reference="POS-1")
    services.stock_restock_return(warehouse=central, lines=[(stocked[0].id, 2)], reference="RMA-1")
    assert level(central, stocked[0]) == (9, 0)
    assert moves_of("RMA-1") == [(central.id, stocked[0].id, "sellable", 2, "return")]


def test_a_damaged_return_goes_to_the_damaged_bucket_of_the_receiving_store(store_wh, stocked):
    # bought online from central, returned at a store: the store takes it in
    services.stock_restock_return(warehouse=store_wh, lines=[(stocked[0].id, 1)], reference="RMA-2",
                                  bucket=Bucket.DAMAGED)
    assert level(store_wh, stocked[0], Bucket.DAMAGED) == (1, 0)
    assert level(store_wh, stocked[0]) is None
    assert moves_of("RMA-2") == [(store_wh.id, stocked[0].id, "damaged", 1, "return")]


def test_return_of_a_discontinued_sku_is_accepted(central, inactive_sku):
    services.stock_restock_return(warehouse=central, lines=[(inactive_sku.id, 1)], reference="RMA-3")
    assert level(central, inactive_sku) == (1, 0)


def test_return_refuses_an_unknown_bucket(central, sku):
    refused("invalid_bucket", lambda: services.stock_restock_return(warehouse=central, lines=[(sku.id, 1)],
                                                                    reference="R", bucket="returns"))


# --- stock_quarantine ------------------------------------------------------------------------


def test_quarantine_moves_units_to_damaged_and_back(central, stocked, hq_user):
    sku = stocked[0]
    # when 3 units are found damaged
    moves = services.stock_quarantine(warehouse=central, sku_id=sku.id, qty=3, actor=hq_user, note="stained")
    assert level(central, sku) == (7, 0)
    assert level(central, sku, Bucket.DAMAGED) == (3, 0)
    assert sorted((m.bucket, m.qty, m.reason) for m in moves) == [("damaged", 3, "quarantine"),
                                                                   ("sellable", -3, "quarantine")]
    # and 2 turn out fine after cleaning
    services.stock_quarantine(warehouse=central, sku_id=sku.id, qty=2, actor=hq_user, to_damaged=False)
    assert level(central, sku) == (9, 0)
    assert level(central, sku, Bucket.DAMAGED) == (1, 0)


def test_quarantine_cannot_take_reserved_units(central, stocked, hq_user):
    sku = stocked[0]
    services.stock_reserve(warehouse=central, lines=[(sku.id, 8)], reference="WEB-1")
    refused("insufficient_stock",
            lambda: services.stock_quarantine(warehouse=central, sku_id=sku.id, qty=3, actor=hq_user))


def test_quarantine_back_cannot_release_more_than_is_damaged(central, stocked, hq_user):
    sku = stocked[0]
    services.stock_quarantine(warehouse=central, sku_id=sku.id, qty=1, actor=hq_user)
    refused("insufficient_stock",
            lambda: services.stock_quarantine(warehouse=central, sku_id=sku.id, qty=2, actor=hq_user,
                                              to_damaged=False))


@pytest.mark.parametrize("qty", [0, -3, True, 1.0, "1"])
def test_quarantine_refuses_a_bad_quantity(central, stocked, hq_user, qty):
    refused("invalid_quantity",
            lambda: services.stock_quarantine(warehouse=central, sku_id=stocked[0].id, qty=qty,
                                              actor=hq_user))


def test_quarantine_refuses_an_unknown_sku(central, hq_user):
    refused("unknown_sku",
            lambda: services.stock_quarantine(warehouse=central, sku_id=NO_SUCH_ID, qty=1, actor=hq_user))


# --- stock_reserve ---------------------------------------------------------------------------


def test_reserve_holds_units_without_moving_them(central, stocked):
    a, b = stocked[:2]
    before = timezone.now()
    held = services.stock_reserve(warehouse=central, lines=[(a.id, 2), (b.id, 3)], reference="WEB-1")
    assert level(central, a) == (10, 2)
    assert level(central, b) == (10, 3)
    assert StockMove.objects.exclude(reference="OPENING").count() == 0
    assert sorted((r.sku_id, r.qty, r.status, r.reference) for r in held) == sorted(
        [(a.id, 2, "active", "WEB-1"), (b.id, 3, "active", "WEB-1")])
    ttl = timedelta(minutes=settings.O2O_RESERVATION_TTL_MINUTES)
    for r in Reservation.objects.all():
        assert before + ttl <= r.expires_at <= timezone.now() + ttl


def test_reserve_with_an_explicit_expiry(central, stocked):
    until = timezone.now() + timedelta(hours=2)
    (held,) = services.stock_reserve(warehouse=central, lines=[(stocked[0].id, 1)], reference="W",
                                     expires_at=until)
    assert Reservation.objects.get(pk=held.pk).expires_at == until


def test_reserve_cannot_hold_what_another_order_holds(central, stocked):
    sku = stocked[0]
    services.stock_reserve(warehouse=central, lines=[(sku.id, 8)], reference="WEB-1")
    refused("insufficient_stock",
            lambda: services.stock_reserve(warehouse=central, lines=[(sku.id, 3)], reference="WEB-2"))
    services.stock_reserve(warehouse=central, lines=[(sku.id, 2)], reference="WEB-2")
    assert level(central, sku) == (10, 10)


def test_reserve_with_one_short_line_holds_nothing(central, stocked):
    a, b = stocked[:2]
    refused("insufficient_stock",
            lambda: services.stock_reserve(warehouse=central, lines=[(a.id, 1), (b.id, 11)],
                                           reference="WEB-1"))
    assert Reservation.objects.count() == 0


def test_reserve_never_holds_damaged_units(central, sku):
    services.stock_receive(warehouse=central, lines=[(sku.id, 3)], bucket=Bucket.DAMAGED)
    refused("insufficient_stock",
            lambda: services.stock_reserve(warehouse=central, lines=[(sku.id, 1)], reference="WEB-1"))


# --- reservations_release --------------------------------------------------------------------


def test_release_by_reference_frees_that_order_only(central, stocked, hq_user):
    a, b = stocked[:2]
    services.stock_reserve(warehouse=central, lines=[(a.id, 2), (b.id, 3)], reference="WEB-1")
    services.stock_reserve(warehouse=central, lines=[(a.id, 1)], reference="WEB-2")
    released = services.reservations_release(reference="WEB-1", actor=hq_user)
    assert released == 5
    assert level(central, a) == (10, 1)
    assert level(central, b) == (10, 0)
    assert sorted(Reservation.objects.values_list("reference", "status")) == [
        ("WEB-1", "released"), ("WEB-1", "released"), ("WEB-2", "active")]
    assert Reservation.objects.filter(status="released", closed_at__isnull=True).count() == 0


def test_release_by_ids_frees_only_those(central, stocked):
    a, b = stocked[:2]
    first, second = services.stock_reserve(warehouse=central, lines=[(a.id, 2), (b.id, 3)], reference="WEB-1")
    assert services.reservations_release(ids=[second.id]) == 3
    assert level(central, a) == (10, 2)
    assert level(central, b) == (10, 0)
    assert Reservation.objects.get(pk=first.pk).status == "active"


def test_releasing_twice_is_a_no_op(central, stocked):
    services.stock_reserve(warehouse=central, lines=[(stocked[0].id, 4)], reference="WEB-1")
    services.reservations_release(reference="WEB-1")
    before = books()
    assert services.reservations_release(reference="WEB-1") == 0
    assert services.reservations_release(ids=list(Reservation.objects.values_list("id", flat=True))) == 0
    assert services.reservations_release(reference="NO-SUCH-ORDER") == 0
    assert books() == before


def test_release_after_commit_changes_nothing(central, stocked):
    services.stock_reserve(warehouse=central, lines=[(stocked[0].id, 4)], reference="WEB-1")
    services.reservations_commit(reference="WEB-1")
    before = books()
    assert services.reservations_release(reference="WEB-1") == 0
    assert books() == before


def test_release_as_expired_marks_the_reservations_expired(central, stocked):
    services.stock_reserve(warehouse=central, lines=[(stocked[0].id, 4)], reference="WEB-1")
    assert services.reservations_release(reference="WEB-1", expired=True) == 4
    assert list(Reservation.objects.values_list("status", flat=True)) == ["expired"]


# --- reservations_commit ---------------------------------------------------------------------


def test_commit_turns_the_hold_into_a_sale(central, stocked, hq_user):
    a, b = stocked[:2]
    services.stock_reserve(warehouse=central, lines=[(a.id, 2), (b.id, 3)], reference="WEB-1")
    moves = services.reservations_commit(reference="WEB-1", actor=hq_user, require=2)
    assert level(central, a) == (8, 0)
    assert level(central, b) == (7, 0)
    assert {m.actor_id for m in moves} == {hq_user.id}
    assert moves_of("WEB-1") == sorted([(central.id, a.id, "sellable", -2, "sale"),
                                        (central.id, b.id, "sellable", -3, "sale")])
    assert set(Reservation.objects.values_list("status", flat=True)) == {"committed"}
    assert not Reservation.objects.filter(closed_at__isnull=True).exists()


def test_commit_with_require_refuses_when_one_reservation_has_expired(central, stocked):
    # given an order holding two SKUs, one of whose holds has run out and been expired
    a, b = stocked[:2]
    held_a, held_b = services.stock_reserve(warehouse=central, lines=[(a.id, 2), (b.id, 3)],
                                            reference="WEB-1")
    Reservation.objects.filter(pk=held_b.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.reservations_expire() == 1
    # when the payment arrives and the order commits expecting both holds
    refused("reservation_not_active", lambda: services.reservations_commit(reference="WEB-1", require=2))
    # then the remaining hold is untouched, still active and still reserved
    assert Reservation.objects.get(pk=held_a.pk).status == "active"
    assert level(central, a) == (10, 2)
    assert level(central, b) == (10, 0)


def test_commit_of_an_unknown_or_already_committed_order_is_refused(central, stocked):
    refused("reservation_not_active", lambda: services.reservations_commit(reference="NO-SUCH-ORDER"))
    services.stock_reserve(warehouse=central, lines=[(stocked[0].id, 1)], reference="WEB-1")
    services.reservations_commit(reference="WEB-1")
    refused("reservation_not_active", lambda: services.reservations_commit(reference="WEB-1"))
    assert level(central, stocked[0]) == (9, 0)


def test_commit_after_release_is_refused(central, stocked):
    services.stock_reserve(warehouse=central, lines=[(stocked[0].id, 1)], reference="WEB-1")
    services.reservations_release(reference="WEB-1")
    refused("reservation_not_active", lambda: services.reservations_commit(reference="WEB-1"))


# --- reservations_expire ---------------------------------------------------------------------


def test_expire_releases_only_past_due_active_reservations(central, stocked):
    a, b, c, d = stocked[:4]
    now = timezone.now()
    (past,) = services.stock_reserve(warehouse=central, lines=[(a.id, 2)], reference="W-PAST",
                                     expires_at=now - timedelta(minutes=1))
    (future,) = services.stock_reserve(warehouse=central, lines=[(b.id, 3)], reference="W-FUTURE",
                                       expires_at=now + timedelta(hours=1))
    (paid,) = services.stock_reserve(warehouse=central, lines=[(c.id, 4)], reference="W-PAID")
    Reservation.objects.filter(pk=paid.pk).update(expires_at=None)  # a paid order's hold does not run out
    (done,) = services.stock_reserve(warehouse=central, lines=[(d.id, 1)], reference="W-DONE",
                                     expires_at=now - timedelta(minutes=1))
    services.reservations_commit(reference="W-DONE")
    last = OutboxMessage.objects.aggregate(m=Max("id"))["m"]

    assert services.reservations_expire() == 1

    assert dict(Reservation.objects.values_list("reference", "status")) == {
        "W-PAST": "expired", "W-FUTURE": "active", "W-PAID": "active", "W-DONE": "committed"}
    assert [level(central, s) for s in (a, b, c, d)] == [(10, 0), (10, 3), (10, 4), (9, 0)]
    expired_msg = OutboxMessage.objects.get(id__gt=last, topic="stock.reservations_expired")
    assert expired_msg.payload == {"reservation_ids": [past.id]}
    # and running it again finds nothing more to do
    before = books()
    assert services.reservations_expire() == 0
    assert books() == before
    # until the clock passes the next expiry
    assert services.reservations_expire(now=now + timedelta(hours=2)) == 1
    assert Reservation.objects.get(pk=future.pk).status == "expired"


def test_expire_works_through_many_batches(central, stocked):
    past = timezone.now() - timedelta(seconds=1)
    for i, sku in enumerate(stocked):
        services.stock_reserve(warehouse=central, lines=[(sku.id, i + 1)], reference=f"W-{i}",
                               expires_at=past)
    assert services.reservations_expire(batch_size=2) == 5
    assert not Reservation.objects.filter(status="active").exists()
    assert set(StockLevel.objects.values_list("reserved", flat=True)) == {0}


# --- transfers -------------------------------------------------------------------------------


def test_transfer_create_drafts_without_moving_stock(central, store_wh, stocked, hq_user):
    a, b = stocked[:2]
    transfer = services.transfer_create(source=central, destination=store_wh, actor=hq_user, note="weekly",
                                        lines=[(a.id, 2), (b.id, 1), (a.id, 3)])
    assert transfer.number.startswith("TR")
    assert (transfer.status, transfer.created_by, transfer.note) == ("draft", hq_user, "weekly")
    assert sorted(transfer.lines.values_list("sku_id", "qty")) == sorted([(a.id, 5), (b.id, 1)])
    assert level(central, a) == (10, 0)
    assert StockMove.objects.exclude(reference="OPENING").count() == 0


def test_shipped_units_are_out_of_source_and_in_transit(central, store_wh, stocked, hq_user):
    a, b = stocked[:2]
    transfer = services.transfer_create(source=central, destination=store_wh, lines=[(a.id, 6), (b.id, 2)])
    services.transfer_ship(transfer=transfer, actor=hq_user)
    transfer.refresh_from_db()
    assert (transfer.status, transfer.shipped_by) == ("shipped", hq_user)
    assert transfer.shipped_at is not None
    # out of the source, not yet at the destination: only the transfer holds them
    assert level(central, a) == (4, 0)
    assert level(central, b) == (8, 0)
    assert level(store_wh, a) is None
    assert moves_of(transfer.number) == sorted([(central.id, a.id, "sellable", -6, "transfer_out"),
                                                (central.id, b.id, "sellable", -2, "transfer_out")])
    in_transit = dict(TransferLine.objects.filter(transfer__status="shipped").values_list("sku_id", "qty"))
    assert level(central, a)[0] + in_transit[a.id] == 10


def test_receive_with_partial_sellable_damaged_and_a_discrepancy(central, store_wh, stocked, hq_user):
    a, b = stocked[:2]
    transfer = services.transfer_create(source=central, destination=store_wh, lines=[(a.id, 6), (b.id, 2)])
    services.transfer_ship(transfer=transfer)
    # when 4 of a arrive fine, 1 broken, 1 missing; b not listed at all (lost)
    services.transfer_receive(transfer=transfer, actor=hq_user, received={a.id: (4, 1)})
    transfer.refresh_from_db()
    assert (transfer.status, transfer.received_by) == ("received", hq_user)
    assert level(store_wh, a) == (4, 0)
    assert level(store_wh, a, Bucket.DAMAGED) == (1, 0)
    assert level(store_wh, b) is None
    lines = {ln.sku_id: ln for ln in transfer.lines.all()}
    assert (lines[a.id].qty_received, lines[a.id].qty_damaged, lines[a.id].discrepancy) == (4, 1, 1)
    assert (lines[b.id].qty_received, lines[b.id].qty_damaged, lines[b.id].discrepancy) == (0, 0, 2)
    assert sorted(m for m in moves_of(transfer.number) if m[4] == "transfer_in") == sorted(
        [(store_wh.id, a.id, "sellable", 4, "transfer_in"), (store_wh.id, a.id, "damaged", 1, "transfer_in")])


def test_receive_without_figures_takes_everything_in_as_sellable(central, store_wh, stocked):
    transfer = services.transfer_create(source=central, destination=store_wh, lines=[(stocked[0].id, 6)])
    services.transfer_ship(transfer=transfer)
    services.transfer_receive(transfer=transfer)
    assert level(central, stocked[0]) == (4, 0)
    assert level(store_wh, stocked[0]) == (6, 0)
    assert transfer.lines.get().discrepancy == 0


def test_receive_with_an_empty_mapping_books_nothing_arrived(central, store_wh, stocked):
    # a receiving form that lists only the lines that arrived sends {} when the truck was empty
    transfer = services.transfer_create(source=central, destination=store_wh, lines=[(stocked[0].id, 6)])
    services.transfer_ship(transfer=transfer)
    services.transfer_receive(transfer=transfer, received={})
    assert level(store_wh, stocked[0]) is None
    assert transfer.lines.get().discrepancy == 6
    assert Transfer.objects.get(pk=transfer.pk).status == "received"


@pytest.mark.parametrize("received, code", [
    ({"a": (6, 1)}, "invalid_received_quantity"),
    ({"a": (-1, 0)}, "invalid_received_quantity"),
    ({"a": (True, 0)}, "invalid_received_quantity"),
    ({"a": (2.0, 0)}, "invalid_received_quantity"),
    ({"a": (1, 0), "other": (1, 0)}, "unknown_sku"),
])
def test_receive_refuses_impossible_figures(central, store_wh, stocked, received, code):
    a, other = stocked[0], stocked[1]
    transfer = services.transfer_create(source=central, destination=store_wh, lines=[(a.id, 6)])
    services.transfer_ship(transfer=transfer)
    figures = {(a.id if k == "a" else other.id): v for k, v in received.items()}
    refused(code, lambda: services.transfer_receive(transfer=transfer, received=figures))
    assert Transfer.objects.get(pk=transfer.pk).status == "shipped"


def test_ship_cannot_take_reserved_units_and_leaves_the_draft(central, store_wh, stocked):
    sku = stocked[0]
    services.stock_reserve(warehouse=central, lines=[(sku.id, 5)], reference="WEB-1")
    transfer = services.transfer_create(source=central, destination=store_wh, lines=[(sku.id, 6)])
    refused("insufficient_stock", lambda: services.transfer_ship(transfer=transfer))
    assert Transfer.objects.get(pk=transfer.pk).status == "draft"


def test_cancel_a_draft(central, store_wh, stocked):
    transfer = services.transfer_create(source=central, destination=store_wh, lines=[(stocked[0].id, 6)])
    services.transfer_cancel(transfer=transfer.pk)
    assert Transfer.objects.get(pk=transfer.pk).status == "cancelled"
    assert level(central, stocked[0]) == (10, 0)


def _transfer_in_state(state: str, source, destination, sku) -> Transfer:
    transfer = services.transfer_create(source=source, destination=destination, lines=[(sku.id, 1)])
    if state in ("shipped", "received"):
        services.transfer_ship(transfer=transfer)
    if state == "received":
        services.transfer_receive(transfer=transfer)
    if state == "cancelled":
        services.transfer_cancel(transfer=transfer)
    return transfer


@pytest.mark.parametrize("state, action", [
    ("shipped", "ship"), ("received", "ship"), ("cancelled", "ship"),
    ("draft", "receive"), ("received", "receive"), ("cancelled", "receive"),
    ("shipped", "cancel"), ("received", "cancel"), ("cancelled", "cancel"),
])
def test_wrong_state_transitions_are_refused(central, store_wh, stocked, state, action):
    transfer = _transfer_in_state(state, central, store_wh, stocked[0])
    call = {"ship": services.transfer_ship, "receive": services.transfer_receive,
            "cancel": services.transfer_cancel}[action]
    error = refused("invalid_state", lambda: call(transfer=transfer))
    assert error.params == {"status": state, "action": action}


def test_transfer_to_the_same_warehouse_is_refused(central, stocked):
    refused("transfer_same_warehouse",
            lambda: services.transfer_create(source=central, destination=central.pk,
                                             lines=[(stocked[0].id, 1)]))


# --- counts ----------------------------------------------------------------------------------


def test_count_apply_posts_count_moves_equal_to_the_difference(central, stocked, hq_user):
    a, b, c = stocked[:3]
    new = SkuFactory()  # counted but never booked here
    count = services.count_create(warehouse=central, actor=hq_user,
                                  lines=[(a.id, 7), (b.id, 12), (c.id, 10), (new.id, 3)])
    assert count.status == "draft"
    assert level(central, a) == (10, 0)  # creating the count moves nothing

    services.count_apply(count=count, actor=hq_user)

    count.refresh_from_db()
    assert (count.status, count.applied_by) == ("applied", hq_user)
    assert [level(central, s) for s in (a, b, c, new)] == [(7, 0), (12, 0), (10, 0), (3, 0)]
    assert moves_of(count.number) == sorted([(central.id, a.id, "sellable", -3, "count"),
                                             (central.id, b.id, "sellable", 2, "count"),
                                             (central.id, new.id, "sellable", 3, "count")])
    assert sorted(count.lines.values_list("sku_id", "expected", "difference")) == sorted(
        [(a.id, 10, -3), (b.id, 10, 2), (c.id, 10, 0), (new.id, 0, 3)])


def test_sales_between_counting_and_applying_are_kept(central, sku):
    # Given 20 on the books and a shelf counted at 18 (two missing)
    services.stock_receive(warehouse=central, lines=[(sku.id, 20)])
    count = services.count_create(warehouse=central, lines=[(sku.id, 18)])
    # When one unit is sold before the count is applied
    services.stock_sell(warehouse=central, lines=[(sku.id, 1)], reference="POS-1")
    services.count_apply(count=count)
    # Then the count posts what it found missing (two), and the sale stays: 17 on the shelf, 17 on the books
    assert level(central, sku) == (17, 0)
    assert moves_of(count.number) == [(central.id, sku.id, "sellable", -2, "count")]
    assert list(count.lines.values_list("expected", "difference")) == [(20, -2)]


def test_a_receipt_between_counting_and_applying_is_kept(central, sku):
    services.stock_receive(warehouse=central, lines=[(sku.id, 5)])
    count = services.count_create(warehouse=central, lines=[(sku.id, 6)])  # one more found than booked
    services.stock_receive(warehouse=central, lines=[(sku.id, 10)])
    services.count_apply(count=count)
    assert level(central, sku) == (16, 0)


def test_audit_flags_a_count_applied_against_the_book_of_another_moment(central, sku):
    # Given a count (20 booked, 18 counted) applied correctly after one sale: it moved −2
    services.stock_receive(warehouse=central, lines=[(sku.id, 20)])
    count = services.count_create(warehouse=central, lines=[(sku.id, 18)])
    services.stock_sell(warehouse=central, lines=[(sku.id, 1)], reference="POS-1")
    services.count_apply(count=count)
    line = count.lines.get()
    # When its line says it was posted against the book at applying (19 → −1), as stale counts were
    StockCountLine.objects.filter(pk=line.pk).update(expected=19, difference=-1)
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=out)
    assert (f"count {count.number}, sku {sku.id}: counted 18 against 19 on the books when counted, "
            f"difference -1, but the count moved -2") in out.getvalue()
    StockCountLine.objects.filter(pk=line.pk).update(expected=20, difference=-2)  # the closing audit passes


def test_count_lines_for_the_same_sku_add_up(central, stocked):
    # the same SKU found on the shop floor and in the back room
    count = services.count_create(warehouse=central, lines=[(stocked[0].id, 4), (stocked[0].id, 5)])
    services.count_apply(count=count)
    assert level(central, stocked[0]) == (9, 0)


def test_count_below_reserved_is_refused(central, stocked):
    sku = stocked[0]
    services.stock_reserve(warehouse=central, lines=[(sku.id, 4)], reference="WEB-1")
    count = services.count_create(warehouse=central, lines=[(sku.id, 3)])
    error = refused("count_below_reserved", lambda: services.count_apply(count=count))
    assert error.params == {"sku_id": sku.id, "reserved": 4}
    assert StockCount.objects.get(pk=count.pk).status == "draft"
    # counting exactly what is reserved is fine
    services.count_apply(count=services.count_create(warehouse=central, lines=[(sku.id, 4)]))
    assert level(central, sku) == (4, 4)


def test_applying_a_count_twice_is_refused(central, stocked):
    count = services.count_create(warehouse=central, lines=[(stocked[0].id, 8)])
    services.count_apply(count=count.pk)
    refused("invalid_state", lambda: services.count_apply(count=count))
    assert level(central, stocked[0]) == (8, 0)


@pytest.mark.parametrize("qty", [-1, 1.5, True, "4", None])
def test_count_refuses_a_bad_quantity(central, stocked, qty):
    refused("invalid_quantity",
            lambda: services.count_create(warehouse=central,
                                          lines=[(stocked[0].id, 1), (stocked[1].id, qty)]))


def test_count_refuses_no_lines_and_unknown_skus(central, stocked):
    refused("no_lines", lambda: services.count_create(warehouse=central, lines=[]))
    refused("unknown_sku", lambda: services.count_create(warehouse=central, lines=[(NO_SUCH_ID, 1)]))


# --- replenishment ---------------------------------------------------------------------------


@pytest.fixture
def other_region_central(db) -> Warehouse:
    city = CityFactory(code="SH", name="上海", region=RegionFactory(code="SH", name="上海"))
    return WarehouseFactory(kind=Warehouse.Kind.CENTRAL, code="CW02", city=city)


TODAY = date(2026, 11, 23)


def test_propose_a_transfer_from_central_of_the_same_region(central, store_wh, stocked):
    sku = stocked[0]
    services.stock_receive(warehouse=store_wh, lines=[(sku.id, 2)])
    services.stock_reserve(warehouse=store_wh, lines=[(sku.id, 1)], reference="WEB-1")
    ReplenishmentRule.objects.create(warehouse=store_wh, sku=sku, min_qty=3, max_qty=8)

    assert services.replenishment_propose(business_date=TODAY) == 1

    proposal = ReplenishmentProposal.objects.get()
    assert (proposal.kind, proposal.source, proposal.warehouse, proposal.sku, proposal.available,
            proposal.qty, proposal.status, proposal.business_date) == (
        "transfer", central, store_wh, sku, 1, 7, "open", TODAY)


def test_propose_a_purchase_when_central_of_the_region_lacks_the_units(central, store_wh,
                                                                        other_region_central, stocked):
    sku = stocked[0]  # central holds 10
    services.stock_receive(warehouse=other_region_central, lines=[(sku.id, 100)])
    ReplenishmentRule.objects.create(warehouse=store_wh, sku=sku, min_qty=5, max_qty=12)
    assert services.replenishment_propose(business_date=TODAY) == 1
    proposal = ReplenishmentProposal.objects.get()
    assert (proposal.kind, proposal.source, proposal.qty) == ("purchase", None, 12)


def test_propose_does_not_promise_the_same_central_units_twice(central, stocked):
    sku = stocked[0]  # central holds 10
    store_1, store_2 = StoreFactory().warehouse, StoreFactory().warehouse
    for wh in (store_1, store_2):
        ReplenishmentRule.objects.create(warehouse=wh, sku=sku, min_qty=1, max_qty=6)
    assert services.replenishment_propose(business_date=TODAY) == 2
    assert sorted(ReplenishmentProposal.objects.values_list("kind", "qty")) == [("purchase", 6),
                                                                                ("transfer", 6)]


def test_propose_purchases_for_central_and_skips_levels_above_minimum(central, store_wh, stocked):
    a, b = stocked[:2]
    ReplenishmentRule.objects.create(warehouse=central, sku=a, min_qty=20, max_qty=50)
    ReplenishmentRule.objects.create(warehouse=central, sku=b, min_qty=10, max_qty=50)  # has 10: fine
    assert services.replenishment_propose(business_date=TODAY) == 1
    proposal = ReplenishmentProposal.objects.get()
    assert (proposal.kind, proposal.warehouse, proposal.sku, proposal.qty) == ("purchase", central, a, 40)


def test_re_running_the_same_day_adds_nothing(central, store_wh, stocked, hq_user):
    sku = stocked[0]
    ReplenishmentRule.objects.create(warehouse=store_wh, sku=sku, min_qty=3, max_qty=8)
    assert services.replenishment_propose(business_date=TODAY) == 1
    # even when central has since run dry, so today's answer would now be a purchase
    services.stock_sell(warehouse=central, lines=[(sku.id, 10)], reference="POS-1")
    before = books()
    assert services.replenishment_propose(business_date=TODAY) == 0
    assert books() == before
    # the next day is a new day
    assert services.replenishment_propose(business_date=TODAY + timedelta(days=1)) == 1
    assert sorted(ReplenishmentProposal.objects.values_list("business_date", "kind")) == [
        (TODAY, "transfer"), (TODAY + timedelta(days=1), "purchase")]


def test_accept_a_transfer_proposal_drafts_the_transfer(central, store_wh, stocked, hq_user):
    sku = stocked[0]
    ReplenishmentRule.objects.create(warehouse=store_wh, sku=sku, min_qty=3, max_qty=8)
    services.replenishment_propose(business_date=TODAY)
    proposal = ReplenishmentProposal.objects.get()

    transfer = services.proposal_accept(proposal=proposal, actor=hq_user)

    assert (transfer.status, transfer.source, transfer.destination, transfer.created_by) == (
        "draft", central, store_wh, hq_user)
    assert list(transfer.lines.values_list("sku_id", "qty")) == [(sku.id, 8)]
    proposal.refresh_from_db()
    assert (proposal.status, proposal.transfer) == ("accepted", transfer)
    refused("invalid_state", lambda: services.proposal_accept(proposal=proposal.pk))


def test_accept_a_purchase_proposal(central, stocked):
    ReplenishmentRule.objects.create(warehouse=central, sku=stocked[0], min_qty=20, max_qty=30)
    services.replenishment_propose(business_date=TODAY)
    proposal = ReplenishmentProposal.objects.get()
    assert services.proposal_accept(proposal=proposal) is None
    proposal.refresh_from_db()
    assert (proposal.status, proposal.transfer) == ("accepted", None)
    assert not Transfer.objects.exists()


# --- sku_by_barcode --------------------------------------------------------------------------


def _with_check_digit(body: str) -> str:
    return body + ean.calc_check_digit(body)


def _wrong_check_digit(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


@pytest.fixture
def scan_skus(db) -> dict[str, Sku]:
    return {
        "ean13": SkuFactory(code="TSHIRT-RED-M", barcode=_with_check_digit("690123456789")),
        "ean8": SkuFactory(code="SOCKS-01", barcode=_with_check_digit("9638507")),
        "upca": SkuFactory(code="IMPORT-01", barcode=_with_check_digit("03600029145")),
        "off": SkuFactory(code="OLD-01", barcode=_with_check_digit("690999999999"), is_active=False),
    }


@pytest.mark.parametrize("kind", ["ean13", "ean8", "upca"])
def test_scan_finds_the_sku_by_its_barcode(scan_skus, kind):
    sku = scan_skus[kind]
    assert services.sku_by_barcode(sku.barcode) == sku
    assert services.sku_by_barcode(f"  {sku.barcode}\n") == sku


def test_scan_finds_the_sku_by_its_code(scan_skus):
    assert services.sku_by_barcode("TSHIRT-RED-M") == scan_skus["ean13"]


def test_upc_a_and_its_ean_13_form_are_the_same_code(scan_skus):
    # scanners often send a UPC-A as the 13-digit EAN with a leading zero, and the reverse
    upca = scan_skus["upca"]
    assert services.sku_by_barcode("0" + upca.barcode) == upca
    ean_form = SkuFactory(barcode="0" + _with_check_digit("07501031311"))
    assert services.sku_by_barcode(ean_form.barcode[1:]) == ean_form


@pytest.mark.parametrize("kind", ["ean13", "ean8", "upca"])
def test_scan_with_a_wrong_check_digit_is_an_invalid_barcode(scan_skus, kind):
    bad = _wrong_check_digit(scan_skus[kind].barcode)
    with pytest.raises(DomainError) as info:
        services.sku_by_barcode(bad)
    assert (info.value.code, info.value.field) == ("invalid_barcode", "barcode")


@pytest.mark.parametrize("scanned", ["", "   ", "12345", "ABCDEFGH", "69012345678901"])
def test_scan_of_something_that_is_no_barcode(scan_skus, scanned):
    with pytest.raises(DomainError) as info:
        services.sku_by_barcode(scanned)
    assert info.value.code == "invalid_barcode"


def test_scan_of_a_valid_but_unknown_barcode(scan_skus):
    with pytest.raises(DomainError) as info:
        services.sku_by_barcode(_with_check_digit("690555555555"))
    assert info.value.code == "unknown_sku"


def test_scan_of_an_inactive_sku(scan_skus):
    for scanned in (scan_skus["off"].barcode, "OLD-01"):
        with pytest.raises(DomainError) as info:
            services.sku_by_barcode(scanned)
        assert (info.value.code, info.value.params) == ("inactive_sku", {"skus": ["OLD-01"]})


# --- bad input, across every service that takes lines ----------------------------------------


def _receive(wh, other, lines):
    return services.stock_receive(warehouse=wh, lines=lines)


def _receipt(wh, other, lines):
    return services.receipt_create(warehouse=wh, supplier="S",
                                   lines=[(s, q, Decimal("1.00")) for s, q in lines])


def _sell(wh, other, lines):
    return services.stock_sell(warehouse=wh, lines=lines, reference="POS-X")


def _reserve(wh, other, lines):
    return services.stock_reserve(warehouse=wh, lines=lines, reference="WEB-X")


def _return(wh, other, lines):
    return services.stock_restock_return(warehouse=wh, lines=lines, reference="RMA-X")


def _transfer_out(wh, other, lines):
    return services.transfer_create(source=wh, destination=other, lines=lines)


def _transfer_in(wh, other, lines):
    return services.transfer_create(source=other, destination=wh, lines=lines)


def _count(wh, other, lines):
    return services.count_create(warehouse=wh, lines=lines)


LINE_SERVICES = {"stock_receive": _receive, "receipt_create": _receipt, "stock_sell": _sell,
                 "stock_reserve": _reserve, "stock_restock_return": _return, "transfer_create": _transfer_out}
SELLING_SERVICES = ["stock_sell", "stock_reserve", "transfer_create"]


@pytest.mark.parametrize("qty", BAD_QUANTITIES, ids=repr)
@pytest.mark.parametrize("name", sorted(LINE_SERVICES))
def test_a_bad_quantity_on_any_line_is_refused(central, store_wh, stocked, name, qty):
    good, other = stocked[0], stocked[1]
    refused("invalid_quantity",
            lambda: LINE_SERVICES[name](central, store_wh, [(good.id, 1), (other.id, qty)]))


@pytest.mark.parametrize("name", sorted(LINE_SERVICES))
def test_an_unknown_sku_on_any_line_is_refused(central, store_wh, stocked, name):
    error = refused("unknown_sku",
                    lambda: LINE_SERVICES[name](central, store_wh, [(stocked[0].id, 1), (NO_SUCH_ID, 1)]))
    assert error.params == {"sku_ids": [NO_SUCH_ID]}


@pytest.mark.parametrize("name", SELLING_SERVICES)
def test_an_inactive_sku_cannot_be_sold_held_or_sent(central, store_wh, stocked, name):
    sku = stocked[0]
    Sku.objects.filter(pk=sku.pk).update(is_active=False)
    error = refused("inactive_sku", lambda: LINE_SERVICES[name](central, store_wh, [(sku.id, 1)]))
    assert error.params == {"skus": [sku.code]}


@pytest.mark.parametrize("warehouse", ["unknown", "inactive"])
@pytest.mark.parametrize("name", sorted([*LINE_SERVICES, "transfer_create_to", "count_create"]))
def test_an_unknown_or_inactive_warehouse_is_refused(central, stocked, name, warehouse):
    bad = NO_SUCH_ID if warehouse == "unknown" else WarehouseFactory(is_active=False)
    call = {**LINE_SERVICES, "transfer_create_to": _transfer_in, "count_create": _count}[name]
    refused("unknown_warehouse", lambda: call(bad, central, [(stocked[0].id, 1)]))


@pytest.mark.parametrize("warehouse", ["unknown", "inactive"])
def test_single_sku_services_refuse_an_unknown_or_inactive_warehouse(stocked, hq_user, warehouse):
    bad = NO_SUCH_ID if warehouse == "unknown" else WarehouseFactory(is_active=False)
    refused("unknown_warehouse", lambda: services.stock_adjust(warehouse=bad, sku_id=stocked[0].id, delta=1,
                                                               actor=hq_user, note="x"))
    refused("unknown_warehouse", lambda: services.stock_quarantine(warehouse=bad, sku_id=stocked[0].id, qty=1,
                                                                   actor=hq_user))


def test_receive_of_a_multi_line_with_one_bad_line_books_none_of_it(central, skus):
    refused("invalid_quantity", lambda: services.stock_receive(warehouse=central,
                                                               lines=[(skus[0].id, 5), (skus[1].id, -5)]))
    assert not StockLevel.objects.exists()


# --- side effects: one stock.changed message per change, in the same transaction -------------


@dataclass
class Ctx:
    central: Warehouse
    store: Warehouse
    sku: Sku
    user: AbstractUser


def _prepare_expiry(c: Ctx):
    services.stock_reserve(warehouse=c.central, lines=[(c.sku.id, 2)], reference="WEB-1",
                           expires_at=timezone.now() - timedelta(seconds=1))
    return lambda: services.reservations_expire()


def _prepare_transfer(c: Ctx, shipped: bool):
    transfer = services.transfer_create(source=c.central, destination=c.store, lines=[(c.sku.id, 2)])
    if shipped:
        services.transfer_ship(transfer=transfer)
        return lambda: services.transfer_receive(transfer=transfer, received={c.sku.id: (1, 1)})
    return lambda: services.transfer_ship(transfer=transfer)


def _prepare_count(c: Ctx):
    count = services.count_create(warehouse=c.central, lines=[(c.sku.id, 7)])
    return lambda: services.count_apply(count=count)


def _prepare_reserved(c: Ctx, then):
    services.stock_reserve(warehouse=c.central, lines=[(c.sku.id, 2)], reference="WEB-1")
    return then


STOCK_CHANGES = {
    "stock_receive": ("receipt", lambda c: lambda: services.stock_receive(warehouse=c.central,
                                                                          lines=[(c.sku.id, 1)])),
    "receipt_create": ("receipt", lambda c: lambda: services.receipt_create(
        warehouse=c.central, supplier="S", lines=[(c.sku.id, 1, Decimal("9.90"))])),
    "stock_adjust": ("adjustment", lambda c: lambda: services.stock_adjust(
        warehouse=c.central, sku_id=c.sku.id, delta=-1, actor=c.user, note="x")),
    "stock_sell": ("sale", lambda c: lambda: services.stock_sell(warehouse=c.central, lines=[(c.sku.id, 1)],
                                                                 reference="POS-1")),
    "stock_restock_return": ("return", lambda c: lambda: services.stock_restock_return(
        warehouse=c.store, lines=[(c.sku.id, 1)], reference="RMA-1", bucket=Bucket.DAMAGED)),
    "stock_quarantine": ("quarantine", lambda c: lambda: services.stock_quarantine(
        warehouse=c.central, sku_id=c.sku.id, qty=1, actor=c.user)),
    "stock_reserve": ("reservation", lambda c: lambda: services.stock_reserve(
        warehouse=c.central, lines=[(c.sku.id, 1)], reference="WEB-9")),
    "reservations_release": ("reservation", lambda c: _prepare_reserved(
        c, lambda: services.reservations_release(reference="WEB-1"))),
    "reservations_commit": ("sale", lambda c: _prepare_reserved(
        c, lambda: services.reservations_commit(reference="WEB-1"))),
    "reservations_expire": ("reservation", _prepare_expiry),
    "transfer_ship": ("transfer_out", lambda c: _prepare_transfer(c, shipped=False)),
    "transfer_receive": ("transfer_in", lambda c: _prepare_transfer(c, shipped=True)),
    "count_apply": ("count", _prepare_count),
}


@pytest.fixture
def ctx(central, store_wh, sku, hq_user) -> Ctx:
    services.stock_receive(warehouse=central, lines=[(sku.id, 10)])
    return Ctx(central=central, store=store_wh, sku=sku, user=hq_user)


@pytest.mark.parametrize("name", sorted(STOCK_CHANGES))
def test_every_stock_change_emits_one_stock_changed_message_published_after_commit(
        ctx, name, django_capture_on_commit_callbacks):
    reason, prepare = STOCK_CHANGES[name]
    act = prepare(ctx)
    last = OutboxMessage.objects.aggregate(m=Max("id"))["m"]
    moves_before = set(StockMove.objects.values_list("id", flat=True))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        act()

    (message,) = OutboxMessage.objects.filter(id__gt=last, topic="stock.changed")
    assert message.payload["reason"] == reason
    assert message.published_at is None  # the relay publishes it, after commit
    assert "_kick_relay" in [cb.__name__ for cb in callbacks]
    # the message names every level the call moved
    moved = {(m.warehouse_id, m.sku_id, m.bucket) for m in StockMove.objects.exclude(id__in=moves_before)}
    assert moved <= {tuple(lv) for lv in message.payload["levels"]}
    assert {tuple(lv)[:2] for lv in message.payload["levels"]} <= {(ctx.central.id, ctx.sku.id),
                                                                   (ctx.store.id, ctx.sku.id)}


def test_a_refused_call_leaves_no_message(ctx):
    refused("insufficient_stock",
            lambda: services.stock_sell(warehouse=ctx.central, lines=[(ctx.sku.id, 11)], reference="POS-1"))


# --- query counts do not grow with the number of lines ---------------------------------------


def _sell_lines(wh, lines, ref):
    services.stock_sell(warehouse=wh, lines=lines, reference=ref)


def _reserve_lines(wh, lines, ref):
    services.stock_reserve(warehouse=wh, lines=lines, reference=ref)


def _reserve_then_commit(wh, lines, ref):
    services.stock_reserve(warehouse=wh, lines=lines, reference=ref)
    return lambda: services.reservations_commit(reference=ref)


def _reserve_then_release(wh, lines, ref):
    services.stock_reserve(warehouse=wh, lines=lines, reference=ref)
    return lambda: services.reservations_release(reference=ref)


@pytest.mark.parametrize("call", [_sell_lines, _reserve_lines], ids=["stock_sell", "stock_reserve"])
def test_queries_of_one_line_equal_those_of_twenty(central, call, django_assert_num_queries):
    skus = SkuFactory.create_batch(21)
    services.stock_receive(warehouse=central, lines=[(s.id, 5) for s in skus])
    with CaptureQueriesContext(connection) as one_line:
        call(central, [(skus[0].id, 1)], "ONE")
    with django_assert_num_queries(len(one_line.captured_queries)):
        call(central, [(s.id, 1) for s in skus[1:]], "TWENTY")
    # savepoint, warehouse, SKUs, lock, update, ledger or holds, outbox, release
    assert len(one_line.captured_queries) <= 8


@pytest.mark.parametrize("prepare", [_reserve_then_commit, _reserve_then_release],
                         ids=["reservations_commit", "reservations_release"])
def test_closing_reservations_costs_the_same_for_one_line_or_twenty(central, prepare,
                                                                     django_assert_num_queries):
    skus = SkuFactory.create_batch(21)
    services.stock_receive(warehouse=central, lines=[(s.id, 5) for s in skus])
    close_one = prepare(central, [(skus[0].id, 1)], "ONE")
    close_twenty = prepare(central, [(s.id, 1) for s in skus[1:]], "TWENTY")
    with CaptureQueriesContext(connection) as one_line:
        close_one()
    with django_assert_num_queries(len(one_line.captured_queries)):
        close_twenty()


def test_a_sku_id_that_is_not_a_number_is_an_unknown_sku(central):
    with pytest.raises(UnknownSku):
        services.stock_receive(warehouse=central, lines=[("SKU-1", 1)])

