"""Head-office admin for reconciliation: upload a provider statement (the add page), see each run's
rows and mismatches, resolve mismatches with a note, export them as CSV or XLSX."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from o2o.errors import DomainError
from o2o.exports import export_response
from payments.reconciliation import selectors, services
from payments.reconciliation.models import Mismatch, ProviderFeeRate, ReconciliationRun, StatementRow

LAYOUT_CHOICES = [("auto", _("Recognise from the file"))] + list(ReconciliationRun.Layout.choices)


class StatementUploadForm(forms.Form):
    file = forms.FileField(label=_("statement file (CSV)"))
    provider = forms.ChoiceField(label=_("provider"), required=False,
                                 help_text=_("Needed for the generic layout; WeChat Pay and Alipay bills name "
                                             "their provider."))
    layout = forms.ChoiceField(label=_("layout"), choices=LAYOUT_CHOICES, initial="auto")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", "—")] + [(p, p) for p in services.providers()]


class ResolveForm(forms.Form):
    note = forms.CharField(label=_("what was done"), max_length=300, widget=forms.Textarea(attrs={"rows": 3}))


class ReadOnly:
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


MISMATCH_HEADERS = [_("run"), _("kind"), _("reference"), _("their amount"), _("our amount"), _("payment"),
                    _("refund"), _("detail"), _("resolved at"), _("resolved by"), _("resolution")]


def mismatch_rows(queryset):
    for m in queryset.select_related("payment", "refund", "resolved_by").order_by("run_id", "id"):
        yield [m.run_id, m.get_kind_display(), m.reference, m.their_amount, m.our_amount,
               m.payment.number if m.payment_id else "", m.refund.number if m.refund_id else "", m.detail,
               m.resolved_at, m.resolved_by.get_username() if m.resolved_by_id else "", m.resolution_note]


class MismatchInline(admin.TabularInline):
    model = Mismatch
    extra = 0
    can_delete = False
    fields = ["kind", "reference", "their_amount", "our_amount", "payment", "refund", "detail", "resolved_at",
              "resolved_by", "resolution_note"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["id", "provider", "file_name", "period_start", "period_end", "rows_total", "matched",
                    "missing_ours", "missing_theirs", "amount_mismatches", "duplicates", "fee_mismatches",
                    "open_mismatches", "their_payments", "their_refunds", "their_fees", "their_net",
                    "imported_by", "imported_at"]
    change_list_template = "admin/reconciliation/run_change_list.html"

    def get_urls(self):
        days = self.admin_site.admin_view(self.days_view)
        return [path("days/", days, name="payments_reconciliationrun_days")] + super().get_urls()

    def days_view(self, request):
        """Fees and net settlement per provider and day, from the imported statements."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        provider = request.GET.get("provider", "")
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   "title": _("Provider fees and net settlement by day"),
                   "days": selectors.settlement_days(provider=provider if provider in services.providers() else ""),
                   "providers": services.providers(), "provider": provider}
        return TemplateResponse(request, "admin/reconciliation/days.html", context)
    list_filter = ["provider", "layout"]
    search_fields = ["file_name", "sha256"]
    inlines = [MismatchInline]
    actions = ["export_mismatches_csv", "export_mismatches_xlsx"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in ReconciliationRun._meta.fields] + ["open_mismatches"]

    @admin.display(description=_("open mismatches"))
    def open_mismatches(self, obj):
        return obj.open_mismatches

    def add_view(self, request, form_url="", extra_context=None):
        """The add page uploads a statement: parse, match, show the run."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StatementUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = services.reconciliation_import(
                    data=upload.read(), file_name=upload.name, provider=form.cleaned_data["provider"],
                    layout=form.cleaned_data["layout"], actor=request.user)
            except DomainError as exc:
                form.add_error("file", str(exc.message))
            else:
                if result.created:
                    self.message_user(request, _("Statement imported: %(matched)s matched, %(open)s mismatches.")
                                      % {"matched": result.run.matched, "open": result.run.open_mismatches},
                                      messages.SUCCESS)
                else:
                    self.message_user(request, _("This file was already imported; nothing changed."),
                                      messages.WARNING)
                return HttpResponseRedirect(reverse("admin:payments_reconciliationrun_change",
                                                    args=[result.run.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.opts, "form": form,
                   "title": _("Import a provider statement"), "has_view_permission": True,
                   **(extra_context or {})}
        return TemplateResponse(request, "admin/reconciliation/upload.html", context)

    @admin.action(description=_("Export the mismatches of selected runs (CSV)"))
    def export_mismatches_csv(self, request, queryset):
        return export_response("csv", "reconciliation-mismatches", [str(h) for h in MISMATCH_HEADERS],
                               mismatch_rows(Mismatch.objects.filter(run__in=queryset)))

    @admin.action(description=_("Export the mismatches of selected runs (XLSX)"))
    def export_mismatches_xlsx(self, request, queryset):
        return export_response("xlsx", "reconciliation-mismatches", [str(h) for h in MISMATCH_HEADERS],
                               mismatch_rows(Mismatch.objects.filter(run__in=queryset)))


class ResolvedFilter(admin.SimpleListFilter):
    title = _("resolved")
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return [("no", _("Open")), ("yes", _("Resolved"))]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(Mismatch)
class MismatchAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["id", "run", "kind", "reference", "their_amount", "our_amount", "payment", "refund", "detail",
                    "resolved_at", "resolved_by", "resolution_note"]
    list_filter = ["kind", ResolvedFilter, "run__provider"]
    search_fields = ["=reference", "=payment__number", "=refund__number"]
    list_select_related = ["run", "payment", "refund", "resolved_by"]
    actions = ["resolve", "export_csv", "export_xlsx"]

    def has_add_permission(self, request):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Mismatch._meta.fields]

    @admin.action(description=_("Resolve selected mismatches with a note"))
    def resolve(self, request, queryset):
        form = ResolveForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            done = 0
            for mismatch in queryset.filter(resolved_at__isnull=True).order_by("pk"):
                try:
                    services.mismatch_resolve(mismatch=mismatch, actor=request.user, note=form.cleaned_data["note"])
                    done += 1
                except DomainError as exc:
                    self.message_user(request, f"{mismatch.pk}: {exc.message}", messages.ERROR)
            self.message_user(request, _("%(n)d mismatch(es) resolved.") % {"n": done}, messages.SUCCESS)
            return None
        context = {**self.admin_site.each_context(request), "opts": self.opts, "form": form, "queryset": queryset,
                   "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME, "title": _("Resolve mismatches")}
        return TemplateResponse(request, "admin/reconciliation/resolve.html", context)

    @admin.action(description=_("Export selected mismatches (CSV)"))
    def export_csv(self, request, queryset):
        return export_response("csv", "reconciliation-mismatches", [str(h) for h in MISMATCH_HEADERS],
                               mismatch_rows(queryset))

    @admin.action(description=_("Export selected mismatches (XLSX)"))
    def export_xlsx(self, request, queryset):
        return export_response("xlsx", "reconciliation-mismatches", [str(h) for h in MISMATCH_HEADERS],
                               mismatch_rows(queryset))


@admin.register(StatementRow)
class StatementRowAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["run", "row_no", "kind", "provider_ref", "our_ref", "amount", "fee", "expected_fee",
                    "occurred_at", "status", "result", "payment", "refund"]
    list_filter = ["result", "kind", "run__provider"]
    search_fields = ["=provider_ref", "=our_ref"]
    list_select_related = ["run", "payment", "refund"]

    def has_add_permission(self, request):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in StatementRow._meta.fields]


@admin.register(ProviderFeeRate)
class ProviderFeeRateAdmin(admin.ModelAdmin):
    """Finance keeps the agreed rates here; a new rate is a new row from its day (history stays)."""

    list_display = ["provider", "merchant_id", "rate", "percent", "valid_from", "note"]
    list_filter = ["provider"]
    search_fields = ["merchant_id", "note"]

    @admin.display(description=_("rate (%)"))
    def percent(self, obj):
        return f"{obj.rate * 100:.2f}%"
