"""The sold-out gate and the lock-free availability read in front of a sale.

The gate is set only by a refusal read under the level's lock, cleared by anything that makes units
available again (through the real services), heals by its TTL, and is ignored when Redis is down.
The stock itself is still decided by the conditional update: a race stays exact.
"""

from __future__ import annotations

import time

import pytest
import redis
from django.test.utils import CaptureQueriesContext
from django.db import connection

from catalog.tests.factories import SkuFactory
from inventory import services, soldout
from inventory.exceptions import InsufficientStock
from inventory.models import Bucket, StockLevel
from inventory.selectors import warehouse_shortfall
from stores.tests.factories import WarehouseFactory
from tests.concurrency import run_at_once


def _marked(warehouse, sku) -> bool:
    return bool(soldout.soldout_marked(warehouse_id=warehouse.pk, sku_ids=[sku.pk]))


@pytest.fixture
def shelf(db):
    warehouse = WarehouseFactory()
    sku = SkuFactory()
    services.stock_receive(warehouse=warehouse, lines=[(sku.pk, 2)])
    return warehouse, sku


def test_refused_sale_with_nothing_left_marks_the_gate(shelf):
    warehouse, sku = shelf
    services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 2)], reference="S1")
    assert not _marked(warehouse, sku)  # a sale that went through marks nothing
    with pytest.raises(InsufficientStock) as refused:
        services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 1)], reference="S2")
    assert refused.value.params == {"skus": [sku.code], "warehouse_ids": [warehouse.pk]}
    assert soldout.soldout_marked(warehouse_id=warehouse.pk, sku_ids=[sku.pk]) == {sku.pk: sku.code}
    assert 0 < soldout._redis().ttl(soldout._key(warehouse.pk, sku.pk)) <= soldout.ttl_seconds()


def test_refusal_with_units_left_marks_nothing(shelf):
    warehouse, sku = shelf
    with pytest.raises(InsufficientStock):
        services.stock_reserve(warehouse=warehouse, lines=[(sku.pk, 3)], reference="R1")
    assert not _marked(warehouse, sku)  # one unit is still there for a smaller basket


def test_refused_reservation_marks_the_gate(shelf):
    warehouse, sku = shelf
    services.stock_reserve(warehouse=warehouse, lines=[(sku.pk, 2)], reference="R1")
    with pytest.raises(InsufficientStock):
        services.stock_reserve(warehouse=warehouse, lines=[(sku.pk, 1)], reference="R2")
    assert _marked(warehouse, sku)


@pytest.mark.parametrize("restock", ["receive", "return", "release", "adjust", "transfer"])
def test_any_stock_increase_clears_the_gate_after_commit(shelf, restock, django_capture_on_commit_callbacks):
    warehouse, sku = shelf
    services.stock_reserve(warehouse=warehouse, lines=[(sku.pk, 2)], reference="R1")
    with pytest.raises(InsufficientStock):
        services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 1)], reference="S1")
    assert _marked(warehouse, sku)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        if restock == "receive":
            services.receipt_create(warehouse=warehouse, supplier="Acme", lines=[(sku.pk, 5, 0)])
        elif restock == "return":
            services.stock_restock_return(warehouse=warehouse, lines=[(sku.pk, 1)], reference="RT1")
        elif restock == "release":
            services.reservations_release(reference="R1")
        elif restock == "adjust":
            services.stock_adjust(warehouse=warehouse, sku_id=sku.pk, delta=1, actor=None, note="found")
        else:
            source = WarehouseFactory()
            services.stock_receive(warehouse=source, lines=[(sku.pk, 1)])
            transfer = services.transfer_create(source=source, destination=warehouse, lines=[(sku.pk, 1)])
            services.transfer_ship(transfer=transfer)
            services.transfer_receive(transfer=transfer)
        soldout.soldout_mark({(warehouse.pk, sku.pk): sku.code})  # a refusal between the change and its commit
    assert callbacks
    assert not _marked(warehouse, sku)
    services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 1)], reference="S2")


def test_damaged_stock_does_not_clear_the_gate(shelf, django_capture_on_commit_callbacks):
    warehouse, sku = shelf
    services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 2)], reference="S1")
    with pytest.raises(InsufficientStock):
        services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 1)], reference="S2")
    with django_capture_on_commit_callbacks(execute=True):
        services.stock_restock_return(warehouse=warehouse, lines=[(sku.pk, 1)], reference="RT1",
                                      bucket=Bucket.DAMAGED)
    assert _marked(warehouse, sku)  # nothing sellable came back


def test_the_mark_heals_by_its_ttl(shelf, settings):
    settings.STOCK_SOLDOUT_TTL_SECONDS = 1
    warehouse, sku = shelf
    services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 2)], reference="S1")
    with pytest.raises(InsufficientStock):
        services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 1)], reference="S2")
    assert _marked(warehouse, sku)
    # Units that came back without clearing it (a direct correction) are sold again once it expires.
    StockLevel.objects.filter(warehouse=warehouse, sku=sku).update(on_hand=1)
    with pytest.raises(InsufficientStock):
        soldout.stock_precheck(warehouse_id=warehouse.pk, demand={sku.pk: 1})
    deadline = time.monotonic() + 5
    while _marked(warehouse, sku) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _marked(warehouse, sku)
    soldout.stock_precheck(warehouse_id=warehouse.pk, demand={sku.pk: 1})


def test_precheck_rejects_from_the_gate_without_the_database(shelf):
    warehouse, sku = shelf
    services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 2)], reference="S1")
    with pytest.raises(InsufficientStock):
        services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 1)], reference="S2")
    with CaptureQueriesContext(connection) as queries, pytest.raises(InsufficientStock) as refused:
        soldout.stock_precheck(warehouse_id=warehouse.pk, demand={sku.pk: 1})
    assert len(queries) == 0
    assert refused.value.code == "insufficient_stock"
    assert refused.value.params == {"skus": [sku.code], "warehouse_ids": [warehouse.pk]}


def test_precheck_reads_availability_in_one_query_without_locks(shelf):
    warehouse, sku = shelf
    other = SkuFactory()
    with CaptureQueriesContext(connection) as queries:
        soldout.stock_precheck(warehouse_id=warehouse.pk, demand={sku.pk: 2})
        with pytest.raises(InsufficientStock) as refused:
            soldout.stock_precheck(warehouse_id=warehouse.pk, demand={sku.pk: 3, other.pk: 1})
    assert len(queries) == 2
    assert not any("FOR UPDATE" in q["sql"] for q in queries.captured_queries)
    # The unstocked SKU has no level: that is the sale's to refuse (or not), the read names only the short one.
    assert refused.value.params == {"skus": [sku.code], "warehouse_ids": [warehouse.pk]}
    assert not _marked(warehouse, sku)  # a lock-free read never marks


def test_a_lock_free_read_of_an_empty_level_arms_the_gate_again(shelf):
    """After its TTL the gate is armed again by the next early refusal, not only by one under lock."""
    warehouse, sku = shelf
    services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 2)], reference="S1")
    assert not _marked(warehouse, sku)
    with pytest.raises(InsufficientStock) as refused:
        soldout.stock_precheck(warehouse_id=warehouse.pk, demand={sku.pk: 1})
    assert refused.value.params == {"skus": [sku.code], "warehouse_ids": [warehouse.pk]}
    assert soldout.soldout_marked(warehouse_id=warehouse.pk, sku_ids=[sku.pk]) == {sku.pk: sku.code}


def test_stock_back_between_the_read_and_the_mark_wins(shelf):
    """A restock that clears the gate after an early refusal read the level empty, but before that
    refusal marks it: the stale refusal does not mark (the pair's generation moved on)."""
    warehouse, sku = shelf
    pair = (warehouse.pk, sku.pk)
    _marks, generations = soldout._gate_read([pair])
    soldout.soldout_clear([pair])  # what a receipt does, under its lock and after its commit
    soldout._mark_if_unchanged({pair: sku.code}, generations)
    assert not _marked(warehouse, sku)
    _marks, generations = soldout._gate_read([pair])
    soldout._mark_if_unchanged({pair: sku.code}, generations)
    assert _marked(warehouse, sku)


def test_shortfall_leaves_invalid_input_to_the_sale(shelf):
    warehouse, sku = shelf
    sku.is_active = False
    sku.save(update_fields=["is_active"])
    assert warehouse_shortfall(warehouse_id=warehouse.pk, demand={sku.pk: 5, 10**9: 1}) == {}
    soldout.stock_precheck(warehouse_id=warehouse.pk, demand={sku.pk: "5", True: 1})


def test_redis_down_turns_the_gate_off(shelf, monkeypatch):
    warehouse, sku = shelf
    monkeypatch.setattr(soldout, "_client", redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 2)], reference="S1")
    with pytest.raises(InsufficientStock):  # the refusal itself is untouched
        services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 1)], reference="S2")
    assert soldout.soldout_marked(warehouse_id=warehouse.pk, sku_ids=[sku.pk]) == {}
    with pytest.raises(InsufficientStock):  # the lock-free read still refuses
        soldout.stock_precheck(warehouse_id=warehouse.pk, demand={sku.pk: 1})
    services.stock_receive(warehouse=warehouse, lines=[(sku.pk, 1)])
    soldout.stock_precheck(warehouse_id=warehouse.pk, demand={sku.pk: 1})


def test_gate_switched_off_by_setting(shelf, settings):
    settings.STOCK_SOLDOUT_GATE = False
    warehouse, sku = shelf
    services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 2)], reference="S1")
    with pytest.raises(InsufficientStock):
        services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 1)], reference="S2")
    settings.STOCK_SOLDOUT_GATE = True
    assert not _marked(warehouse, sku)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_race_with_gate_stays_exact(monkeypatch):
    monkeypatch.setattr("o2o.outbox._kick_relay", lambda: None)
    warehouse, sku = WarehouseFactory(), SkuFactory()
    services.stock_receive(warehouse=warehouse, lines=[(sku.pk, 10)])

    def attempt(i):
        def job():
            soldout.stock_precheck(warehouse_id=warehouse.pk, demand={sku.pk: 1})
            return services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 1)], reference=f"S{i}")
        return job

    outcomes = run_at_once([attempt(i) for i in range(30)])
    sold = [o for o in outcomes if isinstance(o, list)]
    assert len(sold) == 10
    assert all(isinstance(o, InsufficientStock) for o in outcomes if not isinstance(o, list))
    level = StockLevel.objects.get(warehouse=warehouse, sku=sku, bucket=Bucket.SELLABLE)
    assert (level.on_hand, level.reserved) == (0, 0)
    # Late attempts are refused early; a receipt (committed for real here) lets the next sale through.
    for _ in range(3):
        with pytest.raises(InsufficientStock):
            soldout.stock_precheck(warehouse_id=warehouse.pk, demand={sku.pk: 1})
    services.stock_receive(warehouse=warehouse, lines=[(sku.pk, 1)])
    assert not _marked(warehouse, sku)
    soldout.stock_precheck(warehouse_id=warehouse.pk, demand={sku.pk: 1})
    services.stock_sell(warehouse=warehouse, lines=[(sku.pk, 1)], reference="late")
