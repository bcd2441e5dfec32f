from celery import shared_task

from orders import services


@shared_task(name="orders.tasks.orders_expire", ignore_result=True)
def orders_expire() -> int:
    """Idempotent: each order is re-checked under its row lock before it expires."""
    return services.orders_expire()


# The dashboard's roll-up job lives with the dashboard; importing it here registers it with the worker.
from orders.dashboard.tasks import sales_rollup_refresh  # noqa: E402,F401

# Settlement jobs live with settlement; importing them here registers them with the worker.
from orders.settlement.tasks import settlement_daily, settlement_day  # noqa: E402,F401
