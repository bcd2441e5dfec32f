from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        # Registers the outbox consumers (payments.refund_requested, the credit of online recharges) in every
        # process that dispatches outbox messages, not only in Celery workers.
        # Reconciliation keeps its admin in its own module: register it with the app.
        from payments import recharges, tasks  # noqa: F401
        from payments.reconciliation import admin  # noqa: F401
