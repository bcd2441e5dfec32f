"""Settlement through real Celery workers on the real Redis broker.

1. An in-process worker (``start_worker``, solo pool) settles a multi-store day sent as a task:
   the statements add up to the fen and the ledgers audit clean.
2. A worker process is killed with SIGKILL in the middle of a settlement, right after its first
   store step committed.  The task is ``acks_late`` with ``reject_on_worker_lost``, so the worker
   puts it back and a new pool process runs it again: the settlement resumes after the step that
   was done and the day is settled exactly once.
"""

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from o2o.celery import app
from settlement import services
from settlement.models import SettlementDay, SettlementStatement, SplitLine, StoreSettlement, TenderLine
from settlement.tasks import settlement_day
from settlement.tests.scenario import build_day, shift_days, shop
from payments.models import Payment, Refund
from tests.procs import database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
D = Decimal


def wait_for(condition, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def yesterday():
    return services.business_day_of(timezone.now()) - timedelta(days=1)


def a_settled_day(day):
    return SettlementDay.objects.filter(day=day, status="closed").first()


def assert_day_adds_up(day: SettlementDay) -> None:
    paid = Payment.objects.filter(status="captured", captured_at__gte=day.window_start,
                                  captured_at__lt=day.window_end).aggregate(s=Sum("amount"))["s"]
    refunded = Refund.objects.filter(status="succeeded", completed_at__gte=day.window_start,
                                     completed_at__lt=day.window_end).aggregate(s=Sum("amount"))["s"]
    statements = SettlementStatement.objects.filter(store_settlement__day=day)
    assert day.net == day.payments_total - day.refunds_total == paid - refunded == D("1127.17")
    assert sum(s.tender_net for s in statements) == sum(s.net for s in statements) == paid - refunded
    out = io.StringIO()
    call_command("audit_ledgers", stdout=out)
    assert "all ledgers consistent" in out.getvalue()


def test_a_real_worker_settles_a_multi_store_day():
    build_day(shop())
    shift_days(1)
    day = yesterday()

    # A queue of its own: the shared test queue holds whatever earlier tests queued on commit.
    queue = f"settlement-{uuid.uuid4().hex[:8]}"
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=[queue]):
        settlement_day.apply_async(args=[day.isoformat()], queue=queue)
        settled = wait_for(lambda: a_settled_day(day), timeout=60, what="the day to be settled")

    assert settled.stores_settled == 4
    assert_day_adds_up(settled)
    # Delivered again (a duplicate message): nothing changes.
    lines = (SplitLine.objects.count(), TenderLine.objects.count())
    settlement_day.apply(args=[day.isoformat()])
    assert (SplitLine.objects.count(), TenderLine.objects.count()) == lines


def test_a_worker_killed_mid_settlement_settles_the_day_once_after_redelivery(tmp_path):
    build_day(shop())
    shift_days(1)
    day = yesterday()
    queue = f"settlement-kill-{uuid.uuid4().hex[:8]}"
    flag, log = tmp_path / "paused", tmp_path / "steps.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "o2o.settings_test", "PYTHONPATH": str(ROOT),
           "DATABASE_URL": database_url(connection.settings_dict), "REDIS_URL": settings.CELERY_BROKER_URL,
           "SETTLEMENT_CRASH_FLAG": str(flag), "SETTLEMENT_CRASH_LOG": str(log)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.settlement_crash_worker", "worker", "--pool=prefork",
         "--concurrency=1", "-Q", queue, "--loglevel=WARNING", "--without-gossip", "--without-mingle",
         "--without-heartbeat"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        settlement_day.apply_async(args=[day.isoformat()], queue=queue)
        pid = int(wait_for(lambda: flag.exists() and flag.read_text(), timeout=90, what="the first step"))

        # Killed right after its first store step committed: one store settled, the day still running.
        assert StoreSettlement.objects.count() == 1
        assert SettlementDay.objects.get(day=day).status == "running"
        os.kill(pid, signal.SIGKILL)

        settled = wait_for(lambda: a_settled_day(day), timeout=90, what="the redelivered task to finish")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)

    steps = [line.split() for line in log.read_text().splitlines()]
    assert len({p for p, _ in steps}) == 2, steps  # the killed pool process, then its replacement
    assert steps[0][0] == str(pid)
    assert sorted(store for _, store in steps) == sorted({store for _, store in steps})  # each store once
    assert StoreSettlement.objects.filter(day=settled).count() == settled.stores_settled == 4
    assert SplitLine.objects.filter(kind="sale").count() == \
        SplitLine.objects.filter(kind="sale").values("order_line").distinct().count()
    assert_day_adds_up(settled)

