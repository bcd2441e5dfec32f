"""The platform's Celery tasks, for the worker's task discovery: they are defined beside the code
they run (``o2o.outbox``), which imports nothing from here."""

from o2o.outbox import outbox_dispatch_batch_task, outbox_dispatch_task, outbox_redeliver_task, outbox_relay_task

__all__ = ["outbox_dispatch_batch_task", "outbox_dispatch_task", "outbox_redeliver_task", "outbox_relay_task"]
