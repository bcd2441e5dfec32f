"""POS complete against a real gunicorn, stopped at known points by a row lock this test holds.

* The web server is killed with SIGKILL in the middle of a complete: inside the sale's
  transaction (after a payment code was charged, where there is one), or after the sale
  committed but before the till got the answer.  The till retries with the same client UUID
  against the restarted server: there is exactly one sale (none before the retry when the kill
  came first), the till is sent to its receipt, and a charged code is taken over, not charged again.
* Redis (the broker) goes down while a payment-code charge is in flight (the provider charged,
  the sale not yet taken): the sale takes the charge over, or the charge is refunded — when the
  sale then fails, or when the server dies and the till never comes back (the orphan sweeper) —
  and the refund reaches the provider once Redis is back.  Never lost.

Private Redis; the test database; the ledgers audit clean after each.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from o2o.celery import app
from o2o.models import OutboxMessage
from o2o.outbox import outbox_relay
from orders.models import Order
from inventory.locks import levels_lock
from orders.services import LineIn, TenderIn, pos_sale_create
from payments.micropay import ORPHAN_AFTER, sale_reference
from payments.models import Payment, Refund
from tests.faults.conftest import assert_ledgers_clean
from tests.faults.pos_till import (
    WECHAT,
    Till,
    counter_open,
    receipt_number,
    session_row_lock,
    stock_row_lock,
    waiting_on_a_lock,
)
from tests.faults.procs import Gunicorn, kill, process_env, worker_start

pytestmark = pytest.mark.faults

D = Decimal
TENDERS = {"cash": {"cash_tendered": "99.00"}, "payment_code": {"payment_code": WECHAT}}


@pytest.fixture
def counter(transactional_db):
    return counter_open()


@pytest.fixture
def env(private_broker):
    """Server and worker processes on this test's database and private Redis, on the queue this
    process publishes to."""
    return process_env(db=connection.settings_dict, broker_url=private_broker.url, POS_MICROPAY_PROVIDER="sandbox",
                       O2O_FAULTS_QUEUE=app.conf.task_default_queue, DB_CONNECT_TIMEOUT="2")


@pytest.fixture
def server(env, tmp_path):
    gunicorn = Gunicorn(env, workers=1, log=tmp_path / "gunicorn.log")
    gunicorn.start()
    yield gunicorn
    gunicorn.stop()


def _killed(server: Gunicorn, submitted: dict) -> None:
    """SIGKILL the whole server (master and worker) and see the till's request die with it."""
    kill(server.proc)
    submitted["thread"].join(30)
    assert "error" in submitted, "the till got an answer: the kill did not land mid-request"


@pytest.mark.parametrize("tender", ["cash", "payment_code"])
@pytest.mark.parametrize("point", ["in_the_sale_transaction", "after_the_commit"])
def test_server_killed_mid_complete_then_the_till_retries(counter, server, point, tender):
    till = Till(server.url, counter)
    uid = till.sale_open()
    till.scan(counter.sku.code)
    lock = stock_row_lock(counter) if point == "in_the_sale_transaction" else session_row_lock(counter)
    try:
        # Given a complete parked at the point (the server waits on the row this test holds)
        submitted = till.complete_in_background(uid, **TENDERS[tender])
        assert waiting_on_a_lock(), "the complete never reached the locked row"
        sales = Order.objects.filter(client_uuid=uid)
        if point == "in_the_sale_transaction":
            assert not sales.exists()
            if tender == "payment_code":  # the provider has charged; the sale has not taken it yet
                held = Payment.objects.get(reference=sale_reference(uid))
                assert held.status == Payment.Status.CAPTURED
        else:
            assert sales.count() == 1  # committed; the answer is not sent yet
        # When the server is killed with SIGKILL
        _killed(server, submitted)
    finally:
        lock.release()
        lock.close()
    # Then the sale exists once (after the commit) or not at all (inside the transaction)
    assert sales.count() == (1 if point == "after_the_commit" else 0)
    # When the till retries with the same client UUID against the restarted server
    server.start()
    retried = till.complete(uid, **TENDERS[tender])
    again = till.complete(uid, **TENDERS[tender])  # and once more, as a double click would
    till.close()
    # Then there is exactly one sale, and the till is sent to its receipt both times
    order = Order.objects.get(client_uuid=uid)
    assert receipt_number(retried) == receipt_number(again) == order.number
    assert (order.status, order.total, order.paid_total) == ("completed", D("99.00"), D("99.00"))
    payments = list(Payment.objects.filter(reference__in=[order.number, sale_reference(uid)]))
    assert [(p.reference, p.status, p.amount) for p in payments] == [(order.number, "captured", D("99.00"))]
    if tender == "payment_code":  # the charge was taken over: one charge, never refunded
        assert payments[0].tender == "wechat_pay" and not Refund.objects.exists()
    assert_ledgers_clean()


def _relay_after_outage() -> None:
    """Beat's relay run once the broker is back (its backoff over)."""
    OutboxMessage.objects.filter(published_at__isnull=True).update(available_at=timezone.now())
    for _ in range(20):
        if outbox_relay() == 0:
            break


def _wait(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def _sell_the_rest(counter) -> None:
    """Another till sells the last shirts (this test holds their stock row already)."""
    pos_sale_create(store=counter.store, client_uuid=uuid.uuid4(), actor=counter.clerk, lines=[LineIn(counter.sku.pk, 5)],
                    tenders=[TenderIn("cash", D("495.00"))])


@pytest.mark.parametrize("outcome", ["taken_over", "refunded_sale_failed", "refunded_by_the_sweeper"])
def test_redis_down_while_a_payment_code_charge_is_in_flight(counter, server, env, private_broker, outcome,
                                                              tmp_path):
    till = Till(server.url, counter)
    uid = till.sale_open()
    till.scan(counter.sku.code)
    charge = None

    def parked_with_a_charge() -> Payment:
        assert waiting_on_a_lock(), "the complete never reached the sale"
        held = Payment.objects.get(reference=sale_reference(uid))
        assert held.status == Payment.Status.CAPTURED
        return held

    if outcome == "refunded_sale_failed":
        # Given a payment code charged by the provider, its sale parked before taking it (this
        # test's transaction holds the shirts' stock row)
        with transaction.atomic(durable=True):
            levels_lock([(counter.store.warehouse_id, counter.sku.pk, "sellable")])
            submitted = till.complete_in_background(uid, payment_code=WECHAT)
            charge = parked_with_a_charge()
            # When Redis goes down, and the last shirts are sold meanwhile: the sale cannot complete
            private_broker.stop()
            _sell_the_rest(counter)
    else:
        lock = stock_row_lock(counter)
        try:
            submitted = till.complete_in_background(uid, payment_code=WECHAT)
            charge = parked_with_a_charge()
            # When Redis goes down (and, for the sweeper, the server dies; the till never comes back)
            private_broker.stop()
            if outcome == "refunded_by_the_sweeper":
                _killed(server, submitted)
        finally:
            lock.release()
            lock.close()
    if outcome != "refunded_by_the_sweeper":
        submitted["thread"].join(60)
        resp = submitted.get("response")
        assert resp is not None, submitted.get("error")
    charge.refresh_from_db()
    if outcome == "taken_over":
        # Then the sale completed with Redis down, and took the charge
        order = Order.objects.get(client_uuid=uid)
        assert receipt_number(resp) == order.number
        assert (charge.reference, charge.status, order.paid_total) == (order.number, "captured", D("99.00"))
    elif outcome == "refunded_sale_failed":
        # Then the till is told the sale failed and the charge is being refunded
        with translation.override(settings.LANGUAGE_CODE):
            note = gettext("The %(amount)s charged to the payment code is being refunded to the customer.") % {
                "amount": "¥99.00"}
        assert resp.status_code == 422 and note in resp.text, resp.text[-800:]
        assert not Order.objects.filter(client_uuid=uid).exists()
    else:
        # Then the charge is still held for the sale, not lost
        assert (charge.reference, charge.status) == (sale_reference(uid), "captured")
        assert not Order.objects.filter(client_uuid=uid).exists()
    # When Redis comes back, with a worker (and beat's relay and, past ORPHAN_AFTER, its sweep)
    private_broker.start()
    worker = worker_start(env, queue=app.conf.task_default_queue, log=tmp_path / "worker.log")
    try:
        if outcome == "refunded_by_the_sweeper":
            Payment.objects.filter(pk=charge.pk).update(captured_at=timezone.now() - ORPHAN_AFTER - timedelta(minutes=1))
            app.send_task("payments.tasks.micropay_orphans_release")
            assert _wait(lambda: Refund.objects.filter(payment=charge).exists(), 60), "the sweeper refunded nothing"
        _relay_after_outage()
        settled = _wait(lambda: not Refund.objects.exclude(status="succeeded").exists() and not OutboxMessage.objects
                        .filter(published_at__isnull=True).exists(), 90)
    finally:
        kill(worker)
    assert settled, list(Refund.objects.values_list("status", flat=True))
    charge.refresh_from_db()
    refunds = list(Refund.objects.filter(payment=charge))
    if outcome == "taken_over":
        assert refunds == [] and charge.refunded_amount == 0
    else:
        # Then the whole charge went back to the customer's wallet, once
        assert [(r.status, r.amount) for r in refunds] == [("succeeded", D("99.00"))]
        assert charge.refunded_amount == D("99.00") and refunds[0].provider_refund_id
    assert not OutboxMessage.objects.filter(published_at__isnull=True).exists()
    till.close()
    assert_ledgers_clean()
