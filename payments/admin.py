"""Read-only ledgers: payments, refunds and provider notifications change only through services.

Staff below head office see the payments taken at their stores (``StoreScoped``); the orders
admin widens that to the payments of their stores' orders, which this app cannot name.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from payments.models import Payment, PaymentNotification, Refund
from stores.admin import StoreScoped
from o2o.admin_ledgers import ReadOnlyAdmin


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("number", "amount", "method", "status", "provider_refund_id", "store", "created_at",
              "completed_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(StoreScoped, ReadOnlyAdmin):
    list_display = ("number", "reference", "tender", "amount", "refunded_amount", "status", "store",
                    "provider_txn_id", "created_at", "captured_at")
    list_filter = ("tender", "status", "store")
    search_fields = ("=number", "=reference", "=provider_txn_id")
    date_hierarchy = "created_at"
    list_select_related = ("store",)
    inlines = [RefundInline]


@admin.register(Refund)
class RefundAdmin(StoreScoped, ReadOnlyAdmin):
    store_scope = ("store", "payment__store")
    list_display = ("number", "payment_reference", "payment_tender", "amount", "method", "status", "store",
                    "provider_refund_id", "created_at", "completed_at")
    list_filter = ("status", "method", "payment__tender", "store")
    search_fields = ("=number", "=payment__reference", "=payment__number", "=payment__provider_txn_id",
                     "=provider_refund_id")
    date_hierarchy = "created_at"
    list_select_related = ("payment", "store")

    @admin.display(description=_("reference"), ordering="payment__reference")
    def payment_reference(self, obj):
        return obj.payment.reference

    @admin.display(description=_("tender"), ordering="payment__tender")
    def payment_tender(self, obj):
        return obj.payment.get_tender_display()


@admin.register(PaymentNotification)
class PaymentNotificationAdmin(StoreScoped, ReadOnlyAdmin):
    store_scope = ("payment__store",)
    list_display = ("received_at", "provider", "outcome", "provider_txn_id", "out_trade_no", "amount",
                    "status_reported", "payment_reference", "detail")
    list_filter = ("provider", "outcome")
    search_fields = ("=provider_txn_id", "=out_trade_no", "=payment__reference")
    date_hierarchy = "received_at"
    list_select_related = ("payment",)

    @admin.display(description=_("reference"), ordering="payment__reference")
    def payment_reference(self, obj):
        return obj.payment.reference if obj.payment_id else ""
