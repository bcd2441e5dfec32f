from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StoresConfig(AppConfig):
    name = "stores"
    verbose_name = _("Stores")

    def ready(self) -> None:
        # The API's staff principal asks this app who is staff and which stores they see.
        from o2o.apiauth import staff_scope_register
        from stores.selectors import staff_api_scope

        staff_scope_register(staff_api_scope)
