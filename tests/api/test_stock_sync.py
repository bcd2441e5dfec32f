"""Stock availability sync: debounced per SKU, one update with the latest figure per burst, retries on
failure, a full sync for drift, and stock webhooks."""

import json
import time

import pytest
from django.db import transaction

from inventory import services as stock
from o2o.apiauth import STOCK_READ
from integrations.models import WebhookDelivery
from o2o.models import OutboxMessage
from o2o.outbox import outbox_dispatch
from o2o.ratelimit import redis_client
from integrations.webhooks import subscription_create
from integrations import stocksync
from tests.api.conftest import FakeMarketplace

pytestmark = pytest.mark.django_db(transaction=True)

LATER = 60  # seconds: past any debounce window


def dispatch_stock_messages():
    """The worker: run the consumers of every stock.changed message (their marks follow the commit)."""
    messages = OutboxMessage.objects.filter(topic="stock.changed").order_by("id")
    for message_id in messages.values_list("id", flat=True):
        outbox_dispatch(message_id=message_id)


@pytest.fixture
def market(settings, stocked):
    """A fake marketplace, after the opening stock of the fixtures has been synced once."""
    dispatch_stock_messages()
    stocksync.drain(now=time.time() + LATER)
    with FakeMarketplace() as fake:
        settings.MARKETPLACES = {"tmall": fake.settings_entry()}
        yield fake


def test_a_burst_of_sales_sends_one_update_with_the_latest_figure(stocked, central, market):
    sku = stocked[0]
    for n in range(5):
        stock.stock_sell(warehouse=central, lines=[(sku.pk, 2)], reference=f"SALE-{n}")
    dispatch_stock_messages()

    too_soon = stocksync.stock_sync_run()
    after_quiet = stocksync.stock_sync_run(now=time.time() + LATER)
    nothing_left = stocksync.stock_sync_run(now=time.time() + LATER)

    assert too_soon["skus"] == 0 and market.pushes == [[{"sku_code": sku.code, "available": 40}]]
    assert after_quiet == {"skus": 1, "failed": [], "events": 0}
    assert nothing_left["skus"] == 0


def test_a_failed_push_is_retried_on_the_next_drain(stocked, central, market):
    market.fail_pushes = 1
    stock.stock_sell(warehouse=central, lines=[(stocked[1].pk, 1)], reference="SALE-X")
    dispatch_stock_messages()

    failed = stocksync.stock_sync_run(now=time.time() + LATER)
    retried = stocksync.stock_sync_run(now=time.time() + 2 * LATER)

    assert failed["failed"] == ["tmall"]
    assert retried["failed"] == [] and market.pushes == [[{"sku_code": stocked[1].code, "available": 49}]]


def test_the_drain_is_atomic_between_concurrent_workers(stocked, isolated_redis_keys):
    stocksync.mark_changed([s.pk for s in stocked], now=time.time() - LATER)

    first = stocksync.drain()
    second = stocksync.drain()

    assert first == sorted(s.pk for s in stocked) and second == []
    assert redis_client().zcard(stocksync.pending_key()) == 0


def test_marks_keep_the_first_change_time(stocked):
    sku = stocked[0].pk
    stocksync.mark_changed([sku], now=time.time() - LATER)
    stocksync.mark_changed([sku])  # a later change does not push the SKU back

    assert stocksync.drain() == [sku]


def test_full_sync_pushes_every_active_sku(stocked, market):
    result = stocksync.stock_sync_full(batch_size=2)

    pushed = [item for batch in market.pushes for item in batch]
    assert result == {"skus": len(stocked), "failed": []}
    assert sorted(i["sku_code"] for i in pushed) == sorted(s.code for s in stocked)
    assert all(i["available"] == 50 for i in pushed)


def test_stock_subscribers_get_one_event_per_drain(stocked, central, store_a, make_key, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    dispatch_stock_messages()
    stocksync.drain(now=time.time() + LATER)
    key, _raw = make_key(scopes=[STOCK_READ])
    subscription_create(key=key, url="http://127.0.0.1/stock", events=["stock.availability_changed"])
    stock.stock_sell(warehouse=store_a.warehouse, lines=[(stocked[0].pk, 1)], reference="S-1")
    stock.stock_sell(warehouse=store_a.warehouse, lines=[(stocked[0].pk, 1)], reference="S-2")
    dispatch_stock_messages()

    result = stocksync.stock_sync_run(now=time.time() + LATER)

    delivery = WebhookDelivery.objects.get()
    data = json.loads(delivery.body)["data"]
    assert result["events"] == 1 and delivery.topic == "stock.availability_changed"
    [item] = data["items"]
    assert item["sku"] == stocked[0].pk and item["available_to_ship"]["marketplace"] == 50
    assert {"warehouse": store_a.warehouse_id, "store": store_a.pk, "available": 3} in item["warehouses"]


def test_sync_refuses_to_run_inside_a_transaction():
    with transaction.atomic(), pytest.raises(RuntimeError):
        stocksync.stock_sync_run()
