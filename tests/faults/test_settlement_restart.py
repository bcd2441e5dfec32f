"""PostgreSQL restarts in the middle of a settlement day, under a real Celery worker settling it.

A private PostgreSQL cluster holds a copy of a settled-to-be multi-store day; a worker process
settles it, one store step stops inside its transaction (tests/faults/settlement_pause_worker.py),
and the database is stopped and started under it.  The step's transaction is lost; the task
retries (transient database errors only), finds the day running and resumes at the stores
without a marker: the day closes with each store settled once and the statements add up.

(A payout run after settlement does not exist yet; when it does, it belongs here too.)
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from settlement.models import SettlementDay, SplitLine, StoreSettlement
from settlement.tasks import settlement_day
from settlement.tests.scenario import build_day, shift_days, shop
from tests.faults.pg_private import private_copy_of_the_test_database
from tests.faults.procs import kill, process_env, worker_start
from tests.test_settlement_worker import a_settled_day, assert_day_adds_up, wait_for, yesterday

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_database_restarted_mid_settlement_resumes_and_settles_each_store_once(transactional_db, private_broker,
                                                                                 tmp_path: Path, mode):
    # Given a business day of three stores and online sales, on a private cluster
    world = shop()
    build_day(world)
    shift_days(1)
    day = yesterday()
    last_store = world["c"].pk
    with private_copy_of_the_test_database() as pg:
        queue = f"settlement-restart-{uuid.uuid4().hex[:8]}"
        flag, log = tmp_path / "paused", tmp_path / "steps.log"
        env = process_env(db=pg.settings, broker_url=private_broker.url, O2O_FAULTS_QUEUE=queue,
                          SETTLEMENT_PAUSE_FLAG=str(flag), SETTLEMENT_PAUSE_LOG=str(log),
                          SETTLEMENT_PAUSE_STORE=str(last_store), DB_CONNECT_TIMEOUT="2")
        worker = worker_start(env, queue=queue, concurrency=1, app="tests.faults.settlement_pause_worker",
                              log=tmp_path / "worker.log")
        try:
            # When a worker settles the day and one store step is open (the others committed or running)
            settlement_day.apply_async(args=[day.isoformat()], queue=queue)
            wait_for(flag.exists, timeout=120, what="the paused store step")
            assert SettlementDay.objects.get(day=day).status == "running"
            committed = set(StoreSettlement.objects.values_list("store_id", flat=True))
            assert committed and last_store not in committed  # some stores settled, the last one open
            connection.close()
            # and PostgreSQL stops under it ("fast": sessions terminated; "immediate": a crash) and comes back
            pg.stop(mode)
            time.sleep(1)
            pg.start()
            flag.unlink()  # the open step goes on, on a dead connection
            settled = wait_for(lambda: a_settled_day(day), timeout=120, what="the day to be settled after the restart")
        finally:
            kill(worker)
        # Then the open step was lost with its connection, and run again
        lines = [line.split() for line in log.read_text().splitlines()]
        failed = [line for line in lines if line[0] == "failed"]
        assert [line[1] for line in failed] == [str(last_store)], lines
        assert failed[0][2] in ("OperationalError", "InterfaceError"), lines
        # and the day closed with each store settled once
        steps = Counter(line[1] for line in lines if line[0] == "ok")
        assert steps == Counter({str(s): 1 for s in [None, world["a"].pk, world["b"].pk, last_store]}), lines
        assert StoreSettlement.objects.filter(day=settled).count() == settled.stores_settled == 4
        assert sorted(StoreSettlement.objects.filter(day=settled).values_list("store_id", flat=True),
                      key=lambda s: s or 0) == sorted([None, world["a"].pk, world["b"].pk, last_store],
                                                       key=lambda s: s or 0)
        assert SplitLine.objects.filter(kind="sale").count() == \
            SplitLine.objects.filter(kind="sale").values("order_line").distinct().count()
        # and the statements add up to the fen, the ledgers audit clean
        assert_day_adds_up(settled)
        connection.close()
