from celery import shared_task

from orders import services


@shared_task(name="orders.tasks.orders_expire", ignore_result=True)
def orders_expire() -> int:
    """Idempotent: each order is re-checked under its row lock before it expires."""
    return services.orders_expire()


@shared_task(name="orders.tasks.payments_query_pending", ignore_result=True)
def payments_query_pending() -> dict[str, int]:
    """Online payments whose notification was lost: asked at the provider, captured when paid (idempotent)."""
    return services.payments_query_pending()
