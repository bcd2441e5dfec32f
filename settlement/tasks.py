"""Settlement jobs.  They take dates, re-read everything and are idempotent (a closed day is left as
it is; a running day resumes at the first store without a marker), so a message delivered twice or
redelivered after a worker died settles each day once.  Only transient database and broker errors
are retried, with backoff and a cap; a domain error (the day has not ended, an earlier day is
open) fails the job with its message."""

from __future__ import annotations

from datetime import date

from celery import shared_task
from django.db import InterfaceError, OperationalError

from settlement import services

TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
RETRY = {"acks_late": True, "reject_on_worker_lost": True, "autoretry_for": TRANSIENT, "retry_backoff": True,
         "retry_backoff_max": 600, "retry_jitter": True, "max_retries": 6}


@shared_task(name="orders.settlement.tasks.settlement_daily", ignore_result=True, **RETRY)
def settlement_daily() -> str:
    """Beat, after the cut-off: settle every business day that has ended and is not closed."""
    day = services.last_ended_day()
    services.settlement_run(until=day)
    return day.isoformat()


@shared_task(name="orders.settlement.tasks.settlement_day", ignore_result=True, **RETRY)
def settlement_day(day: str) -> str:
    """Settle business day ``day`` (ISO date), and any earlier day not settled yet."""
    services.settlement_run(until=date.fromisoformat(day))
    return day
