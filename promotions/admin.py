"""HQ's promotions: create and schedule them, preview a basket, pause, and check that a basket costs
the same at the counter and online in every store's city."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy as _

from catalog.models import Sku
from o2o.channels import Channel
from promotions import selectors, services
from promotions.models import Promotion
from stores.models import City, Store


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "status", "priority", "exclusive_group", "bearer", "valid_from",
                    "valid_until", "used_count", "max_uses", "used_amount", "budget"]
    list_filter = ["status", "kind", "bearer", "exclusive_group"]
    search_fields = ["code", "name"]
    date_hierarchy = "valid_from"
    autocomplete_fields = ["regions", "cities", "stores", "categories", "products", "skus", "gift_sku"]
    readonly_fields = ["used_count", "used_amount", "paused_at", "paused_by", "created_by"]
    actions = ["pause", "resume"]
    fieldsets = [
        (None, {"fields": ["code", "name", "kind", "status", "priority", "exclusive_group", "bearer"]}),
        (_("Schedule"), {"fields": ["valid_from", "valid_until", "daily_from", "daily_until"]}),
        (_("Terms"), {"fields": ["steps", "threshold", "percent", "nth", "price", "buy_qty", "gift_sku", "gift_qty",
                                 "tier_benefits"]}),
        (_("Scope (empty means all)"), {"fields": ["channels", "regions", "cities", "stores", "categories",
                                                   "products", "skus", "member_tiers"]}),
        (_("Caps"), {"fields": ["max_uses", "budget", "used_count", "used_amount"]}),
        (_("History"), {"fields": ["created_by", "paused_at", "paused_by"]}),
    ]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Pause the selected promotions"), permissions=["change"])
    def pause(self, request, queryset):
        for promo in queryset:
            services.promotion_pause(promotion=promo, actor=request.user)
        self.message_user(request, gettext("Paused %(count)d promotion(s): the next basket no longer sees them.")
                          % {"count": queryset.count()}, messages.SUCCESS)

    @admin.action(description=_("Resume the selected promotions"), permissions=["change"])
    def resume(self, request, queryset):
        for promo in queryset:
            services.promotion_resume(promotion=promo, actor=request.user)
        self.message_user(request, gettext("Resumed %(count)d promotion(s).") % {"count": queryset.count()},
                          messages.SUCCESS)

    def changelist_view(self, request, extra_context=None):
        links = format_html('<a href="{}">{}</a> · <a href="{}">{}</a>',
                            reverse("admin:promotions_promotion_preview"), gettext("Preview a basket"),
                            reverse("admin:promotions_promotion_consistency"), gettext("Price consistency"))
        return super().changelist_view(request, {**(extra_context or {}), "subtitle": links})

    def get_urls(self):
        return [path("preview/", self.admin_site.admin_view(self.preview_view), name="promotions_promotion_preview"),
                path("consistency/", self.admin_site.admin_view(self.consistency_view),
                     name="promotions_promotion_consistency"),
                *super().get_urls()]

    def _page(self, request, template, **context):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return TemplateResponse(request, template, {**self.admin_site.each_context(request),
                                                    "opts": self.model._meta, **context})

    def preview_view(self, request):
        """Enter a basket, see what the promotions live at a moment take off it, line by line."""
        form = PreviewForm(request.GET if "basket" in request.GET else None)
        preview = None
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            preview = selectors.basket_preview(basket=data["basket"], channel=data["channel"],
                                               store_id=data["store"].pk if data["store"] else None,
                                               city_id=data["city"].pk if data["city"] else None,
                                               tier_code=data["tier"], at=data["at"] or timezone.now())
        return self._page(request, "admin/promotions/preview.html", title=gettext("Preview a basket"), form=form,
                          preview=preview)

    def consistency_view(self, request):
        """For sample baskets: the counter price in each store and the online price in its city."""
        rows = selectors.price_consistency()
        return self._page(request, "admin/promotions/consistency.html", title=gettext("Price consistency"),
                          rows=rows, flagged=sum(1 for r in rows if r.flagged))


class PreviewForm(forms.Form):
    basket = forms.CharField(label=_("basket"), widget=forms.Textarea(attrs={"rows": 5}),
                             help_text=_("One line per item: SKU code or barcode, then the quantity (TS-001 2)."))
    channel = forms.ChoiceField(label=_("channel"), choices=Channel.choices, initial=Channel.POS)
    store = forms.ModelChoiceField(label=_("store"), queryset=Store.objects.filter(is_active=True), required=False)
    city = forms.ModelChoiceField(label=_("ship to city"), queryset=City.objects.all(), required=False,
                                  help_text=_("Online orders shipped, when no store is chosen."))
    tier = forms.CharField(label=_("member tier code"), required=False)
    at = forms.DateTimeField(label=_("at"), required=False, help_text=_("Empty for now; a later time previews "
                                                                         "scheduled promotions."))

    def clean_basket(self):
        wanted = []
        for number, raw in enumerate(self.cleaned_data["basket"].splitlines(), start=1):
            parts = raw.split()
            if not parts:
                continue
            qty = parts[1] if len(parts) > 1 else "1"
            if len(parts) > 2 or not qty.isdigit() or not 0 < int(qty) <= 999:
                raise forms.ValidationError(_("Line %(n)d: write a SKU code and a quantity."), params={"n": number})
            wanted.append((parts[0], int(qty)))
        if not wanted:
            raise forms.ValidationError(_("Enter at least one item."))
        codes = [c for c, _q in wanted]
        found = {s.code: s for s in Sku.objects.filter(code__in=codes).select_related("product")}
        found.update({s.barcode: s for s in Sku.objects.filter(barcode__in=codes).select_related("product")})
        missing = [c for c in codes if c not in found]
        if missing:
            raise forms.ValidationError(_("Unknown SKU: %(codes)s"), params={"codes": ", ".join(missing)})
        merged: dict[int, tuple[Sku, int]] = {}
        for code, qty in wanted:
            sku = found[code]
            merged[sku.pk] = (sku, merged.get(sku.pk, (sku, 0))[1] + qty)
        return list(merged.values())
