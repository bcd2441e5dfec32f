"""Head-office admin for the catalog: categories, brands, products and their SKUs.

The SKU changelist has an "Import catalog" page: a CSV or XLSX file is previewed as a
dry run of ``catalog_import`` and applied (all or nothing) only after the user confirms.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, Value
from django.db.models.functions import Concat, Substr
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from catalog.models import Brand, Category, Product, Sku
from catalog.services import COLUMNS, ImportResult, catalog_import
from o2o.admin_tables import ImportPageAdmin, ImportPreview


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ["parent", "code", "name"]

    def clean_code(self):
        code = self.cleaned_data["code"].strip()
        if "/" in code:
            raise forms.ValidationError(_("A category code cannot contain “/”."))
        return code

    def clean_parent(self):
        parent = self.cleaned_data.get("parent")
        own = self.instance
        if parent and own.pk and (parent.pk == own.pk or parent.path.startswith(own.path + "/")):
            raise forms.ValidationError(
                _("A category cannot be placed under itself or one of its subcategories."))
        return parent


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    form = CategoryForm
    list_display = ["name", "code", "parent", "path", "product_count"]
    list_filter = [("parent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["code", "name", "path"]
    autocomplete_fields = ["parent"]
    readonly_fields = ["path"]
    list_select_related = ["parent"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_products=Count("products"))

    @admin.display(description=_("products"), ordering="_products")
    def product_count(self, obj):
        return obj._products

    def save_model(self, request, obj, form, change):
        # The materialised path follows the parent chain; when a category moves or is
        # renamed, its whole subtree is re-prefixed in the same (admin) transaction.
        old_path = None
        if change:
            old_path = Category.objects.filter(pk=obj.pk).values_list("path", flat=True).first()
        obj.path = f"{obj.parent.path}/{obj.code}" if obj.parent else obj.code
        super().save_model(request, obj, form, change)
        if old_path and old_path != obj.path:
            Category.objects.filter(path__startswith=old_path + "/").update(
                path=Concat(Value(obj.path), Substr("path", len(old_path) + 1)))


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


class SkuInline(admin.TabularInline):
    model = Sku
    extra = 0
    fields = ["code", "barcode", "name", "color", "size", "list_price", "cost_price", "is_active"]
    show_change_link = True


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "brand", "category", "sku_count", "is_active", "updated_at"]
    list_filter = ["is_active", "category", "brand"]
    search_fields = ["code", "name", "skus__code", "=skus__barcode"]
    autocomplete_fields = ["brand", "category"]
    list_select_related = ["brand", "category"]
    date_hierarchy = "created_at"
    inlines = [SkuInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_skus=Count("skus"))

    @admin.display(description=_("SKUs"), ordering="_skus")
    def sku_count(self, obj):
        return obj._skus


def catalog_preview(result: ImportResult) -> ImportPreview:
    done = not result.dry_run and result.ok
    counts = [(_("rows"), result.rows),
              (_("products created") if done else _("products to create"), result.products_created),
              (_("SKUs created") if done else _("SKUs to create"), result.skus_created),
              (_("SKUs updated") if done else _("SKUs to update"), result.skus_updated)]
    return ImportPreview(ok=result.ok, counts=counts,
                         errors=[(e.row, e.column, e.message) for e in result.errors])


@admin.register(Sku)
class SkuAdmin(ImportPageAdmin):
    import_title = _("Import catalog")
    import_columns = COLUMNS
    import_help = _("SKUs are matched by sku_code: known codes are updated, new ones created with their "
                    "product. Row numbers count data rows, the header being row 0.")
    list_display = ["code", "barcode", "name", "product", "color", "size", "list_price", "is_active",
                    "stock_link"]
    list_filter = ["is_active", "product__category", "product__brand"]
    search_fields = ["code", "^barcode", "name", "product__code", "product__name"]
    autocomplete_fields = ["product"]
    list_select_related = ["product"]
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["product", "code", "barcode", "name", "is_active"]}),
        (_("Variant"), {"fields": ["color", "size", "attributes"]}),
        (_("Prices (CNY)"), {"fields": ["list_price", "cost_price"]}),
    ]

    def import_run(self, request, rows, *, dry_run):
        return catalog_preview(catalog_import(rows=rows, dry_run=dry_run))

    @admin.display(description=_("stock"))
    def stock_link(self, obj):
        url = reverse("admin:inventory_stocklevel_changelist") + f"?sku__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("levels"))
