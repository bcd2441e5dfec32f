from celery import shared_task

from inventory import services


@shared_task(name="inventory.tasks.reservations_expire", ignore_result=True)
def reservations_expire() -> int:
    """Idempotent: only still-active, past-due reservations are closed (SKIP LOCKED batches)."""
    return services.reservations_expire()


@shared_task(name="inventory.tasks.replenishment_propose", ignore_result=True)
def replenishment_propose(business_date: str | None = None) -> int:
    from datetime import date

    return services.replenishment_propose(business_date=date.fromisoformat(business_date) if business_date else None)
