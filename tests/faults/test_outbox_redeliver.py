"""The outbox redelivery sweep (beat): a message the broker lost after the relay handed it over
(published, no consumer ran it) is published again once the queue is drained; one that may
still wait in the queue, one processed already and one published a moment ago are left alone."""

from datetime import timedelta

import redis
from django.db import transaction
from django.utils import timezone

from bench import consumers
from o2o.models import OutboxMessage, ProcessedMessage
from o2o.outbox import outbox_emit, outbox_redeliver

QUEUE = "o2o-faults-redeliver"


def test_lost_messages_are_published_again_once(transactional_db, private_broker):
    # Given three messages the relay published an hour ago, one of them consumed, and a fresh one
    with transaction.atomic():
        lost = [outbox_emit(topic=consumers.TOPIC, payload={"i": i}) for i in range(3)]
        fresh = outbox_emit(topic=consumers.TOPIC, payload={"i": 3})
    OutboxMessage.objects.filter(pk__in=[m.pk for m in lost]).update(published_at=timezone.now() - timedelta(hours=1))
    OutboxMessage.objects.filter(pk=fresh.pk).update(published_at=timezone.now())
    ProcessedMessage.objects.create(consumer=consumers.NAME, message=lost[2])
    sent: list[int] = []

    def publish(message):
        sent.append(message.pk)

    # When the queue still holds messages, the sweep waits (they may be among them)
    broker = redis.Redis.from_url(private_broker.url)
    broker.lpush(QUEUE, b"{}")
    assert outbox_redeliver(older_than=60, queue=QUEUE, publish=publish) == 0 and sent == []
    # and once it is drained, the two nobody consumed are published again
    broker.delete(QUEUE)
    assert outbox_redeliver(older_than=60, queue=QUEUE, publish=publish) == 2
    assert sent == [lost[0].pk, lost[1].pk]
    # with their clock restarted, so the next run does not send them again at once
    assert outbox_redeliver(older_than=60, queue=QUEUE, publish=publish) == 0 and len(sent) == 2
    restarted = OutboxMessage.objects.filter(pk__in=sent, published_at__gt=timezone.now() - timedelta(minutes=1))
    assert restarted.count() == 2


def test_an_unreachable_broker_publishes_nothing(transactional_db, private_broker):
    with transaction.atomic():
        lost = outbox_emit(topic=consumers.TOPIC, payload={"i": 0})
    OutboxMessage.objects.filter(pk=lost.pk).update(published_at=timezone.now() - timedelta(hours=1))
    private_broker.stop()
    sent: list[int] = []
    assert outbox_redeliver(older_than=60, queue=QUEUE, publish=lambda m: sent.append(m.pk)) == 0 and sent == []
