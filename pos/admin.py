"""HQ's view of the sales tills took offline and the conflicts they brought back."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from pos.conflicts import offline_conflict_resolve
from pos.models import OfflineConflict, OfflineSale


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OfflineSale)
class OfflineSaleAdmin(ReadOnly):
    list_display = ("receipt_number", "store", "order", "sold_at", "sold_by", "synced_at", "synced_by", "paid_total",
                    "server_total")
    list_filter = ("store",)
    search_fields = ("receipt_number", "client_uuid", "order__number")
    list_select_related = ("store", "order", "sold_by", "synced_by")


@admin.register(OfflineConflict)
class OfflineConflictAdmin(admin.ModelAdmin):
    list_display = ("offline_sale", "store", "kind", "status", "sku", "qty", "qty_short", "paid_amount",
                    "server_amount", "created_at")
    list_filter = ("status", "kind", "store")
    search_fields = ("offline_sale__receipt_number", "sku__code")
    list_select_related = ("offline_sale", "store", "sku")
    readonly_fields = [f.name for f in OfflineConflict._meta.fields if f.name not in ("note",)]
    actions = ["resolve"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Mark as resolved (counted / price difference accepted)"))
    def resolve(self, request, queryset):
        open_ids = list(queryset.filter(status=OfflineConflict.Status.OPEN).values_list("pk", flat=True))
        for pk in open_ids:
            offline_conflict_resolve(conflict_id=pk, actor=request.user, hq=True, note="HQ")
        self.message_user(request, _("%(count)s conflicts resolved.") % {"count": len(open_ids)})
