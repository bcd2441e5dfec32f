from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")

    def ready(self) -> None:
        # Outbox consumers register when their module is imported; import them in every process
        # that dispatches outbox messages (web and worker alike), not only where Celery looks.
        from integrations import imports, stocksync, webhooks  # noqa: F401
