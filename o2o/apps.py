from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class O2OConfig(AppConfig):
    name = "o2o"
    verbose_name = _("Core")

    def ready(self) -> None:
        # Registers the outbox consumers and Celery tasks of the partner API (webhooks, stock sync,
        # marketplace import, idempotency purge) in every process, the worker included.
        from o2o import idempotency, webhooks  # noqa: F401
        from orders.api import imports, stocksync  # noqa: F401
