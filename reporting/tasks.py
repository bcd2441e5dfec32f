from celery import shared_task

from reporting import rollups


@shared_task(name="orders.dashboard.tasks.sales_rollup_refresh", ignore_result=True)
def sales_rollup_refresh(days: int = 3) -> int:
    """Idempotent: recomputes whole business days, so a repeated or overlapping run changes nothing."""
    return rollups.sales_rollup_refresh_recent(days=days)
