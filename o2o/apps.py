from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class O2OConfig(AppConfig):
    name = "o2o"
    verbose_name = _("Core")

    def ready(self) -> None:
        # Registers the idempotency purge task in every process, the worker included.
        from o2o import idempotency  # noqa: F401
