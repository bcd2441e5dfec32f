"""Offline sales synced against a real gunicorn that is killed mid-sync and restarted.

A till comes back online with six sales it took offline (one more shirt than the books hold) and
posts them to /pos/sync/.  The server is killed with SIGKILL while a sale's transaction is open
(parked on the stock row this test holds) or after every sale committed, as it starts to answer
(a relay between the till and the server kills it then and drops the connection).  The till sends the same batch again to the restarted
server, and once more: every sale is recorded exactly once, none is lost, the stock moved once per
line, the drawer expects the cash once, and the ledgers audit clean.
"""

from __future__ import annotations

import json
import threading
import uuid
from decimal import Decimal

import httpx
import pytest
from django.db import connection

from o2o.celery import app
from inventory.models import StockLevel, StockMove
from orders.models import Order
from payments import shifts
from payments.models import PosShift
from pos.models import OfflineConflict, OfflineSale
from tests.faults.conftest import assert_ledgers_clean
from tests.faults.pos_till import Till, counter_open, stock_row_lock, waiting_on_a_lock
from tests.faults.procs import AnswerCut, Gunicorn, kill, process_env

pytestmark = pytest.mark.faults

D = Decimal


@pytest.fixture
def counter(transactional_db):
    return counter_open()  # five shirts at 99.00, an open shift with a 200.00 float


@pytest.fixture
def server(tmp_path, private_broker):
    env = process_env(db=connection.settings_dict, broker_url=private_broker.url,
                      O2O_FAULTS_QUEUE=app.conf.task_default_queue, DB_CONNECT_TIMEOUT="2")
    gunicorn = Gunicorn(env, workers=1, log=tmp_path / "gunicorn.log")
    gunicorn.start()
    yield gunicorn
    gunicorn.stop()


def queued_sales(counter, n=6):
    return [{"client_uuid": str(uuid.uuid4()), "till": "T9", "sequence": seq,
             "receipt_number": f"{counter.store.code}-T9-{seq:06d}", "sold_at": "2026-12-04T11:00:00+08:00",
             "lines": [{"sku_id": counter.sku.pk, "qty": 1, "unit_price": "99.00"}],
             "tenders": [{"tender": "cash", "amount": "99.00", "tendered": "100.00"}]}
            for seq in range(1, n + 1)]


def sync(till: Till, sales: list) -> httpx.Response:
    return till.http.post("/pos/sync/", content=json.dumps({"sales": sales}),
                          headers={"Content-Type": "application/json", "X-CSRFToken": till.csrf})


@pytest.mark.parametrize("point", ["in_a_sale_transaction", "after_the_commit"])
def test_server_killed_mid_sync_then_the_till_sends_the_batch_again(counter, server, point):
    till = Till(server.url, counter)
    till.sale_open()  # the page the till was on: its CSRF token
    sales = queued_sales(counter)
    keys = [s["client_uuid"] for s in sales]
    out: dict = {}
    if point == "in_a_sale_transaction":
        lock = stock_row_lock(counter)
        try:
            def post():
                try:
                    out["response"] = sync(till, sales)
                except httpx.HTTPError as exc:
                    out["error"] = exc

            thread = threading.Thread(target=post, daemon=True)
            thread.start()
            assert waiting_on_a_lock(), "the sync never reached the locked row"
            kill(server.proc)
            thread.join(30)
        finally:
            lock.release()
            lock.close()
    else:
        # Nothing of the sync waits on the database after its sales commit (it leaves the session
        # alone): the server is killed as its answer starts, which the till then never gets.
        cut = AnswerCut(server.url, on_answer=lambda: kill(server.proc))
        relayed = till.through(cut.url)
        try:
            out["response"] = sync(relayed, sales)
        except httpx.HTTPError as exc:
            out["error"] = exc
        finally:
            relayed.close()
        assert cut.answered.is_set(), "the server never started to answer"
    assert "error" in out, "the till got an answer: the kill did not land mid-sync"
    recorded = Order.objects.filter(client_uuid__in=keys)
    # Killed inside the first sale's transaction: nothing; after the commit: all six, answer lost.
    assert recorded.count() == (0 if point == "in_a_sale_transaction" else 6)

    server.start()
    first = sync(till, sales)
    again = sync(till, sales)  # the till's retry timer fires once more
    till.close()
    assert first.status_code == again.status_code == 200, first.text[-500:]
    statuses = [r["status"] for r in first.json()["results"]]
    assert statuses == (["recorded"] * 6 if point == "in_a_sale_transaction" else ["already_recorded"] * 6)
    assert [r["status"] for r in again.json()["results"]] == ["already_recorded"] * 6
    numbers = [r["order_number"] for r in first.json()["results"]]
    assert numbers == [r["order_number"] for r in again.json()["results"]]
    assert sorted(numbers) == sorted(recorded.values_list("number", flat=True)) and len(set(numbers)) == 6
    assert OfflineSale.objects.count() == 6
    assert StockMove.objects.filter(reason="sale", reference__in=numbers).count() == 6
    level = StockLevel.objects.get(warehouse_id=counter.store.warehouse_id, sku=counter.sku, bucket="sellable")
    assert level.on_hand == 0  # five on the books, six sold: one booked in for the count
    short = OfflineConflict.objects.get()
    assert (short.kind, short.qty_short) == ("stock_short", 1)
    shift = PosShift.objects.get(store=counter.store, status="open")
    assert shifts.shift_expected_cash(shift) == D("200.00") + D("99.00") * 6
    assert_ledgers_clean()
