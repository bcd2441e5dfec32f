"""Redis (the broker) stops while POS sales and online orders go on: the sales complete, their
events wait in the outbox, and after Redis returns the relay hands each one to the broker
exactly once.  Uses a private redis-server, never the shared one."""

import base64
import json
import uuid
from collections import Counter
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from bench import views
from o2o import outbox
from o2o.models import OutboxMessage
from orders import services as order_services
from orders.models import Order
from orders.services import LineIn, TenderIn
from stores.models import Store
from django.contrib.auth import get_user_model
from tests.faults.conftest import assert_ledgers_clean
from tests.faults.redis_private import PrivateRedis

# It stops a redis-server and swaps the process's Celery broker: run with the other fault scenarios
# (make faults), in a process of its own.
pytestmark = pytest.mark.faults


def _queued_dispatch_ids(server: PrivateRedis) -> Counter:
    r = redis.Redis.from_url(server.url)
    ids = Counter()
    for raw in r.lrange(settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1):
        msg = json.loads(raw)
        args = json.loads(base64.b64decode(msg["body"]))[0]
        if msg["headers"]["task"] == "o2o.tasks.outbox_dispatch":
            ids[args[0]] += 1
        elif msg["headers"]["task"] == "o2o.tasks.outbox_dispatch_batch":
            ids.update(args[0])
    return ids


def test_sales_go_on_while_redis_is_down(world, private_broker, django_capture_on_commit_callbacks):
    store = Store.objects.select_related("warehouse").get(pk=world["store_id"])
    actor = get_user_model().objects.get(pk=world["actor_id"])
    before = set(OutboxMessage.objects.values_list("id", flat=True))
    # Given the broker is down
    private_broker.stop()
    assert not private_broker.ping()
    # When sales and online orders go on (their after-commit relay kicks fail)
    numbers = []
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(4):
            sku, price = world["skus"][i]
            sale = views._pos_sale(store=store, client_uuid=uuid.uuid4(), lines=[LineIn(sku, 1)],
                                   tenders=[TenderIn("cash", Decimal(price))], member_id=world["members"][i],
                                   actor=actor)
            numbers.append(sale.order.number)
            placed = order_services.order_place(channel="web", partner="faults", external_id=f"down-{i}",
                                                fulfillment="pickup", store=store, lines=[LineIn(sku, 1)])
            numbers.append(placed.order.number)
    # Then they all completed, and their events wait in the outbox
    assert Order.objects.filter(number__in=numbers).count() == 8
    pending = set(OutboxMessage.objects.filter(published_at__isnull=True).values_list("id", flat=True)) - before
    assert pending, "the sales queued no events"
    assert outbox.outbox_relay() == 0  # the broker is still down: nothing is lost, nothing is marked sent
    assert set(OutboxMessage.objects.filter(id__in=pending, published_at__isnull=True)
               .values_list("id", flat=True)) == pending
    # When Redis returns (and the relay's backoff has passed)
    private_broker.start()
    OutboxMessage.objects.filter(id__in=pending).update(available_at=timezone.now())
    for _ in range(20):
        if outbox.outbox_relay() == 0:
            break
    # Then every waiting event was handed to the broker exactly once
    queued = _queued_dispatch_ids(private_broker)
    assert {i: queued[i] for i in pending} == {i: 1 for i in pending}
    assert not OutboxMessage.objects.filter(id__in=pending, published_at__isnull=True).exists()
    assert_ledgers_clean()
