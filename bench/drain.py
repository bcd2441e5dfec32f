"""Celery workers draining a backlog of outbox dispatch messages.

    python -m bench.drain --workers 2 --messages 10000

Creates ``messages`` outbox rows on the bench topic (a consumer that only records that it
ran), publishes them with the outbox relay, then starts ``workers`` Celery worker processes
(each ``--concurrency 2``) on the bench queue and times until every message was consumed
once.  Prints one JSON object.  Run with bench settings and the bench database.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench import consumers  # noqa: E402
from bench.procs import tree_hwm_kb  # noqa: E402
from o2o import outbox  # noqa: E402
from o2o.celery import app  # noqa: E402
from o2o.models import OutboxMessage, ProcessedMessage  # noqa: E402

TIMEOUT_S = int(os.environ.get("BENCH_DRAIN_TIMEOUT", "420"))


def _purge_queue() -> None:
    with app.connection_for_write() as conn:
        try:
            conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)
        except Exception:  # the queue does not exist yet
            pass


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    # Earlier load left relay kicks and pending events of its own; they are not part of this backlog.
    _purge_queue()
    OutboxMessage.objects.filter(published_at__isnull=True).update(published_at=timezone.now())
    first = OutboxMessage.objects.bulk_create(
        [OutboxMessage(topic=consumers.TOPIC, key=f"bench:{i}", payload={"i": i}) for i in range(args.messages)])
    ids = [m.id for m in first]
    t0 = time.monotonic()
    published = 0
    for _ in range(args.messages // 100 + 10):
        n = outbox.outbox_relay(batch_size=500)
        published += n
        if n == 0:
            break
    relay_s = time.monotonic() - t0
    done = ProcessedMessage.objects.filter(consumer=consumers.NAME, message_id__gte=ids[0], message_id__lte=ids[-1])
    procs = []
    for i in range(args.workers):
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "o2o", "worker", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE,
             "-c", str(args.concurrency), "-n", f"bench{i}-{os.getpid()}@%h", "-l", "warning",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True))
    started, first_seen, count_at_first, count = time.monotonic(), None, 0, 0
    while time.monotonic() - started < TIMEOUT_S:
        count = done.count()
        if count and first_seen is None:
            first_seen, count_at_first = time.monotonic(), count
        if count >= args.messages:
            break
        time.sleep(0.25)
    finished = time.monotonic()
    hwm = max((tree_hwm_kb(p.pid) for p in procs), default=0)
    for p in procs:
        os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
    window = (finished - first_seen) if first_seen else None
    out = {"workers": args.workers, "concurrency_per_worker": args.concurrency, "messages": args.messages,
           "published": published, "relay_s": round(relay_s, 2),
           "relay_msgs_per_s": round(published / relay_s, 1) if relay_s else None,
           "consumed": count, "drain_s": round(window, 2) if window else None,
           "msgs_per_s": round((count - count_at_first) / window, 1) if window else None,
           "startup_s": round(first_seen - started, 2) if first_seen else None,
           "worker_peak_rss_mb": round(hwm / 1024, 1), "complete": count >= args.messages}
    print(json.dumps(out))
    return 0  # an incomplete drain is reported ("complete": false), not fatal to the run


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
