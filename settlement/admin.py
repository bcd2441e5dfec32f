"""Head-office admin for settlement: split rules, settled days and their statements down to the order
lines and the rule applied, CSV/XLSX exports, and the beat schedule.  Everything settled is
read-only here (and immutable in the database)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, gettext_lazy as _

from o2o.exports import export_response
from o2o.schedule import BEAT_SCHEDULE
from promotions.models import Bearer
from settlement import ledger, selectors
from settlement.adoption import first_open_day, split_draft_adopt
from settlement.simulation import simulation_csv, split_simulate
from settlement.models import (
    LedgerPosting,
    Party,
    Payout,
    RuleSetAdoption,
    ScheduledJob,
    SettlementDay,
    SettlementStatement,
    SplitLine,
    SplitRule,
    StatementTender,
    StoreSettlement,
    TenderLine,
    WalletTransfer,
)
from stores.admin import ServiceAddAdmin, action_each, action_hidden_fields, form_page, service_call


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTabular(ReadOnlyMixin, admin.TabularInline):
    extra = 0
    can_delete = False


def _store(store) -> str:
    return str(store) if store is not None else str(_("no store"))


class SimulationForm(forms.Form):
    draft = forms.ChoiceField(label=_("draft set"))
    start = forms.DateField(label=_("first business day"))
    end = forms.DateField(label=_("last business day"))

    def __init__(self, *args, drafts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["draft"].choices = [(d, d) for d in drafts]

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", _("The last day cannot be before the first."))
        elif data.get("start") and data.get("end") and (data["end"] - data["start"]).days > 92:
            self.add_error("end", _("Simulate at most a quarter at a time."))
        return data


class AdoptionForm(forms.Form):
    draft = forms.ChoiceField(label=_("draft set"))
    effective_from = forms.DateField(label=_("in force from (business day)"))

    def __init__(self, *args, drafts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["draft"].choices = [(d, d) for d in drafts]


@admin.register(SplitRule)
class SplitRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "draft", "priority", "channel", "fulfillment", "store", "guide_condition",
                    "product_line", "territory", "ecommerce_percent", "guide_store_percent", "trade_area_percent",
                    "credit_trade_area", "valid_from", "valid_until", "is_active", "first_used_on"]
    list_filter = ["is_active", "draft", "channel", "fulfillment", "product_line", "territory"]
    search_fields = ["name", "note"]
    fieldsets = [
        (None, {"fields": ["name", "draft", "priority", "is_active", "note"]}),
        (_("Applies to"), {"fields": ["channel", "fulfillment", "store", "guide_condition", "product_line",
                                      "territory", "valid_from", "valid_until"]}),
        (_("Shares of the net"), {"fields": ["ecommerce_percent", "guide_store_percent", "trade_area_percent",
                                             "credit_trade_area"],
                                  "description": _("The fulfilling store keeps the rest; without one (shipped "
                                                   "from a warehouse) the e-commerce department does.")}),
    ]
    TERMS = ["channel", "fulfillment", "store", "guide_condition", "product_line", "territory", "ecommerce_percent",
             "guide_store_percent", "trade_area_percent", "credit_trade_area"]

    actions = ["simulate", "adopt"]

    @admin.action(description=_("Adopt a draft rule set from a business day"), permissions=["change"])
    def adopt(self, request, queryset):
        """The draft's rules are put in force from the day given; the rules in force end the day before."""
        drafts = sorted(set(SplitRule.objects.exclude(draft="").values_list("draft", flat=True)))
        form = AdoptionForm(request.POST if "apply" in request.POST else None, drafts=drafts)
        if form.is_valid():
            adoption = service_call(form, lambda: split_draft_adopt(actor=request.user, **form.cleaned_data))
            if adoption is not None:
                self.message_user(request, gettext("Draft %(draft)s is in force from %(day)s: %(n)d rules adopted, "
                                                   "%(m)d ended.") % {
                    "draft": adoption.draft, "day": adoption.effective_from.isoformat(),
                    "n": len(adoption.rules_adopted), "m": len(adoption.rules_ended)})
                return None
        first = first_open_day()
        intro = gettext("The draft's rules become the rules in force from that day; the rules in force end the "
                        "day before. Settled days keep the rules they were settled with.")
        if first is not None:
            intro += " " + gettext("The first day not yet settled is %(day)s.") % {"day": first.isoformat()}
        return form_page(self, request, title=gettext("Adopt a draft rule set"), form=form,
                         submit_label=gettext("Adopt"), hidden=action_hidden_fields(request),
                         intro=intro)

    @admin.action(description=_("Simulate a draft rule set on past business days"), permissions=["view"])
    def simulate(self, request, queryset):
        """Nothing is posted: the settled lines are re-split with the draft and compared (CSV on request)."""
        drafts = sorted(set(SplitRule.objects.exclude(draft="").values_list("draft", flat=True)))
        form = SimulationForm(request.POST if "apply" in request.POST else None, drafts=drafts)
        if not form.is_valid():
            return form_page(self, request, title=gettext("Simulate a draft rule set"), form=form,
                             submit_label=gettext("Simulate"), hidden=action_hidden_fields(request),
                             intro=gettext("The draft's rules are applied to the settled lines of the period; "
                                           "nothing is posted."))
        sim = split_simulate(**form.cleaned_data)
        if request.POST.get("csv"):
            response = HttpResponse("\ufeff" + simulation_csv(sim), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = (f'attachment; filename="split-simulation-{sim.draft}-'
                                               f'{sim.start:%Y%m%d}-{sim.end:%Y%m%d}.csv"')
            return response
        hidden = action_hidden_fields(request) + [("apply", "1"), ("draft", sim.draft),
                                                  ("start", sim.start.isoformat()), ("end", sim.end.isoformat())]
        return TemplateResponse(request, "admin/settlement/split_simulation.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "sim": sim, "hidden": hidden,
            "title": gettext("Simulation of draft %(name)s") % {"name": sim.draft}})

    def get_readonly_fields(self, request, obj=None):
        # Split lines name the rule: its terms must keep explaining them.
        return self.TERMS if obj is not None and obj.first_used_on else []

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj and obj.first_used_on)


class StoreSettlementInline(ReadOnlyTabular):
    model = StoreSettlement
    fields = ["store_link", "cash_payments", "cash_refunds", "shifts_closed", "shifts_expected_cash",
              "shifts_counted_cash", "shifts_over_short", "wallet_recharged_principal", "wallet_spent_principal",
              "wallet_cross_in_principal", "wallet_cross_out_principal", "commission_released_amount", "late_lines"]
    readonly_fields = fields

    @admin.display(description=_("store"))
    def store_link(self, obj):
        url = reverse("admin:settlement_storesettlement_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _store(obj.store))


@admin.register(SettlementDay)
class SettlementDayAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["day", "status", "window_start", "window_end", "stores_settled", "sales_net", "returns_net",
                    "cancelled_net", "net", "payments_total", "refunds_total", "commission_released_amount",
                    "statements_link", "closed_at"]
    list_filter = ["status"]
    date_hierarchy = "day"
    inlines = [StoreSettlementInline]
    readonly_fields = ["day", "status", "window_start", "window_end", "cutoff_hour", "started_at", "closed_at",
                       "stores_settled", "sales_net", "returns_net", "cancelled_net", "net", "adjustments_net",
                       "payments_total", "refunds_total", "commission_released", "commission_released_amount",
                       "tenders", "party_shares", "promotion_costs", "wallet_transfers"]

    @admin.display(description=_("statements"))
    def statements_link(self, obj):
        url = reverse("admin:settlement_settlementstatement_changelist") + f"?business_day={obj.day.isoformat()}"
        return format_html('<a href="{}">{}</a>', url, _("statements"))

    @admin.display(description=_("money by tender"))
    def tenders(self, obj):
        rows = selectors.day_tenders(obj)
        return format_html('<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>', _("tender"),
                           _("payments taken"), _("refunds given"),
                           format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                                            ((r["tender"], r["payments"], r["refunds"]) for r in rows)))

    @admin.display(description=_("split by party"))
    def party_shares(self, obj):
        rows = selectors.day_party_shares(obj)
        return format_html(
            '<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>', _("party"),
            _("share as fulfilling store / e-commerce"), _("share as the guide's store"), _("total"),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
                (f"{r['store__code']} {r['store__name']}" if r["store_id"] else _("E-commerce department"),
                 r["fulfilment"], r["guide"], r["total"]) for r in rows)))

    @admin.display(description=_("promotion cost by party and bearer"))
    def promotion_costs(self, obj):
        bearers = dict(Bearer.choices)
        rows = selectors.day_promotion_costs(obj)
        return format_html(
            '<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>', _("party"), _("cost borne by"),
            _("promotion cost"),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", (
                (f"{r['store__code']} {r['store__name']}" if r["store_id"] else _("E-commerce department"),
                 bearers.get(r["bearer"], r["bearer"]), r["amount"]) for r in rows)))

    @admin.display(description=_("cross-store wallet spending"))
    def wallet_transfers(self, obj):
        rows = selectors.day_wallet_transfers(obj)
        return format_html(
            '<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>', _("spent at"),
            _("recharge sold by"), _("principal"), _("bonus"),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
                (r["store_settlement__store__code"] or _("no store"), r["sold_store__code"] or _("no store"),
                 r["principal"], r["bonus"]) for r in rows)))


class WalletTransferInline(ReadOnlyTabular):
    model = WalletTransfer
    fields = ["sold_store", "principal", "bonus"]
    readonly_fields = fields


@admin.register(StoreSettlement)
class StoreSettlementAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["day", "store_label", "cash_payments", "cash_refunds", "shifts_closed", "shifts_expected_cash",
                    "shifts_counted_cash", "shifts_over_short", "wallet_cross_in_principal",
                    "wallet_cross_out_principal", "commission_released_amount", "closed_at"]
    list_filter = ["store"]
    list_select_related = ["day", "store"]
    inlines = [WalletTransferInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in StoreSettlement._meta.fields] + ["cash_net", "cash_difference"]

    @admin.display(description=_("store"), ordering="store__code")
    def store_label(self, obj):
        return _store(obj.store)


class StatementTenderInline(ReadOnlyTabular):
    model = StatementTender
    fields = ["tender", "payments_count", "payments_amount", "refunds_count", "refunds_amount"]
    readonly_fields = fields


class ExportActions:
    """Statements (or their split lines) as CSV or XLSX."""

    actions = ["export_csv", "export_xlsx", "export_lines_csv", "export_lines_xlsx"]

    def _statements(self, request, queryset, fmt):
        return export_response(fmt, "settlement-statements", selectors.statement_headers(),
                               selectors.statement_rows(queryset))

    def _lines(self, request, queryset, fmt):
        lines = selectors.statement_lines(queryset.values_list("pk", flat=True))
        return export_response(fmt, "settlement-lines", [str(h) for h in selectors.LINE_COLUMNS],
                               selectors.line_rows(lines))

    @admin.action(description=_("Export selected statements (CSV)"))
    def export_csv(self, request, queryset):
        return self._statements(request, queryset, "csv")

    @admin.action(description=_("Export selected statements (XLSX)"))
    def export_xlsx(self, request, queryset):
        return self._statements(request, queryset, "xlsx")

    @admin.action(description=_("Export the split lines of selected statements (CSV)"))
    def export_lines_csv(self, request, queryset):
        return self._lines(request, queryset, "csv")

    @admin.action(description=_("Export the split lines of selected statements (XLSX)"))
    def export_lines_xlsx(self, request, queryset):
        return self._lines(request, queryset, "xlsx")


@admin.register(SettlementStatement)
class SettlementStatementAdmin(ExportActions, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["business_day", "store_label", "channel", "orders_count", "sales_net", "returns_net",
                    "cancelled_net", "net", "coupon_cost_ecommerce", "coupon_cost_store", "promotion_discount",
                    "split_ecommerce", "split_store", "split_guide_store", "split_trade_store", "payments_total",
                    "refunds_total", "lines_link"]
    list_filter = ["channel", "store", "business_day"]
    date_hierarchy = "business_day"
    list_select_related = ["store"]
    inlines = [StatementTenderInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in SettlementStatement._meta.fields] + ["lines_link", "tender_lines_link"]

    @admin.display(description=_("store"), ordering="store__code")
    def store_label(self, obj):
        return _store(obj.store)

    @admin.display(description=_("order lines"))
    def lines_link(self, obj):
        url = reverse("admin:settlement_splitline_changelist") + f"?statement__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("split lines"))

    @admin.display(description=_("payments and refunds"))
    def tender_lines_link(self, obj):
        url = reverse("admin:settlement_tenderline_changelist") + f"?statement__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("tender lines"))


@admin.register(RuleSetAdoption)
class RuleSetAdoptionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["draft", "effective_from", "adopted_by", "adopted_at", "rules_adopted", "rules_ended"]
    list_select_related = ["adopted_by"]

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("settlement.view_splitrule") or super().has_view_permission(request, obj)


@admin.register(SplitLine)
class SplitLineAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["kind", "order_number", "line_no", "event_at", "adjustment", "net", "rule_label",
                    "ecommerce_amount", "store", "store_amount", "guide_store", "guide_store_amount", "trade_store",
                    "trade_store_amount"]
    list_filter = ["kind", "adjustment", "statement__channel", "rule"]
    search_fields = ["=order__number"]
    list_select_related = ["order", "order_line", "rule", "store", "guide_store", "trade_store"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in SplitLine._meta.fields] + ["rule_terms"]

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, obj):
        return obj.order.number

    @admin.display(description=_("line"))
    def line_no(self, obj):
        return obj.order_line.line_no

    @admin.display(description=_("split rule"))
    def rule_label(self, obj):
        return obj.rule.name if obj.rule_id else _("no rule: all to the fulfilling store")

    @admin.display(description=_("rule applied"))
    def rule_terms(self, obj):
        if not obj.rule_id:
            return _("No rule matched: the fulfilling store keeps the net (the e-commerce department when "
                     "shipped from a warehouse).")
        rule = obj.rule
        return _("%(name)s: e-commerce %(ecom)s%%, guide's store %(guide)s%%, trade-area store %(trade)s%%, "
                 "the fulfilling store the rest") % {
            "name": rule.name, "ecom": rule.ecommerce_percent, "guide": rule.guide_store_percent,
            "trade": rule.trade_area_percent}


@admin.register(TenderLine)
class TenderLineAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["kind", "tender", "amount", "payment", "refund", "event_at", "adjustment"]
    list_filter = ["kind", "tender", "adjustment"]
    search_fields = ["=payment__number", "=payment__reference", "=refund__number"]
    list_select_related = ["payment", "refund"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in TenderLine._meta.fields]


def _schedule_text(schedule) -> str:
    if isinstance(schedule, (int, float)):
        return str(_("every %(seconds)s seconds") % {"seconds": f"{schedule:g}"})
    orig = {k: getattr(schedule, f"_orig_{k}", None) for k in ("minute", "hour", "day_of_month",
                                                              "month_of_year", "day_of_week")}
    if all(v is not None for v in orig.values()):
        return "cron: {minute} {hour} {day_of_month} {month_of_year} {day_of_week}".format(**orig)
    return str(schedule)


@admin.register(ScheduledJob)
class ScheduledJobAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The beat schedule from ``o2o/schedule.py``: there is no table, the page lists the code's entries."""

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [path("", self.admin_site.admin_view(self.changelist_view), name="%s_%s_changelist" % info)]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        jobs = [{"name": name, "task": entry["task"], "schedule": _schedule_text(entry["schedule"]),
                 "options": entry.get("options", {})} for name, entry in sorted(BEAT_SCHEDULE.items())]
        context = {**self.admin_site.each_context(request), "title": _("Scheduled jobs (Celery beat)"),
                   "opts": self.opts, "jobs": jobs, **(extra_context or {})}
        return TemplateResponse(request, "admin/settlement/beat_schedule.html", context)


# --- the party ledger ---------------------------------------------------------------------------


class PostingInline(ReadOnlyTabular):
    model = LedgerPosting
    fields = ["created_at", "day", "account", "amount", "reference", "journal"]
    readonly_fields = fields
    ordering = ["-id"]
    max_num = 0


@admin.register(Party)
class PartyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["__str__", "kind", "balance"]
    list_filter = ["kind"]
    search_fields = ["store__name", "store__code", "guide__display_name", "guide__employee_no"]
    list_select_related = ["store", "guide"]
    fields = ["kind", "store", "guide", "balance", "statements"]
    readonly_fields = fields
    inlines = [PostingInline]

    @admin.display(description=_("monthly statements"))
    def statements(self, obj):
        months = sorted({d.replace(day=1) for d in LedgerPosting.objects.filter(party=obj).dates("created_at", "month")}
                        | {d.replace(day=1) for d in obj.postings.filter(day__isnull=False)
                           .values_list("day__day", flat=True)}, reverse=True)[:12]
        rows = []
        for month in months:
            st = ledger.party_statement(party=obj, month=month)
            accounts = ", ".join(f"{LedgerPosting.Account(k).label} {v}" for k, v in sorted(st.by_account.items()))
            rows.append((f"{month:%Y-%m}", st.opening, accounts, st.closing))
        return format_html('<table class="o2o-statements"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}'
                           "</table>", _("month"), _("opening"), _("postings"), _("closing"),
                           format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows))


class PayoutRequestForm(forms.Form):
    party = forms.ModelChoiceField(label=_("party"), queryset=Party.objects.exclude(kind=Party.Kind.CLEARING))
    amount = forms.DecimalField(label=_("amount"), max_digits=14, decimal_places=2)
    note = forms.CharField(label=_("note"), max_length=200, required=False)

    def submit(self, *, actor):
        data = self.cleaned_data
        return ledger.payout_request(party=data["party"], amount=data["amount"], note=data["note"], actor=actor)


@admin.register(Payout)
class PayoutAdmin(ServiceAddAdmin):
    add_form_class = PayoutRequestForm
    list_display = ["number", "party", "amount", "status", "requested_by", "requested_at", "decided_by",
                    "decided_at"]
    list_filter = ["status", "party__kind"]
    search_fields = ["number", "note"]
    list_select_related = ["party__store", "party__guide", "requested_by", "decided_by"]
    readonly_fields = ["number", "party", "amount", "status", "note", "requested_by", "requested_at",
                       "decided_by", "decided_at", "journal"]
    actions = ["approve"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Approve and pay the selected payouts"), permissions=["view"])
    def approve(self, request, queryset):
        if not request.user.has_perm("settlement.add_payout"):
            raise PermissionDenied
        action_each(self, request, queryset.order_by("pk"),
                    lambda payout: ledger.payout_approve(payout=payout, actor=request.user),
                    gettext("%(count)d payouts approved."))
