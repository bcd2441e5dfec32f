"""Every periodic job, in one place.  Celery beat reads this; the admin shows it."""

from celery.schedules import crontab
from django.conf import settings

BEAT_SCHEDULE = {
    "outbox-relay": {
        "task": "o2o.tasks.outbox_relay",
        "schedule": 5.0,
        "options": {"expires": 5},
    },
    # Messages the broker lost after the relay handed them over (a worker killed mid-pop).
    "outbox-redeliver": {
        "task": "o2o.tasks.outbox_redeliver",
        "schedule": 300.0,
        "options": {"expires": 300},
    },
    "inventory-expire-reservations": {
        "task": "inventory.tasks.reservations_expire",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "orders-expire-unpaid": {
        "task": "orders.tasks.orders_expire",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "payments-refunds-resume": {
        "task": "payments.tasks.refunds_resume",
        "schedule": 300.0,
        "options": {"expires": 300},
    },
    # Online payments still pending (or cancelled) whose notification may have been lost are asked
    # about at the provider and captured when paid, exactly as the notification would have.
    "payments-query-pending": {
        "task": "orders.tasks.payments_query_pending",
        "schedule": 120.0,
        "options": {"expires": 120},
    },
    # Payment-code charges whose answer was lost are settled with the provider (taken or reversed).
    "payments-micropay-stale-resolve": {
        "task": "payments.tasks.micropay_stale_resolve",
        "schedule": 120.0,
        "options": {"expires": 120},
    },
    # Payment-code charges at the counter whose sale never completed go back to the customer.
    "payments-micropay-orphans-release": {
        "task": "payments.tasks.micropay_orphans_release",
        "schedule": 300.0,
        "options": {"expires": 300},
    },
    # Yesterday's WeChat Pay / Alipay bills, downloaded and reconciled (after the providers publish
    # them, around 10:00 Beijing time).
    "payments-bills-reconcile": {"task": "payments.tasks.bills_reconcile", "schedule": crontab(hour=10, minute=30)},
    "inventory-replenishment-propose": {
        "task": "inventory.tasks.replenishment_propose",
        "schedule": crontab(hour=5, minute=30),
    },
    "members-commission-release": {"task": "members.tasks.commission_release", "schedule": crontab(minute=15)},
    "members-coupons-expire": {"task": "members.tasks.coupons_expire", "schedule": crontab(minute=5)},
    "members-guide-bindings-sweep": {"task": "members.tasks.guide_bindings_sweep",
                                     "schedule": crontab(hour=3, minute=0)},
    "members-coupon-campaigns-resume": {"task": "members.tasks.coupon_campaigns_resume", "schedule": 300.0,
                                        "options": {"expires": 300}},
    # Half an hour after the business day's cut-off (Asia/Shanghai): settles every day that has
    # ended and is not closed yet; a run with nothing to settle writes nothing.
    "orders-settlement-daily": {"task": "orders.settlement.tasks.settlement_daily",
                                "schedule": crontab(hour=getattr(settings, "SETTLEMENT_CUTOFF_HOUR", 0), minute=30)},
    # Re-computes today and the three days before, so late payments and returns land.
    "orders-sales-rollup-refresh": {"task": "orders.dashboard.tasks.sales_rollup_refresh", "schedule": 600.0,
                                    "options": {"expires": 600}},
    # Partner API: webhook retries whose countdown task was lost, idempotency keys past their TTL,
    # debounced stock figures to marketplaces (and stock webhooks), the drift-correcting full sync,
    # and marketplace order import.
    "webhooks-deliveries-due": {
        "task": "o2o.webhooks.deliveries_due",
        "schedule": 30.0,
        "options": {"expires": 30},
    },
    "idempotency-purge": {
        "task": "o2o.idempotency.purge",
        "schedule": crontab(minute=17),
    },
    "stock-sync-drain": {
        "task": "orders.api.stocksync.drain",
        "schedule": 5.0,
        "options": {"expires": 5},
    },
    "stock-sync-full": {
        "task": "orders.api.stocksync.full",
        "schedule": crontab(minute="*/30"),
    },
    "marketplace-orders-import": {
        "task": "orders.api.imports.marketplace_orders",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "members-points-unfreeze": {"task": "members.tasks.points_unfreeze", "schedule": crontab(minute="*/15")},
    "members-points-expire": {"task": "members.tasks.points_expire", "schedule": crontab(hour=0, minute=10)},
    "members-tiers-recompute": {"task": "members.tasks.tiers_recompute", "schedule": crontab(hour=3, minute=0)},
}
