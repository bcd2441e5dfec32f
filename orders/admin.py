"""Head-office admin for orders, shipments and returns (read-only; changed through services).

Staff below head office see the orders, returns and shipments of their stores (a regional
manager: the stores of the region) and, through the payments admin registered here, the
payments of those orders.  Orders export to CSV or XLSX.
"""

from django.contrib import admin, messages
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from o2o.admin_tables import ExportActionsMixin
from o2o.errors import DomainError
from orders import cod_admin  # noqa: F401  (registers the COD remittance pages)
from orders import services
from orders.selectors import order_scope, order_scope_q
from orders.models import (
    ChannelConfig,
    ChannelWarehouse,
    Order,
    OrderEvent,
    OrderLine,
    OrderLinePromotion,
    Return,
    ReturnLine,
    Shipment,
    ShipmentLine,
)
from payments import admin as payments_admin
from payments.models import Payment, Refund
from stores.admin import StoreScoped
from stores.selectors import staff_store_ids, staff_warehouse_ids


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ["line_no", "sku_code", "name", "unit_price", "qty", "discount", "line_total", "warehouse",
              "qty_shipped", "qty_returned", "refunded_amount"]
    readonly_fields = fields


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["created_at", "kind", "from_status", "to_status", "actor", "store", "reason"]
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(StoreScoped, ExportActionsMixin, admin.ModelAdmin):
    # The orders' one visibility rule (sold, picked up or shipped at the staff's stores), as in the API.
    list_display = ["number", "channel", "fulfillment", "status", "store", "total", "paid_total", "refunded_total",
                    "created_at"]
    list_filter = ["channel", "fulfillment", "status", "store"]
    search_fields = ["number", "external_id", "customer_phone", "pickup_code"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline, OrderEventInline]
    actions = ["cancel_orders", "export_csv", "export_xlsx"]
    list_select_related = ["store"]
    export_filename = "orders"

    def store_scope_q(self, request) -> Q:
        return order_scope_q(store_ids=staff_store_ids(request.user))

    def export_headers(self):
        return [_("order number"), _("channel"), _("fulfillment"), _("store code"), _("store"), _("status"),
                _("subtotal"), _("discount"), _("coupon discount"), _("total"), _("paid"), _("refunded"),
                _("currency"), _("created at"), _("paid at"), _("updated at")]

    def export_rows(self, queryset):
        for o in queryset.select_related("store").order_by("pk").iterator(chunk_size=2000):
            store_code, store_name = (o.store.code, o.store.name) if o.store else ("", "")
            yield [o.number, o.get_channel_display(), o.get_fulfillment_display(), store_code, store_name,
                   o.get_status_display(), o.subtotal, o.discount_total,
                   o.coupon_discount, o.total, o.paid_total, o.refunded_total, o.currency, o.created_at,
                   o.paid_at, o.updated_at]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Order._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Cancel selected orders (release stock, refund payments)"))
    def cancel_orders(self, request, queryset):
        done = 0
        for order in queryset:
            try:
                services.order_cancel(order=order, actor=request.user, reason="cancelled by head office")
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{order.number}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, _("%(n)d order(s) cancelled.") % {"n": done}, messages.SUCCESS)


class ShipmentLineInline(ReadOnlyInline):
    model = ShipmentLine
    fields = ["order_line", "qty"]
    readonly_fields = fields


@admin.register(Shipment)
class ShipmentAdmin(StoreScoped, admin.ModelAdmin):
    store_scope = ("order__store",)
    list_display = ["number", "order", "warehouse", "status", "carrier", "tracking_number", "shipped_at"]
    list_filter = ["status", "warehouse"]
    search_fields = ["number", "order__number", "tracking_number"]
    inlines = [ShipmentLineInline]
    readonly_fields = ["number", "order", "warehouse", "status", "carrier", "tracking_number", "created_by",
                       "shipped_by", "shipped_at"]

    def store_scope_q(self, request):
        # Parcels shipped from the region's own warehouses count too (a web order has no store).
        return super().store_scope_q(request) | Q(warehouse__in=staff_warehouse_ids(request.user))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReturnLineInline(ReadOnlyInline):
    model = ReturnLine
    fields = ["order_line", "qty", "condition", "refund_amount"]
    readonly_fields = fields


@admin.register(Return)
class ReturnAdmin(StoreScoped, admin.ModelAdmin):
    store_scope = ("store", "order__store")
    list_display = ["number", "order", "store", "refund_total", "cash_rounding", "refund_policy", "created_by",
                    "created_at"]
    list_filter = ["store"]
    search_fields = ["number", "order__number"]
    date_hierarchy = "created_at"
    inlines = [ReturnLineInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Return._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OrderLinePromotion)
class OrderLinePromotionAdmin(StoreScoped, admin.ModelAdmin):
    """What each promotion took off each line sold, with who bears it: the promotion cost by bearer."""

    store_scope = ("line__order__store",)
    list_display = ["order_number", "sku_code", "code", "name", "kind", "bearer", "amount", "gift_qty", "gift_cost",
                    "gift_taken_back"]
    list_filter = ["bearer", "kind", "code", "line__order__store"]
    search_fields = ["line__order__number", "code", "name", "line__sku_code"]
    date_hierarchy = "line__order__created_at"
    list_select_related = ["line__order"]

    @admin.display(description=_("order number"), ordering="line__order__number")
    def order_number(self, obj):
        return obj.line.order.number

    @admin.display(description=_("SKU code"), ordering="line__sku_code")
    def sku_code(self, obj):
        return obj.line.sku_code

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in OrderLinePromotion._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ChannelConfig)
class ChannelConfigAdmin(admin.ModelAdmin):
    list_display = ["channel", "return_window_days", "allow_split", "ship_from_store"]


@admin.register(ChannelWarehouse)
class ChannelWarehouseAdmin(admin.ModelAdmin):
    list_display = ["channel", "priority", "warehouse"]
    list_filter = ["channel"]


def _orders_of_stores_q(request, reference: str) -> Q:
    numbers = order_scope(store_ids=staff_store_ids(request.user)).values("number")
    return Q(**{f"{reference}__in": numbers})


# A payment knows its order only by number (payments cannot import orders), and an online
# payment has no store; so the order-aware scope of payments is added here.
admin.site.unregister(Payment)
admin.site.unregister(Refund)


@admin.register(Payment)
class PaymentAdmin(payments_admin.PaymentAdmin):
    actions = ["ask_provider"]

    def store_scope_q(self, request):
        return super().store_scope_q(request) | _orders_of_stores_q(request, "reference")

    @admin.action(description=_("Ask the provider whether selected online payments were paid"),
                  permissions=["ask_provider"])
    def ask_provider(self, request, queryset):
        counts = services.payments_query_pending(payment_ids=queryset.order_by("pk").values_list("pk", flat=True))
        level = messages.WARNING if counts["errors"] else messages.SUCCESS
        self.message_user(request, _("Asked the provider: %(captured)d captured, %(closed)d closed, "
                                     "%(unchanged)d unchanged, %(errors)d without an answer.") % counts, level)

    def has_ask_provider_permission(self, request):
        # The ledger stays read-only; asking the provider needs payments' change permission (finance).
        return request.user.has_perm("payments.change_payment")


@admin.register(Refund)
class RefundAdmin(payments_admin.RefundAdmin):
    def store_scope_q(self, request):
        return super().store_scope_q(request) | _orders_of_stores_q(request, "payment__reference")
