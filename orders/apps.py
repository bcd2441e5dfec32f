from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders")


    def ready(self) -> None:
        from orders import consumers  # noqa: F401  (registers outbox consumers)
        from members.privacy import member_data_hooks_register, member_relation_register
        from orders.selectors import member_orders_export, member_ordered_through
        from orders.services.changes import member_orders_erase

        # A partner may read the members who ordered through it; a member's orders are part of their
        # personal data export, and their erasure blanks the orders' copies of name, phone and address.
        member_relation_register(member_ordered_through)
        member_data_hooks_register(exporter=member_orders_export, eraser=member_orders_erase)
