"""kill -9 a Celery worker in the middle of outbox delivery, then restart it: every message
is consumed exactly once (real worker processes, a private Redis, the test database).

The Redis transport pops a message before the worker records it as unacknowledged, so a kill
can land between the two and the broker loses that message (about one kill in seven here):
the outbox's redelivery sweep, which beat runs, publishes it again once the queue is drained."""

import os
import signal
import subprocess
import time

import pytest
from django.db import connection

from bench import consumers
from o2o.models import OutboxMessage, ProcessedMessage
from o2o.outbox import outbox_redeliver, outbox_relay
from tests.faults.conftest import assert_ledgers_clean
from tests.faults.procs import process_env, worker_start
from tests.faults.redis_private import PrivateRedis

pytestmark = pytest.mark.faults

MESSAGES = 3000
QUEUE = "o2o-bench"
SWEEP_SECONDS = 5


def _worker(broker: PrivateRedis) -> subprocess.Popen:
    env = process_env(db=connection.settings_dict, broker_url=broker.url, settings="bench.settings",
                      O2O_BENCH_VISIBILITY_TIMEOUT="5")
    return worker_start(env, queue=QUEUE)


def _publish(message) -> None:
    from o2o.outbox import outbox_dispatch_task as outbox_dispatch

    outbox_dispatch.apply_async(args=[message.id], queue=QUEUE, retry=False)


def _wait_processed(at_least: int, seconds: float, *, beat: bool = False) -> int:
    """Wait for the consumer; with ``beat``, run the outbox redelivery sweep every few seconds
    as the beat schedule does (with a grace above the broker's 5 s visibility timeout)."""
    done = ProcessedMessage.objects.filter(consumer=consumers.NAME)
    count = 0
    deadline = time.monotonic() + seconds
    next_sweep = time.monotonic() + SWEEP_SECONDS
    while time.monotonic() < deadline:
        count = done.count()
        if count >= at_least:
            break
        if beat and time.monotonic() >= next_sweep:
            outbox_redeliver(older_than=10, queue=QUEUE, publish=_publish)
            next_sweep = time.monotonic() + SWEEP_SECONDS
        time.sleep(0.2)
    return count


def test_worker_killed_mid_delivery_loses_and_repeats_nothing(transactional_db, private_broker):
    # Given a backlog of outbox messages handed to the broker
    OutboxMessage.objects.bulk_create([OutboxMessage(topic=consumers.TOPIC, key=f"k{i}", payload={"i": i})
                                       for i in range(MESSAGES)])
    for _ in range(MESSAGES // 100 + 5):
        if outbox_relay(batch_size=500, publish=_publish) == 0:
            break
    # When a worker is killed with SIGKILL in the middle of the backlog
    worker = _worker(private_broker)
    try:
        seen = _wait_processed(MESSAGES // 10, 120)
        assert 0 < seen < MESSAGES, f"{seen} processed before the kill: the kill did not land mid-delivery"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        # and a worker is started again
        worker = _worker(private_broker)
        final = _wait_processed(MESSAGES, 240, beat=True)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
    # Then every message was consumed, and none twice
    assert final == MESSAGES
    per_message = ProcessedMessage.objects.filter(consumer=consumers.NAME).values_list("message_id", flat=True)
    assert len(per_message) == len(set(per_message)) == MESSAGES
    assert_ledgers_clean()
