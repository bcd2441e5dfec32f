"""Transactional outbox.

A service calls :func:`outbox_emit` inside its transaction; the row commits or
rolls back with the business data.  After commit a relay run is requested, at most
one waiting at a time per queue (a Redis flag the relay clears before it reads, so a
row committed while a run waits is seen by that run); the relay (also on a beat
schedule, so nothing waits on the kick) locks pending rows with ``FOR UPDATE SKIP
LOCKED``, hands them to the broker in dispatch batches and marks them published.
A failure to publish leaves the rows pending with a backoff.  Consumers register per
topic with :func:`consumer` and run once per message (a ``ProcessedMessage`` row
written with the consumer's work, under a savepoint of the batch's transaction), so a
redelivery applies nothing twice.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, Callable, Iterator

import redis
from celery import shared_task
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from o2o.db import insert_joined
from o2o.models import OutboxMessage, ProcessedMessage

log = logging.getLogger(__name__)

Consumer = Callable[[OutboxMessage], None]
_CONSUMERS: dict[str, list[tuple[str, Consumer]]] = {}

MAX_BACKOFF_SECONDS = 300
# Messages per dispatch task: one broker message, one read of the batch and one commit for all
# of them.  Small enough that a consumer's row locks are held only briefly.
DISPATCH_BATCH = 50
# Relay batches one kicked run publishes before it leaves the rest to the next kick or beat.
RELAY_ROUNDS = 20
RELAY_BATCH = 200


class OutboxOutsideTransaction(RuntimeError):
    pass


def consumer(topic: str, name: str | None = None) -> Callable[[Consumer], Consumer]:
    """Register ``func`` to consume messages of ``topic`` (``"*"`` for all)."""

    def register(func: Consumer) -> Consumer:
        _CONSUMERS.setdefault(topic, []).append((name or f"{func.__module__}.{func.__qualname__}", func))
        return func

    return register


def consumers_for(topic: str) -> list[tuple[str, Consumer]]:
    return _CONSUMERS.get(topic, []) + _CONSUMERS.get("*", [])


# The messages of an open ``outbox_batch``, written together when it closes.
_BATCH: ContextVar[list[OutboxMessage] | None] = ContextVar("o2o_outbox_batch", default=None)


def outbox_emit(*, topic: str, payload: dict[str, Any], key: str = "") -> OutboxMessage:
    """Record a side effect in the current transaction.  Raises if there is none.

    Inside ``outbox_batch`` the row is written when the batch closes (its id is unset until then)."""
    if not connection.in_atomic_block:
        raise OutboxOutsideTransaction("outbox_emit must run inside the business transaction")
    import json

    clean = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    pending = _BATCH.get()
    if pending is not None:
        message = OutboxMessage(topic=topic, key=key, payload=clean)
        pending.append(message)
        return message
    message = OutboxMessage.objects.create(topic=topic, key=key, payload=clean)
    if not _kick_queued():
        transaction.on_commit(_kick_relay)
    return message


@contextmanager
def outbox_batch() -> Iterator[list[OutboxMessage]]:
    """Collect the messages emitted inside the block and write them as one multi-row INSERT when
    it ends without an error (one statement for a sale's several events).  Must run inside the
    business transaction; a nested batch joins the outer one."""
    if not connection.in_atomic_block:
        raise OutboxOutsideTransaction("outbox_batch must run inside the business transaction")
    if _BATCH.get() is not None:
        yield _BATCH.get()
        return
    pending: list[OutboxMessage] = []
    token = _BATCH.set(pending)
    try:
        yield pending
    finally:
        _BATCH.reset(token)
    if pending:
        if not insert_joined(pending):  # joined to the transaction's last statement when one is held
            OutboxMessage.objects.bulk_create(pending)
        if not _kick_queued():
            transaction.on_commit(_kick_relay)


def _kick_queued() -> bool:
    """True when this transaction already asks for a relay run after commit that covers a row
    written now: one kick publishes every pending row, so a sale emitting five messages sends
    one task, not five.  A kick registered inside a savepoint we are no longer in does not
    count: rolling that savepoint back would drop it."""
    current = set(connection.savepoint_ids)
    return any(func is _kick_relay and sids <= current for sids, func, *_ in connection.run_on_commit)


def _kick_key() -> str:
    from o2o.celery import app

    return f"o2o:outbox:kick:{app.conf.task_default_queue}"


def _kick_debounce_seconds() -> int:
    return max(1, int(getattr(settings, "OUTBOX_KICK_DEBOUNCE_SECONDS", 2)))


def _kick_claimed() -> bool:
    """True when this commit should send the relay run: no run is already waiting for the
    broker.  The flag expires after a few seconds, so a run lost on its way (or a worker busy
    with a backlog) delays rows by that long at most, and beat's run covers the rest."""
    from o2o.ratelimit import redis_client

    try:
        return bool(redis_client().set(_kick_key(), "1", nx=True, ex=_kick_debounce_seconds()))
    except redis.RedisError:
        return True  # cannot tell: kick, a spare relay run costs one empty read


def _kick_release() -> None:
    from o2o.ratelimit import redis_client

    try:
        redis_client().delete(_kick_key())
    except redis.RedisError as exc:  # the flag expires by itself
        log.warning("outbox kick flag not cleared: %s", exc)


def _kick_relay() -> None:
    if not _kick_claimed():
        return
    try:
        outbox_relay_task.apply_async(expires=30)
    except Exception as exc:  # the broker is down: beat's relay run picks the rows up later
        _kick_release()
        log.warning("outbox relay kick failed, messages stay pending: %s", exc)


def outbox_relay(*, batch_size: int = RELAY_BATCH, publish: Callable[[OutboxMessage], None] | None = None) -> int:
    """Publish pending messages in id order.  Returns how many were published.

    Takes ``FOR UPDATE SKIP LOCKED`` row locks on the batch so concurrent relays
    never publish a row twice; rows whose publish fails are retried later with
    exponential backoff.  Publishing hands the messages to the broker only, as
    dispatch batches of :data:`DISPATCH_BATCH` (``publish``, when given, takes one
    message at a time instead); the consumers run in the worker after this
    transaction commits.
    """
    published = 0
    with transaction.atomic():
        batch = list(
            OutboxMessage.objects.filter(published_at__isnull=True, available_at__lte=timezone.now())
            .order_by("id")
            .select_for_update(skip_locked=True)[:batch_size]
        )
        now = timezone.now()
        chunks = [[m] for m in batch] if publish else [batch[i:i + DISPATCH_BATCH]
                                                       for i in range(0, len(batch), DISPATCH_BATCH)]
        failed: list[OutboxMessage] = []
        ok_ids: list[int] = []
        for chunk in chunks:
            try:
                if publish:
                    publish(chunk[0])
                else:
                    _publish_batch_to_broker([m.id for m in chunk])
            except Exception as exc:
                for message in chunk:
                    message.attempts += 1
                    message.last_error = str(exc)[:2000]
                    message.available_at = now + timedelta(seconds=min(MAX_BACKOFF_SECONDS, 2**message.attempts))
                failed.extend(chunk)
                # The broker is likely down: stop here, keep the rest in order.
                break
            ok_ids.extend(m.id for m in chunk)
        if ok_ids:
            OutboxMessage.objects.filter(id__in=ok_ids).update(published_at=now)
            published = len(ok_ids)
        if failed:
            OutboxMessage.objects.bulk_update(failed, ["attempts", "last_error", "available_at"])
    return published


def _publish_to_broker(message: OutboxMessage) -> None:
    outbox_dispatch_task.apply_async(args=[message.id], retry=False)


def _publish_batch_to_broker(message_ids: list[int]) -> None:
    outbox_dispatch_batch_task.apply_async(args=[message_ids], retry=False)


REDELIVER_AFTER_SECONDS = 300
REDELIVER_HORIZON_HOURS = 24


def outbox_redeliver(*, older_than: float = REDELIVER_AFTER_SECONDS,
                     horizon_hours: float = REDELIVER_HORIZON_HOURS, batch_size: int = 500, queue: str | None = None,
                     publish: Callable[[OutboxMessage], None] | None = None) -> int:
    """Publish again the messages the broker took but no consumer ran.  Returns how many.

    The Redis transport pops a message off the queue before the worker records it as
    unacknowledged, so a worker killed in between loses it: ``acks_late`` cannot bring it back
    and the row already says published.  Once the dispatch queue is empty (a message still
    waiting in a backlog is not lost), a message published more than ``older_than`` seconds ago
    and created within ``horizon_hours`` that one of its consumers has not processed is handed
    to the broker again and its clock restarted.  Consumers are idempotent, so one that was only
    slow applies nothing twice.  Takes ``FOR UPDATE SKIP LOCKED`` row locks like the relay.
    """
    publish = publish or _publish_to_broker
    if not _queue_empty(queue):
        return 0
    now = timezone.now()
    floor = (OutboxMessage.objects.filter(created_at__lt=now - timedelta(hours=horizon_hours))
             .order_by("-id").values_list("id", flat=True).first() or 0)
    recent = OutboxMessage.objects.filter(id__gt=floor, published_at__lt=now - timedelta(seconds=older_than))
    stranded: set[int] = set()
    for topic, registered in _CONSUMERS.items():
        candidates = recent if topic == "*" else recent.filter(topic=topic)
        for name, _func in registered:
            done = ProcessedMessage.objects.filter(consumer=name, message=OuterRef("pk"))
            missing = candidates.exclude(Exists(done)).order_by("id").values_list("id", flat=True)
            stranded.update(missing[:batch_size])
    if not stranded:
        return 0
    sent: list[int] = []
    with transaction.atomic():
        for message in (OutboxMessage.objects.filter(id__in=sorted(stranded)[:batch_size])
                        .order_by("id").select_for_update(skip_locked=True)):
            try:
                publish(message)
            except Exception as exc:  # the broker is down: the next run tries again
                log.warning("outbox redelivery stopped, broker unavailable: %s", exc)
                break
            sent.append(message.id)
        OutboxMessage.objects.filter(id__in=sent).update(published_at=timezone.now())
    if sent:
        log.warning("outbox: %d message(s) published again, no consumer had run them: %s",
                    len(sent), sent[:20])
    return len(sent)


def _queue_empty(queue: str | None) -> bool:
    from o2o.celery import app

    name = queue or app.conf.task_default_queue
    try:
        with app.connection_for_write() as conn:
            try:
                return conn.default_channel.queue_declare(queue=name, passive=True).message_count == 0
            except conn.channel_errors:
                return True  # Redis drops an emptied list: the queue does not exist, it holds nothing
    except Exception as exc:  # cannot tell: do not publish duplicates of a backlog
        log.warning("outbox redelivery skipped, queue %s not readable: %s", name, exc)
        return False


def outbox_dispatch(*, message_id: int) -> int:
    """Run every consumer of the message once.  Returns how many ran now."""
    message = OutboxMessage.objects.get(pk=message_id)
    ran = 0
    for name, func in consumers_for(message.topic):
        try:
            with transaction.atomic():
                ProcessedMessage.objects.create(consumer=name, message=message)
                func(message)
        except IntegrityError:
            # Either already processed (the unique constraint), or the consumer
            # itself hit one; in both cases nothing of this consumer's run is kept.
            if not ProcessedMessage.objects.filter(consumer=name, message=message).exists():
                raise
            continue
        ran += 1
    return ran


def outbox_dispatch_batch(*, message_ids: list[int]) -> int:
    """Run every consumer of each message once, all in one transaction.  Returns how many ran.

    Each consumer run sits in a savepoint with its ``ProcessedMessage`` row: one that fails
    rolls back alone, and its message is handed to :func:`outbox_dispatch_task` on its own
    after commit, which retries it with backoff exactly as a single dispatch would.  Pairs
    already processed are read once up front and skipped; a concurrent worker's duplicate is
    caught by the unique constraint as in :func:`outbox_dispatch`.
    """
    messages = list(OutboxMessage.objects.filter(id__in=message_ids).order_by("id"))
    done = set(ProcessedMessage.objects.filter(message_id__in=message_ids).values_list("consumer", "message_id"))
    ran, retry = 0, []
    with transaction.atomic():
        for message in messages:
            for name, func in consumers_for(message.topic):
                if (name, message.id) in done:
                    continue
                try:
                    with transaction.atomic():
                        ProcessedMessage.objects.create(consumer=name, message=message)
                        func(message)
                except Exception as exc:
                    if isinstance(exc, IntegrityError) and ProcessedMessage.objects.filter(
                            consumer=name, message=message).exists():
                        continue  # a concurrent worker ran it
                    log.warning("outbox consumer %s failed on message %s, retried alone: %r", name, message.id, exc)
                    retry.append(message.id)
                    break
                ran += 1
    for message_id in retry:
        try:
            outbox_dispatch_task.apply_async(args=[message_id], retry=False)
        except Exception as exc:  # redelivery finds it: published, not processed
            log.warning("outbox message %s not re-dispatched: %s", message_id, exc)
    return ran


# --- Celery tasks ----------------------------------------------------------------------------------
# Their names are what the broker and beat carry; they keep the names they were published under.


@shared_task(name="o2o.tasks.outbox_relay", ignore_result=True)
def outbox_relay_task() -> int:
    # Cleared before reading: a row committed from here on sends a new kick, and one committed
    # before is visible to the read below.
    _kick_release()
    total = 0
    for _ in range(RELAY_ROUNDS):
        published = outbox_relay()
        total += published
        if published < RELAY_BATCH:
            break
    return total


@shared_task(name="o2o.tasks.outbox_redeliver", ignore_result=True)
def outbox_redeliver_task() -> int:
    return outbox_redeliver()


@shared_task(
    name="o2o.tasks.outbox_dispatch",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,  # consumers are idempotent (ProcessedMessage)
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=10,
)
def outbox_dispatch_task(message_id: int) -> int:
    return outbox_dispatch(message_id=message_id)


@shared_task(name="o2o.tasks.outbox_dispatch_batch", ignore_result=True, acks_late=True,
             reject_on_worker_lost=True)  # consumers are idempotent (ProcessedMessage)
def outbox_dispatch_batch_task(message_ids: list[int]) -> int:
    return outbox_dispatch_batch(message_ids=message_ids)
