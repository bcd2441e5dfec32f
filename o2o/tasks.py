from celery import shared_task

from o2o import outbox


@shared_task(name="o2o.tasks.outbox_relay", ignore_result=True)
def outbox_relay() -> int:
    return outbox.outbox_relay()


@shared_task(name="o2o.tasks.outbox_redeliver", ignore_result=True)
def outbox_redeliver() -> int:
    return outbox.outbox_redeliver()


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
def outbox_dispatch(message_id: int) -> int:
    return outbox.outbox_dispatch(message_id=message_id)
