"""Beat jobs of the members app.  Each re-runs safely: only due rows change, under member locks."""

import logging
from datetime import timedelta

from celery import shared_task
from django.db import transaction

from members.services import coupons as coupon_services
from members.services import guides as guide_services
from members.services import members as member_services
from members.services import points as points_services
from o2o.outbox import consumer


@shared_task(name="members.tasks.points_unfreeze", ignore_result=True)
def points_unfreeze() -> int:
    """Make points of orders whose return window has passed available."""
    return points_services.points_unfreeze()


@shared_task(name="members.tasks.points_expire", ignore_result=True)
def points_expire() -> int:
    """Expire what is left of lots past their expiry."""
    return points_services.points_expire()


@shared_task(name="members.tasks.tiers_recompute", ignore_result=True)
def tiers_recompute() -> int:
    """Set every member's tier from their rolling 12-month paid spend."""
    return member_services.tiers_recompute()


# --- coupons, guides and commission ------------------------------------------------------------


log = logging.getLogger(__name__)


@consumer(coupon_services.TOPIC_CAMPAIGN_STARTED, name="members.coupon_campaign_started")
def coupon_campaign_started(message) -> None:
    campaign_id = int(message.payload["campaign_id"])
    transaction.on_commit(lambda: _coupon_campaign_queue(campaign_id))


def _coupon_campaign_queue(campaign_id: int) -> None:
    try:
        coupon_campaign_issue.apply_async(args=[campaign_id], retry=False)
    except Exception as exc:  # broker down: coupon_campaigns_resume queues it again later
        log.warning("could not queue coupon campaign %s, it stays running: %s", campaign_id, exc)


@shared_task(name="members.tasks.coupon_campaign_issue", ignore_result=True,
             acks_late=True)  # idempotent: batches move a cursor under the campaign row lock
def coupon_campaign_issue(campaign_id: int) -> int:
    """Issue a campaign's coupons in batches; returns how many it has issued in all."""
    return coupon_services.coupon_campaign_run(campaign_id=campaign_id).issued


@shared_task(name="members.tasks.coupon_campaigns_resume", ignore_result=True)
def coupon_campaigns_resume(idle_minutes: int = 5) -> int:
    """Queue again campaigns still issuing whose worker stopped (no batch for a while)."""
    ids = coupon_services.coupon_campaigns_stalled(idle_for=timedelta(minutes=idle_minutes))
    for campaign_id in ids:
        _coupon_campaign_queue(campaign_id)
    return len(ids)


@shared_task(name="members.tasks.coupons_expire", ignore_result=True)
def coupons_expire() -> int:
    """Mark issued coupons past their validity as expired."""
    return coupon_services.coupons_expire()


@shared_task(name="members.tasks.commission_release", ignore_result=True)
def commission_release() -> int:
    """Release guide commission whose return window has passed (each accrual once)."""
    return guide_services.commission_release()


@shared_task(name="members.tasks.guide_bindings_sweep", ignore_result=True)
def guide_bindings_sweep() -> int:
    """End expired guide bindings and apply the leave rule to guides who left."""
    return guide_services.guide_bindings_sweep()
