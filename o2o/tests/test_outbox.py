"""The transactional outbox: nothing leaves before commit, every row is published once,
and every consumer applies a message once.

The broker is the real Redis.  Each test publishes to a queue of its own (see the
``broker`` fixture), so a demo worker on the same Redis never takes these messages and
the queue's length is exactly what this test sent.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import defaultdict
from datetime import timedelta

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.signals import before_task_publish
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from o2o import outbox
from o2o.celery import app as celery_app
from o2o.models import OutboxMessage, ProcessedMessage
from o2o.outbox import OutboxOutsideTransaction, consumer, outbox_dispatch, outbox_emit, outbox_relay

TOPIC = "test.outbox.plain"
TOPIC_TWO = "test.outbox.two-consumers"
TOPIC_FLAKY = "test.outbox.flaky"
TOPIC_E2E = "test.outbox.e2e"

# What the test consumers saw: consumer name -> list of (message id, payload).
SEEN: dict[str, list[tuple[int, dict]]] = defaultdict(list)
SEEN_LOCK = threading.Lock()
# Consumer names whose next run raises (set by a test, cleared by the consumer).
FAIL_NEXT: set[str] = set()


def _record(name: str, message: OutboxMessage) -> None:
    with SEEN_LOCK:
        SEEN[name].append((message.id, message.payload))


@consumer(TOPIC_TWO, name="test.outbox.first")
def _first(message):
    _record("test.outbox.first", message)


@consumer(TOPIC_TWO, name="test.outbox.second")
def _second(message):
    _record("test.outbox.second", message)


@consumer(TOPIC_FLAKY, name="test.outbox.steady")
def _steady(message):
    _record("test.outbox.steady", message)


@consumer(TOPIC_FLAKY, name="test.outbox.flaky")
def _flaky(message):
    _record("test.outbox.flaky", message)
    if "test.outbox.flaky" in FAIL_NEXT:
        FAIL_NEXT.discard("test.outbox.flaky")
        raise ConnectionError("partner endpoint unreachable")


@consumer(TOPIC_FLAKY, name="test.outbox.unique-clash")
def _unique_clash(message):
    # A consumer whose own write hits a unique constraint must not be mistaken
    # for "already processed".
    if "test.outbox.unique-clash" in FAIL_NEXT:
        FAIL_NEXT.discard("test.outbox.unique-clash")
        raise IntegrityError("duplicate key value violates unique constraint")
    _record("test.outbox.unique-clash", message)


@consumer(TOPIC_E2E, name="test.outbox.e2e")
def _e2e(message):
    _record("test.outbox.e2e", message)


@pytest.fixture(autouse=True)
def _clean_consumer_state():
    SEEN.clear()
    FAIL_NEXT.clear()
    yield
    SEEN.clear()
    FAIL_NEXT.clear()


class Broker:
    """A private queue on the real Redis broker, and what was published to it."""

    def __init__(self, queue: str):
        self.queue = queue
        self.client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        self.published: list[str] = []  # task names, from Celery's before_task_publish

    def depth(self) -> int:
        return self.client.llen(self.queue)

    def messages(self) -> list[tuple[str, list]]:
        """(task name, args) of the queued messages, oldest first."""
        raw = self.client.lrange(self.queue, 0, -1)
        out = []
        for item in reversed(raw):  # kombu LPUSHes and consumes from the tail
            envelope = json.loads(item)
            args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
            out.append((envelope["headers"]["task"], args))
        return out

    def cleanup(self) -> None:
        self.client.delete(self.queue, f"_kombu.binding.{self.queue}")
        self.client.close()


@pytest.fixture
def broker():
    queue = f"o2o-test-{uuid.uuid4().hex[:12]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    b = Broker(queue)

    def on_publish(sender=None, routing_key=None, **kwargs):
        b.published.append(sender)

    before_task_publish.connect(on_publish, weak=False)
    try:
        yield b
    finally:
        before_task_publish.disconnect(on_publish)
        celery_app.conf.task_default_queue = previous
        b.cleanup()


@pytest.fixture
def ran(monkeypatch):
    """Counts relay and dispatch runs in this process (they run in a worker otherwise)."""
    calls: dict[str, int] = defaultdict(int)
    real_relay, real_dispatch = outbox.outbox_relay, outbox.outbox_dispatch

    def relay(**kwargs):
        calls["relay"] += 1
        return real_relay(**kwargs)

    def dispatch(**kwargs):
        calls["dispatch"] += 1
        return real_dispatch(**kwargs)

    monkeypatch.setattr(outbox, "outbox_relay", relay)
    monkeypatch.setattr(outbox, "outbox_dispatch", dispatch)
    return calls


def _pending(n: int, topic: str = TOPIC) -> list[OutboxMessage]:
    """Committed-looking pending rows, created directly so no relay kick is queued."""
    OutboxMessage.objects.bulk_create(
        [OutboxMessage(topic=topic, key=f"k{i}", payload={"n": i}) for i in range(n)]
    )
    return list(OutboxMessage.objects.filter(topic=topic).order_by("id"))


# --- emit -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_emit_outside_a_transaction_raises_and_writes_nothing(broker):
    assert not connection.in_atomic_block

    with pytest.raises(OutboxOutsideTransaction):
        outbox_emit(topic=TOPIC, payload={"order": 1})

    assert OutboxMessage.objects.count() == 0
    assert broker.published == []


@pytest.mark.django_db
def test_emit_publishes_nothing_before_commit(broker, ran, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            message = outbox_emit(topic=TOPIC, payload={"order": 7, "total": "12.50"}, key="order:7")

            assert OutboxMessage.objects.filter(pk=message.pk, published_at__isnull=True).exists()
            assert broker.published == []
            assert broker.depth() == 0
        # The business block has closed but the outer transaction has not committed.
        assert broker.published == []
        assert broker.depth() == 0
        assert dict(ran) == {}

    # Commit: exactly one relay kick reached the broker; the relay itself runs in a worker.
    assert len(callbacks) == 1
    assert broker.published == ["o2o.tasks.outbox_relay"]
    assert broker.messages() == [("o2o.tasks.outbox_relay", [])]
    assert dict(ran) == {}
    message.refresh_from_db()
    assert message.published_at is None
    assert message.payload == {"order": 7, "total": "12.50"}
    assert not ProcessedMessage.objects.filter(message=message).exists()


@pytest.mark.django_db(transaction=True)
def test_rolled_back_transaction_leaves_no_message_and_publishes_nothing(broker, ran):
    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        with transaction.atomic():
            outbox_emit(topic=TOPIC, payload={"order": 8})
            raise Abort

    assert OutboxMessage.objects.count() == 0
    assert broker.published == []
    assert broker.depth() == 0
    assert dict(ran) == {}


@pytest.mark.django_db(transaction=True)
def test_committed_emit_kicks_the_relay_after_commit(broker):
    with transaction.atomic():
        first = outbox_emit(topic=TOPIC, payload={"n": 1})
        second = outbox_emit(topic=TOPIC, payload={"n": 2})
        assert broker.published == []

    assert first.id < second.id
    # Only relay kicks go out on commit; the rows themselves wait for the relay.
    assert broker.published and set(broker.published) == {"o2o.tasks.outbox_relay"}
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 2


# --- relay ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_relay_publishes_to_the_broker_in_id_order_and_marks_published(broker):
    messages = _pending(5)
    before = timezone.now()

    published = outbox_relay()

    assert published == 5
    # One dispatch task carries the whole batch, ids in order.
    assert broker.messages() == [("o2o.tasks.outbox_dispatch_batch", [[m.id for m in messages]])]
    for m in messages:
        m.refresh_from_db()
        assert m.published_at is not None and m.published_at >= before
        assert m.attempts == 0
    # A second run has nothing left to publish.
    assert outbox_relay() == 0
    assert broker.depth() == 1


@pytest.mark.django_db
def test_relay_splits_a_backlog_into_dispatch_batches(broker):
    messages = _pending(2 * outbox.DISPATCH_BATCH + 7)

    assert outbox_relay() == len(messages)

    ids = [m.id for m in messages]
    batch = outbox.DISPATCH_BATCH
    assert broker.messages() == [("o2o.tasks.outbox_dispatch_batch", [ids[:batch]]),
                                 ("o2o.tasks.outbox_dispatch_batch", [ids[batch:2 * batch]]),
                                 ("o2o.tasks.outbox_dispatch_batch", [ids[2 * batch:]])]


@pytest.mark.django_db(transaction=True)
def test_commits_while_a_relay_run_waits_send_no_further_kick(broker):
    """One relay run publishes every pending row, so while one waits for a worker, further
    commits do not queue more; once the run starts (and clears the flag) the next commit kicks
    again, and the run sees every row committed before it started."""
    for n in range(3):
        with transaction.atomic():
            outbox_emit(topic=TOPIC, payload={"n": n})
    assert broker.published == ["o2o.tasks.outbox_relay"]

    # The worker runs the waiting relay: it sees all three rows.
    assert outbox.outbox_relay_task.apply().get() == 3
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 0

    with transaction.atomic():
        outbox_emit(topic=TOPIC, payload={"n": 3})
    assert broker.published == ["o2o.tasks.outbox_relay", "o2o.tasks.outbox_dispatch_batch",
                                "o2o.tasks.outbox_relay"]


@pytest.mark.django_db
def test_relay_skips_rows_not_yet_available():
    later = _pending(1)[0]
    OutboxMessage.objects.filter(pk=later.pk).update(available_at=timezone.now() + timedelta(minutes=5))
    now = OutboxMessage.objects.create(topic=TOPIC, payload={"n": "now"})
    seen = []

    assert outbox_relay(publish=lambda m: seen.append(m.id)) == 1

    assert seen == [now.id]
    later.refresh_from_db()
    assert later.published_at is None


@pytest.mark.django_db
def test_publish_failure_keeps_the_row_pending_with_backoff():
    first, second, third = _pending(3)
    seen = []

    def publish(message):
        seen.append(message.id)
        if message.id == second.id:
            raise ConnectionError("broker unreachable")

    before = timezone.now()
    published = outbox_relay(publish=publish)
    after = timezone.now()

    assert published == 1
    # The relay stops at the failure, so later rows keep their order.
    assert seen == [first.id, second.id]
    first.refresh_from_db()
    second.refresh_from_db()
    third.refresh_from_db()
    assert first.published_at is not None
    assert second.published_at is None
    assert second.attempts == 1
    assert "broker unreachable" in second.last_error
    assert before + timedelta(seconds=2) <= second.available_at <= after + timedelta(seconds=2)
    assert third.published_at is None and third.attempts == 0

    # A second failure doubles the wait.
    OutboxMessage.objects.filter(pk=second.pk).update(available_at=timezone.now())
    seen.clear()
    before = timezone.now()
    outbox_relay(publish=publish)
    second.refresh_from_db()
    assert seen == [second.id]
    assert second.attempts == 2
    assert second.available_at >= before + timedelta(seconds=4)

    # Once the broker is back and the wait is over, the row goes out.
    OutboxMessage.objects.filter(pk=second.pk).update(available_at=timezone.now())
    seen.clear()
    assert outbox_relay(publish=lambda m: seen.append(m.id)) == 2
    assert seen == [second.id, third.id]
    second.refresh_from_db()
    assert second.published_at is not None and second.attempts == 2


@pytest.mark.django_db
def test_backoff_is_capped():
    message = _pending(1)[0]
    OutboxMessage.objects.filter(pk=message.pk).update(attempts=20)

    before = timezone.now()

    def publish(message):
        raise TimeoutError("publish timed out")

    outbox_relay(publish=publish)
    message.refresh_from_db()
    assert message.attempts == 21
    assert before + timedelta(seconds=outbox.MAX_BACKOFF_SECONDS) <= message.available_at
    assert message.available_at <= before + timedelta(seconds=outbox.MAX_BACKOFF_SECONDS + 1)


@pytest.mark.django_db(transaction=True)
def test_concurrent_relays_never_publish_a_row_twice():
    total = 40
    ids = [m.id for m in _pending(total)]
    published: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        def publish(message):
            time.sleep(0.01)  # keep the batch's row locks held while the other relay runs
            with lock:
                published.append((name, message.id))

        try:
            barrier.wait(timeout=10)
            while outbox_relay(batch_size=5, publish=publish):
                pass
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("relay-a", "relay-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    published_ids = [message_id for _, message_id in published]
    assert sorted(published_ids) == ids  # every row exactly once
    assert len(set(published_ids)) == total
    by_relay = {name: [mid for n, mid in published if n == name] for name in ("relay-a", "relay-b")}
    # Both relays did part of the work, so they really ran side by side.
    assert by_relay["relay-a"] and by_relay["relay-b"]
    for name, mine in by_relay.items():
        assert mine == sorted(mine), f"{name} published out of id order"
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 0


# --- dispatch -------------------------------------------------------------------------


@pytest.mark.django_db
def test_dispatch_runs_each_consumer_once_even_when_delivered_twice():
    message = OutboxMessage.objects.create(topic=TOPIC_TWO, payload={"order": 9})

    assert outbox_dispatch(message_id=message.id) == 2
    # The redelivery goes through the Celery task, as a worker would run it.
    assert outbox.outbox_dispatch_task.apply(args=[message.id]).get() == 0

    assert SEEN["test.outbox.first"] == [(message.id, {"order": 9})]
    assert SEEN["test.outbox.second"] == [(message.id, {"order": 9})]
    assert set(ProcessedMessage.objects.filter(message=message).values_list("consumer", flat=True)) == {
        "test.outbox.first",
        "test.outbox.second",
    }


@pytest.mark.django_db
def test_dispatch_of_a_topic_without_consumers_does_nothing():
    message = OutboxMessage.objects.create(topic="test.outbox.nobody-listens", payload={})

    assert outbox_dispatch(message_id=message.id) == 0
    assert not ProcessedMessage.objects.filter(message=message).exists()


@pytest.mark.django_db
def test_failing_consumer_is_run_again_on_redelivery():
    message = OutboxMessage.objects.create(topic=TOPIC_FLAKY, payload={"order": 10})
    FAIL_NEXT.add("test.outbox.flaky")

    with pytest.raises(ConnectionError):
        outbox_dispatch(message_id=message.id)

    processed = set(ProcessedMessage.objects.filter(message=message).values_list("consumer", flat=True))
    assert "test.outbox.flaky" not in processed
    assert "test.outbox.steady" in processed  # its own transaction committed before the failure

    outbox_dispatch(message_id=message.id)

    assert len(SEEN["test.outbox.steady"]) == 1
    assert len(SEEN["test.outbox.flaky"]) == 2  # failed once, then applied
    assert ProcessedMessage.objects.filter(message=message, consumer="test.outbox.flaky").count() == 1


@pytest.mark.django_db
def test_consumer_own_integrity_error_is_not_taken_for_already_processed():
    message = OutboxMessage.objects.create(topic=TOPIC_FLAKY, payload={"order": 11})
    FAIL_NEXT.add("test.outbox.unique-clash")

    with pytest.raises(IntegrityError):
        outbox_dispatch(message_id=message.id)
    assert not ProcessedMessage.objects.filter(message=message, consumer="test.outbox.unique-clash").exists()

    outbox_dispatch(message_id=message.id)

    assert SEEN["test.outbox.unique-clash"] == [(message.id, {"order": 11})]
    assert ProcessedMessage.objects.filter(message=message, consumer="test.outbox.unique-clash").count() == 1


@pytest.mark.django_db
def test_batch_dispatch_runs_each_consumer_once_even_when_delivered_twice():
    messages = [OutboxMessage.objects.create(topic=TOPIC_TWO, payload={"order": n}) for n in (20, 21)]
    ids = [m.id for m in messages]

    assert outbox.outbox_dispatch_batch(message_ids=ids) == 4
    assert outbox.outbox_dispatch_batch_task.apply(args=[ids]).get() == 0
    # A single redelivery of one of them finds it done as well.
    assert outbox_dispatch(message_id=ids[0]) == 0

    assert SEEN["test.outbox.first"] == [(ids[0], {"order": 20}), (ids[1], {"order": 21})]
    assert SEEN["test.outbox.second"] == [(ids[0], {"order": 20}), (ids[1], {"order": 21})]
    assert ProcessedMessage.objects.filter(message_id__in=ids).count() == 4


@pytest.mark.django_db
def test_a_failing_consumer_in_a_batch_rolls_back_alone_and_is_retried_on_its_own(broker):
    before = OutboxMessage.objects.create(topic=TOPIC_TWO, payload={"order": 30})
    flaky = OutboxMessage.objects.create(topic=TOPIC_FLAKY, payload={"order": 31})
    after = OutboxMessage.objects.create(topic=TOPIC_TWO, payload={"order": 32})
    FAIL_NEXT.add("test.outbox.flaky")

    ran = outbox.outbox_dispatch_batch(message_ids=[before.id, flaky.id, after.id])

    # The messages around it and the flaky message's other consumer are applied ...
    assert ran == 5
    processed = set(ProcessedMessage.objects.values_list("consumer", "message_id"))
    assert {("test.outbox.first", before.id), ("test.outbox.second", before.id),
            ("test.outbox.steady", flaky.id), ("test.outbox.first", after.id),
            ("test.outbox.second", after.id)} <= processed
    # ... the failed run left nothing, and its message went back to the broker on its own,
    # where the single dispatch task retries it with backoff.
    assert ("test.outbox.flaky", flaky.id) not in processed
    assert broker.messages() == [("o2o.tasks.outbox_dispatch", [flaky.id])]

    assert outbox_dispatch(message_id=flaky.id) == 2  # flaky and the unique-clash consumer
    assert len(SEEN["test.outbox.flaky"]) == 2
    assert len(SEEN["test.outbox.steady"]) == 1


# --- end to end -----------------------------------------------------------------------


def _wait_for(predicate, timeout: float = 30.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_committed_emit_reaches_the_consumer_through_a_real_worker(broker):
    with start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=[broker.queue],
        loglevel="WARNING",
        shutdown_timeout=30,
    ):
        with transaction.atomic():
            message = outbox_emit(topic=TOPIC_E2E, payload={"order": 12, "amount": "99.00"}, key="order:12")

        done = _wait_for(
            lambda: ProcessedMessage.objects.filter(message_id=message.id, consumer="test.outbox.e2e").exists()
        )

    assert done, "the consumer did not run within 30 s"
    assert SEEN["test.outbox.e2e"] == [(message.id, {"order": 12, "amount": "99.00"})]
    message.refresh_from_db()
    assert message.published_at is not None
    # kick -> relay -> dispatch, all through the broker
    assert broker.published == ["o2o.tasks.outbox_relay", "o2o.tasks.outbox_dispatch_batch"]
    assert broker.depth() == 0
