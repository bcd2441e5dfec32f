"""Head-office admin for stock.

The ledgers (levels, moves, reservations, receipt lines) are read-only here:
nothing can be added, edited or deleted through a ModelForm, and on_hand is
never a form field.  Stock changes only through the pages and actions below,
each of which parses its input and calls one ``inventory.services`` function;
a ``DomainError`` from the service comes back as a form error or an admin
message in the user's language and changes nothing.

Opening stock comes in as a file on the stock-level changelist ("Import opening
stock"): previewed as a dry run of ``inventory.importers.stock_opening_import``,
then applied in one transaction after the user confirms.

Non-HQ staff see only the warehouses they work with (``stores.selectors``);
actions run on the changelist's scoped queryset, so the same rule holds there.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy as _

from inventory import services
from inventory.importers import COLUMNS as OPENING_COLUMNS
from inventory.importers import OpeningStockResult, stock_opening_import
from inventory.forms import (
    CountCreateForm,
    QuarantineForm,
    ReceiptCreateForm,
    StockAdjustForm,
    TransferCreateForm,
    TransferReceiveForm,
)
from inventory.selectors import AVAILABLE
from inventory.models import (
    Bucket,
    Receipt,
    ReceiptLine,
    ReplenishmentProposal,
    ReplenishmentRule,
    Reservation,
    StockCount,
    StockCountLine,
    StockLevel,
    StockMove,
    Transfer,
    TransferLine,
)
from o2o.admin_tables import ImportPageAdmin, ImportPreview
from stores.admin import (
    ServiceAddAdmin,
    action_each,
    action_hidden_fields,
    change_url,
    form_page,
    service_call,
)
from stores.models import Warehouse
from stores.selectors import staff_sees_all, staff_warehouse_ids
from o2o.admin_ledgers import ReadOnlyAdmin


class WarehouseScoped:
    """Limit rows to the user's warehouses, through the fields named in ``warehouse_scope``."""

    warehouse_scope: tuple[str, ...] = ("warehouse",)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if staff_sees_all(request.user):
            return qs
        ids = staff_warehouse_ids(request.user)
        return qs.filter(reduce(or_, (Q(**{f"{name}__in": ids}) for name in self.warehouse_scope)))

    def user_warehouses(self, request):
        if staff_sees_all(request.user):
            return Warehouse.objects.all()
        return Warehouse.objects.filter(pk__in=staff_warehouse_ids(request.user))

    def add_form_kwargs(self, request) -> dict:
        return {"warehouses": self.user_warehouses(request)}


class DocumentAdmin(ServiceAddAdmin):
    """A stock document: created by a service, moved on by actions, never edited or deleted.

    The model's change permission gates the actions (checked without an object);
    the object page itself is always read-only.
    """

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


class ReadOnlyLinesInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- stock levels and moves ------------------------------------------------------------------


def opening_preview(result: OpeningStockResult) -> ImportPreview:
    done = not result.dry_run and result.ok
    counts = [(_("rows"), result.rows),
              (_("warehouses stocked") if done else _("warehouses to stock"), result.warehouses),
              (_("stock levels opened") if done else _("stock levels to open"), result.skus),
              (_("units received") if done else _("units to receive"), result.units)]
    errors = [(e.row, e.column, e.message) for e in result.errors]
    return ImportPreview(ok=result.ok, counts=counts, errors=errors)


@admin.register(StockLevel)
class StockLevelAdmin(WarehouseScoped, ImportPageAdmin, ReadOnlyAdmin):
    import_title = _("Import opening stock")
    import_columns = OPENING_COLUMNS
    import_help = _("warehouse: warehouse code; sku: SKU code or barcode; qty: units on the shelf. Each row "
                    "becomes an opening-stock move; a warehouse and SKU that already hold stock are refused. "
                    "Row numbers count data rows, the header being row 0.")
    list_display = ["warehouse", "sku", "sku_barcode", "bucket", "on_hand", "reserved", "available_qty",
                    "updated_at", "adjust_link"]
    list_filter = ["bucket", "warehouse__kind", "warehouse",
                   ("warehouse__store", admin.RelatedOnlyFieldListFilter), "sku__product__category"]
    search_fields = ["sku__code", "=sku__barcode", "sku__name", "warehouse__code", "warehouse__name"]
    list_select_related = ["warehouse", "sku"]
    date_hierarchy = "updated_at"
    show_full_result_count = False
    actions = ["move_to_damaged"]

    def has_adjust_permission(self, request):
        return request.user.has_perm("inventory.change_stocklevel")

    def has_import_permission(self, request):
        return self.has_adjust_permission(request)

    def import_run(self, request, rows, *, dry_run):
        scope = None if staff_sees_all(request.user) else staff_warehouse_ids(request.user)
        return opening_preview(stock_opening_import(rows=rows, dry_run=dry_run, actor=request.user,
                                                    warehouse_ids=scope))

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_available=AVAILABLE)

    @admin.display(description=_("barcode"), ordering="sku__barcode")
    def sku_barcode(self, obj):
        return obj.sku.barcode

    @admin.display(description=_("available"), ordering="_available")
    def available_qty(self, obj):
        return obj._available

    @admin.display(description="")
    def adjust_link(self, obj):
        url = reverse("admin:inventory_stocklevel_adjust") + f"?level={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, gettext("Adjust"))

    def get_urls(self):
        view = self.admin_site.admin_view(self.adjust_view)
        return [path("adjust/", view, name="inventory_stocklevel_adjust"), *super().get_urls()]

    def adjust_view(self, request):
        """Correct a book figure: one adjustment move through ``stock_adjust``."""
        if not self.has_adjust_permission(request):
            raise PermissionDenied
        initial = {}
        level_id = request.GET.get("level", "")
        level = self.get_queryset(request).filter(pk=level_id).first() if level_id.isdigit() else None
        if level is not None:
            initial = {"warehouse": level.warehouse_id, "sku": level.sku_id, "bucket": level.bucket}
        data = request.POST if request.method == "POST" else None
        form = StockAdjustForm(data, initial=initial, warehouses=self.user_warehouses(request))
        if data is not None and form.is_valid():
            move = service_call(form, lambda: form.submit(actor=request.user))
            if move is not None:
                text = gettext("Stock of %(sku)s at %(warehouse)s changed by %(qty)+d.") % {
                    "sku": form.cleaned_data["sku"].code, "warehouse": form.cleaned_data["warehouse"].code,
                    "qty": move.qty}
                self.message_user(request, text, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:inventory_stocklevel_changelist"))
        return form_page(self, request, title=gettext("Adjust stock"), form=form,
                         submit_label=gettext("Adjust"),
                         intro=gettext("Writes an adjustment move with your name and the reason."))

    @admin.action(description=_("Move units to damaged stock"), permissions=["adjust"])
    def move_to_damaged(self, request, queryset):
        levels = list(queryset.filter(bucket=Bucket.SELLABLE).select_related("warehouse", "sku"))
        if not levels:
            self.message_user(request, gettext("Select sellable stock levels."), messages.WARNING)
            return None
        form = QuarantineForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            action_each(self, request, levels, lambda level: form.submit_for(level, actor=request.user),
                        gettext("Moved to damaged stock at %(count)d level(s)."))
            return None
        return form_page(self, request, title=gettext("Move units to damaged stock"), form=form,
                         submit_label=gettext("Move"), objects=levels, hidden=action_hidden_fields(request))


@admin.register(StockMove)
class StockMoveAdmin(WarehouseScoped, ReadOnlyAdmin):
    list_display = ["created_at", "warehouse", "sku", "bucket", "qty", "reason", "reference", "actor", "note"]
    list_filter = ["reason", "bucket", "warehouse__kind", "warehouse"]
    search_fields = ["sku__code", "=sku__barcode", "sku__name", "reference", "note"]
    list_select_related = ["warehouse", "sku", "actor"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(Reservation)
class ReservationAdmin(WarehouseScoped, ReadOnlyAdmin):
    list_display = ["reference", "warehouse", "sku", "qty", "status", "expires_at", "created_at", "closed_at"]
    list_filter = ["status", "warehouse"]
    search_fields = ["reference", "sku__code", "=sku__barcode"]
    list_select_related = ["warehouse", "sku"]
    date_hierarchy = "created_at"
    show_full_result_count = False


# --- transfers -------------------------------------------------------------------------------


class TransferLineInline(ReadOnlyLinesInline):
    model = TransferLine
    fields = ["sku", "qty", "qty_received", "qty_damaged", "discrepancy"]
    readonly_fields = fields


@admin.register(Transfer)
class TransferAdmin(WarehouseScoped, DocumentAdmin):
    warehouse_scope = ("source", "destination")
    add_form_class = TransferCreateForm
    add_formset_title = _("transfer lines")
    list_display = ["number", "source", "destination", "status", "line_count", "reference", "created_at",
                    "shipped_at", "received_at", "receive_link"]
    list_filter = ["status", "source", "destination"]
    search_fields = ["number", "reference", "note", "lines__sku__code", "=lines__sku__barcode"]
    list_select_related = ["source", "destination"]
    date_hierarchy = "created_at"
    inlines = [TransferLineInline]
    actions = ["ship", "receive_all", "cancel"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_lines=Count("lines"))

    @admin.display(description=_("lines"), ordering="_lines")
    def line_count(self, obj):
        return obj._lines

    @admin.display(description="")
    def receive_link(self, obj):
        if obj.status != Transfer.Status.SHIPPED:
            return ""
        url = reverse("admin:inventory_transfer_receive", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Receive…"))

    def get_urls(self):
        view = self.admin_site.admin_view(self.receive_view)
        return [path("<int:pk>/receive/", view, name="inventory_transfer_receive"), *super().get_urls()]

    def receive_view(self, request, pk):
        """Receive line by line (sellable / damaged); the rest is recorded as lost in transit."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        transfer = get_object_or_404(self.get_queryset(request), pk=pk)
        data = request.POST if request.method == "POST" else None
        form = TransferReceiveForm(data, transfer=transfer)
        if data is not None and form.is_valid():
            if service_call(form, lambda: form.submit(actor=request.user)) is not None:
                text = gettext("Transfer %(number)s received.") % {"number": transfer.number}
                self.message_user(request, text, messages.SUCCESS)
                return HttpResponseRedirect(change_url(transfer))
        title = gettext("Receive transfer %(number)s") % {"number": transfer.number}
        return form_page(self, request, title=title, form=form, formset=form.formset,
                         formset_title=gettext("transfer lines"),
                         submit_label=gettext("Receive"),
                         intro=gettext("Units neither sellable nor damaged are recorded as lost in transit."))

    @admin.action(description=_("Ship (take the goods out of the source)"), permissions=["change"])
    def ship(self, request, queryset):
        action_each(self, request, queryset, lambda t: services.transfer_ship(transfer=t, actor=request.user),
                    gettext("%(count)d transfer(s) shipped."))

    @admin.action(description=_("Receive everything as sellable"), permissions=["change"])
    def receive_all(self, request, queryset):
        action_each(self, request, queryset,
                    lambda t: services.transfer_receive(transfer=t, actor=request.user),
                    gettext("%(count)d transfer(s) received."))

    @admin.action(description=_("Cancel draft transfers"), permissions=["change"])
    def cancel(self, request, queryset):
        action_each(self, request, queryset,
                    lambda t: services.transfer_cancel(transfer=t, actor=request.user),
                    gettext("%(count)d transfer(s) cancelled."))


# --- receipts --------------------------------------------------------------------------------


class ReceiptLineInline(ReadOnlyLinesInline):
    model = ReceiptLine
    fields = ["sku", "qty", "unit_cost"]
    readonly_fields = fields


@admin.register(Receipt)
class ReceiptAdmin(WarehouseScoped, DocumentAdmin):
    add_form_class = ReceiptCreateForm
    add_formset_title = _("receipt lines")
    list_display = ["number", "warehouse", "supplier", "supplier_reference", "line_count", "received_by",
                    "received_at"]
    list_filter = ["warehouse"]
    search_fields = ["number", "supplier", "supplier_reference", "lines__sku__code", "=lines__sku__barcode"]
    list_select_related = ["warehouse", "received_by"]
    date_hierarchy = "received_at"
    inlines = [ReceiptLineInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_lines=Count("lines"))

    @admin.display(description=_("lines"), ordering="_lines")
    def line_count(self, obj):
        return obj._lines


@admin.register(ReceiptLine)
class ReceiptLineAdmin(WarehouseScoped, ReadOnlyAdmin):
    warehouse_scope = ("receipt__warehouse",)
    list_display = ["receipt", "receipt_warehouse", "sku", "qty", "unit_cost"]
    list_filter = ["receipt__warehouse"]
    search_fields = ["receipt__number", "receipt__supplier", "sku__code", "=sku__barcode", "sku__name"]
    list_select_related = ["receipt__warehouse", "sku"]
    date_hierarchy = "receipt__received_at"

    @admin.display(description=_("warehouse"), ordering="receipt__warehouse__code")
    def receipt_warehouse(self, obj):
        return obj.receipt.warehouse


# --- counts ----------------------------------------------------------------------------------


class StockCountLineInline(ReadOnlyLinesInline):
    model = StockCountLine
    fields = ["sku", "counted", "expected", "difference"]
    readonly_fields = fields


@admin.register(StockCount)
class StockCountAdmin(WarehouseScoped, DocumentAdmin):
    add_form_class = CountCreateForm
    add_formset_title = _("count lines")
    list_display = ["number", "warehouse", "status", "line_count", "created_by", "created_at", "applied_by",
                    "applied_at"]
    list_filter = ["status", "warehouse"]
    search_fields = ["number", "lines__sku__code", "=lines__sku__barcode"]
    list_select_related = ["warehouse", "created_by", "applied_by"]
    date_hierarchy = "created_at"
    inlines = [StockCountLineInline]
    actions = ["apply_count"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_lines=Count("lines"))

    @admin.display(description=_("lines"), ordering="_lines")
    def line_count(self, obj):
        return obj._lines

    @admin.action(description=_("Apply count (post the differences)"), permissions=["change"])
    def apply_count(self, request, queryset):
        action_each(self, request, queryset, lambda c: services.count_apply(count=c, actor=request.user),
                    gettext("%(count)d count(s) applied."))


# --- replenishment ---------------------------------------------------------------------------


@admin.register(ReplenishmentRule)
class ReplenishmentRuleAdmin(WarehouseScoped, admin.ModelAdmin):
    list_display = ["warehouse", "sku", "min_qty", "max_qty"]
    list_filter = ["warehouse__kind", "warehouse"]
    search_fields = ["sku__code", "=sku__barcode", "sku__name", "warehouse__code", "warehouse__name"]
    autocomplete_fields = ["warehouse", "sku"]
    list_select_related = ["warehouse", "sku"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "warehouse":
            kwargs["queryset"] = self.user_warehouses(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(ReplenishmentProposal)
class ReplenishmentProposalAdmin(WarehouseScoped, ReadOnlyAdmin):
    list_display = ["business_date", "kind", "warehouse", "source", "sku", "available", "qty", "status",
                    "transfer_link"]
    list_filter = ["status", "kind", "warehouse", "business_date"]
    search_fields = ["sku__code", "=sku__barcode", "sku__name", "warehouse__code"]
    list_select_related = ["warehouse", "source", "sku", "transfer"]
    date_hierarchy = "business_date"
    actions = ["accept"]

    def has_accept_permission(self, request):
        return request.user.has_perm("inventory.change_replenishmentproposal")

    @admin.display(description=_("transfer"))
    def transfer_link(self, obj):
        if obj.transfer is None:
            return ""
        return format_html('<a href="{}">{}</a>', change_url(obj.transfer), obj.transfer.number)

    @admin.action(description=_("Accept (transfer proposals become draft transfers)"), permissions=["accept"])
    def accept(self, request, queryset):
        action_each(self, request, queryset,
                    lambda p: services.proposal_accept(proposal=p, actor=request.user),
                    gettext("%(count)d proposal(s) accepted."))
