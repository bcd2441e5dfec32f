"""Provider refunds after commit.

``refund_create`` writes a ``payments.refund_requested`` outbox row; its
consumer (inside the dispatch transaction) queues ``refund_process`` on
commit, which calls the provider outside any transaction and records the
answer with ``refund_complete``.  ``refunds_resume`` (beat) re-queues refunds
still pending, e.g. when the queueing failed or the provider said "processing".
"""

import logging
from datetime import date, timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from o2o.models import OutboxMessage
from o2o.outbox import consumer
from payments import bills, micropay, selectors, services

log = logging.getLogger(__name__)


@consumer(services.TOPIC_REFUND_REQUESTED, name="payments.refund_requested")
def refund_requested(message: OutboxMessage) -> None:
    refund_id = int(message.payload["refund_id"])
    transaction.on_commit(lambda: _refund_process_queue(refund_id))


def _refund_process_queue(refund_id: int) -> None:
    try:
        refund_process.apply_async(args=[refund_id], retry=False)
    except Exception as exc:  # broker down: refunds_resume picks the refund up later
        log.warning("could not queue refund %s, it stays pending: %s", refund_id, exc)


@shared_task(
    name="payments.tasks.refund_process",
    ignore_result=True,
    acks_late=True,  # idempotent: a refund no longer pending is skipped; providers dedupe out_refund_no
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def refund_process(refund_id: int) -> str:
    return services.refund_process(refund_id=refund_id).status


@shared_task(name="payments.tasks.refunds_resume", ignore_result=True)
def refunds_resume(older_than_minutes: int = 5) -> int:
    ids = selectors.refunds_pending_ids(created_before=timezone.now() - timedelta(minutes=older_than_minutes))
    for refund_id in ids:
        _refund_process_queue(refund_id)
    return len(ids)


@shared_task(name="payments.tasks.micropay_stale_resolve", ignore_result=True)
def micropay_stale_resolve() -> dict[str, int]:
    """Ask the providers about payment-code charges whose answer was lost (idempotent)."""
    return micropay.micropay_stale_resolve()


@shared_task(name="payments.tasks.micropay_orphans_release", ignore_result=True)
def micropay_orphans_release() -> int:
    """Refund payment-code charges whose counter sale never completed (see payments.micropay)."""
    return micropay.micropay_orphans_release()


@shared_task(name="payments.tasks.bills_reconcile", ignore_result=True)
def bills_reconcile(day: str = "") -> int:
    """Download yesterday's (or ``day``'s) provider bills and reconcile them; returns the runs made."""
    outcomes = bills.bills_reconcile(day=date.fromisoformat(day) if day else None)
    return sum(len(o.runs) for o in outcomes)
