"""Head-office admin for members, tiers, points and the wallet.

Balances and ledgers are read-only: points and wallet rows are never added,
edited or deleted through a ModelForm.  Members are added through
``member_register``; points are corrected by the "adjust points" action
(``points_adjust``, with a reason) and duplicates joined by the "merge
members" action (``member_merge``).  A ``DomainError`` from a service comes
back as a form error or an admin message and changes nothing.  Tiers, points
rules, points settings and recharge packages are plain configuration.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.template import engines
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, gettext_lazy as _

from members.exceptions import InvalidPhone
from members.models import (
    CommissionEntry,
    CommissionRule,
    CouponCampaign,
    CouponEvent,
    CouponRedemption,
    CouponTemplate,
    Guide,
    GuideBinding,
    GuideBindingRule,
    GuideCommissionBalance,
    GuideQrScan,
    IssuedCoupon,
    Member,
    MemberIdentity,
    MemberMerge,
    MemberSpend,
    PersonalDataAccess,
    PointsConfig,
    PointsConsumption,
    PointsEntry,
    PointsLot,
    PointsRule,
    RechargePackage,
    RegistrationChannel,
    SalesChannel,
    Tier,
    WalletEntry,
    WalletRecharge,
    WalletSpendAllocation,
)
from members.privacy import member_data_export, member_erase
from members.selectors import phone_normalize
from members.services.members import member_merge, member_register
from members.services.points import points_adjust
from members.services import coupons as coupon_services
from o2o.admin_tables import ExportActionsMixin
from stores.admin import ServiceAddAdmin, action_each, action_hidden_fields, form_page
from members.services import guides as guide_services
from members.views import public_base_url
from stores.models import City, Role, Store
from stores.selectors import staff_sees_all, staff_store_ids
from o2o.admin_ledgers import ReadOnlyAdmin, ReadOnlyInline


class MemberAddForm(forms.Form):
    phone = forms.CharField(label=_("mobile number"), max_length=30)
    name = forms.CharField(label=_("name"), max_length=100, required=False)
    store = forms.ModelChoiceField(label=_("registered at store"), queryset=Store.objects.filter(is_active=True),
                                   required=False)

    def submit(self, actor):
        data = self.cleaned_data
        store = data.get("store")
        return member_register(phone=data["phone"], name=data.get("name", ""), channel=RegistrationChannel.ADMIN,
                               store_id=store.pk if store else None)


class PointsAdjustForm(forms.Form):
    points = forms.IntegerField(label=_("points"),
                                help_text=_("Positive to add, negative to take away (never below zero)."))
    reason = forms.CharField(label=_("reason"), max_length=300)

    def clean_points(self):
        if self.cleaned_data["points"] == 0:
            raise forms.ValidationError(_("Enter a number of points other than zero."))
        return self.cleaned_data["points"]

    def submit_for(self, member: Member, *, actor):
        return points_adjust(member=member, points=self.cleaned_data["points"], reason=self.cleaned_data["reason"],
                             actor=actor)


class MemberMergeForm(forms.Form):
    target = forms.ModelChoiceField(label=_("keep this member"), queryset=Member.objects.none(),
                                    help_text=_("The other selected members are merged into it."))
    note = forms.CharField(label=_("note"), max_length=300, required=False)

    def __init__(self, *args, members=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = members if members is not None else Member.objects.none()


# --- members ---------------------------------------------------------------------------------------


class MemberIdentityInline(ReadOnlyInline):
    model = MemberIdentity
    fields = ["kind", "namespace", "value", "created_at"]
    readonly_fields = fields
    show_change_link = False


@admin.register(Member)
class MemberAdmin(ExportActionsMixin, ServiceAddAdmin):
    add_form_class = MemberAddForm
    list_display = ["phone", "name", "tier", "points_available", "points_frozen", "points_debt", "wallet_principal",
                    "wallet_bonus", "registration_channel", "registration_store", "created_at", "merged_into"]
    list_filter = ["tier", "registration_channel", ("merged_into", admin.EmptyFieldListFilter), "registration_store"]
    search_fields = ["phone", "name", "identities__value"]
    list_select_related = ["tier", "registration_store"]
    inlines = [MemberIdentityInline]
    readonly_fields = ["phone", "tier", "spend_12m", "tier_updated_at", "points_available", "points_frozen",
                       "points_debt", "wallet_principal", "wallet_bonus", "registration_channel",
                       "registration_store", "registration_partner", "merged_into", "merged_at", "erased_at",
                       "created_at", "updated_at"]
    fields = ["phone", "name", *readonly_fields[1:]]
    actions = ["adjust_points", "merge_members", "export_csv", "export_xlsx", "export_personal_data",
               "erase_personal_data"]
    show_full_result_count = False
    export_filename = "members"

    def export_headers(self):
        # Head office works with the full mobile number (campaigns, reconciliation).
        return [_("mobile number"), _("name"), _("tier"), _("points available"), _("points frozen"),
                _("points debt"), _("wallet principal"), _("wallet bonus"), _("12-month spend"),
                _("registration channel"), _("registered at store"), _("merged into"), _("created at")]

    def export_rows(self, queryset):
        rows = queryset.select_related("tier", "registration_store", "merged_into").order_by("pk")
        for m in rows.iterator(chunk_size=2000):
            yield [m.phone, m.name, m.tier.name if m.tier else "", m.points_available, m.points_frozen,
                   m.points_debt, m.wallet_principal, m.wallet_bonus, m.spend_12m,
                   m.get_registration_channel_display(),
                   m.registration_store.code if m.registration_store else "",
                   m.merged_into.phone if m.merged_into else "", m.created_at]

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        """Any spelling of a mobile number ("138 0013 8000", "+86…") finds the member."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            e164 = phone_normalize(search_term)
        except InvalidPhone:
            return results, may_have_duplicates
        return results | queryset.filter(Q(phone=e164)), may_have_duplicates

    @admin.action(description=_("Adjust points (with a reason)"), permissions=["change"])
    def adjust_points(self, request, queryset):
        members = list(queryset.filter(merged_into__isnull=True))
        if not members:
            self.message_user(request, gettext("Select members that have not been merged."), messages.WARNING)
            return None
        form = PointsAdjustForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            action_each(self, request, members, lambda member: form.submit_for(member, actor=request.user),
                        gettext("Adjusted the points of %(count)d member(s)."))
            return None
        return form_page(self, request, title=gettext("Adjust points"), form=form, submit_label=gettext("Adjust"),
                         objects=members, hidden=action_hidden_fields(request))

    @admin.action(description=_("Merge duplicate members"), permissions=["change"])
    def merge_members(self, request, queryset):
        members = queryset.filter(merged_into__isnull=True)
        if members.count() < 2:
            self.message_user(request, gettext("Select at least two members that have not been merged."),
                              messages.WARNING)
            return None
        form = MemberMergeForm(request.POST if "apply" in request.POST else None, members=members)
        if form.is_bound and form.is_valid():
            target = form.cleaned_data["target"]
            sources = [m for m in members if m.pk != target.pk]
            action_each(self, request, sources,
                        lambda source: member_merge(source=source, target=target, actor=request.user,
                                                    note=form.cleaned_data["note"]),
                        gettext("Merged %(count)d member(s).") + f" → {target}")
            return None
        return form_page(self, request, title=gettext("Merge members"), form=form, submit_label=gettext("Merge"),
                         objects=members, hidden=action_hidden_fields(request))


    @admin.action(description=_("Export personal data (PIPL access request)"), permissions=["view"])
    def export_personal_data(self, request, queryset):
        data = [member_data_export(member=m, actor=request.user) for m in queryset.order_by("pk")[:100]]
        response = HttpResponse(json.dumps(data, ensure_ascii=False, indent=2),
                                content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="member-personal-data.json"'
        return response

    @admin.action(description=_("Erase personal data (PIPL erasure request)"), permissions=["change"])
    def erase_personal_data(self, request, queryset):
        members = list(queryset.filter(merged_into__isnull=True, erased_at__isnull=True))
        if not members:
            self.message_user(request, gettext("Select members whose data is not erased yet."), messages.WARNING)
            return None
        form = ErasureConfirmForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            action_each(self, request, members, lambda member: member_erase(member=member, actor=request.user),
                        gettext("Erased the personal data of %(count)d member(s); their ledgers are kept."))
            return None
        return form_page(self, request, title=gettext("Erase personal data"), form=form,
                         submit_label=gettext("Erase"), objects=members, hidden=action_hidden_fields(request),
                         intro=gettext("Phone, name and outside identities are replaced by a pseudonym and "
                                       "removed from their orders; points, wallet, coupons and orders stay. "
                                       "This cannot be undone."))


class ErasureConfirmForm(forms.Form):
    confirm = forms.BooleanField(label=_("I have checked the member's request and want to erase their data"))


@admin.register(PersonalDataAccess)
class PersonalDataAccessAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "member", "reader", "fields", "path"]
    list_filter = ["fields"]
    search_fields = ["reader", "path", "member__id"]
    list_select_related = ["member"]
    date_hierarchy = "created_at"


@admin.register(MemberIdentity)
class MemberIdentityAdmin(ReadOnlyAdmin):
    list_display = ["member", "kind", "namespace", "value", "created_at"]
    list_filter = ["kind", "namespace"]
    search_fields = ["value", "member__phone"]
    list_select_related = ["member"]


@admin.register(MemberMerge)
class MemberMergeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "source", "target", "actor", "note"]
    search_fields = ["source__phone", "target__phone", "note"]
    list_select_related = ["source", "target", "actor"]
    readonly_fields = ["source", "target", "actor", "note", "moved", "created_at"]
    date_hierarchy = "created_at"


@admin.register(MemberSpend)
class MemberSpendAdmin(ReadOnlyAdmin):
    list_display = ["at", "member", "order_number", "channel", "amount", "reference"]
    list_filter = ["channel"]
    search_fields = ["order_number", "member__phone", "reference"]
    list_select_related = ["member"]
    date_hierarchy = "at"
    show_full_result_count = False


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "min_spend", "points_multiplier", "is_active"]
    list_editable = ["min_spend", "points_multiplier", "is_active"]


# --- points ----------------------------------------------------------------------------------------


@admin.register(PointsConfig)
class PointsConfigAdmin(admin.ModelAdmin):
    list_display = ["__str__", "points_per_yuan_redeemed", "default_points_per_yuan", "expiry_policy",
                    "expiry_months", "redeem_max_share"]

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not PointsConfig.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        obj.pk = 1  # one row: the settings
        super().save_model(request, obj, form, change)


@admin.register(PointsRule)
class PointsRuleAdmin(admin.ModelAdmin):
    list_display = ["channel", "category", "points_per_yuan", "is_active", "note"]
    list_filter = ["channel", "is_active"]
    search_fields = ["category__name", "category__code", "note"]
    autocomplete_fields = ["category"]
    list_select_related = ["category"]


class ConsumptionInline(ReadOnlyInline):
    model = PointsConsumption
    fk_name = "entry"
    fields = ["lot", "points"]
    readonly_fields = fields


@admin.register(PointsEntry)
class PointsEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "member", "kind", "available_delta", "frozen_delta", "debt_delta", "written_off",
                    "order_number", "reference", "reason", "actor"]
    list_filter = ["kind"]
    search_fields = ["member__phone", "order_number", "reference", "reason"]
    list_select_related = ["member", "actor"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [ConsumptionInline]


@admin.register(PointsLot)
class PointsLotAdmin(ReadOnlyAdmin):
    list_display = ["id", "member", "kind", "status", "order_number", "amount", "remaining", "reversed_points",
                    "frozen_until", "expires_at"]
    list_filter = ["kind", "status"]
    search_fields = ["member__phone", "order_number"]
    list_select_related = ["member"]
    date_hierarchy = "created_at"
    show_full_result_count = False


# --- wallet ----------------------------------------------------------------------------------------


@admin.register(RechargePackage)
class RechargePackageAdmin(admin.ModelAdmin):
    list_display = ["name", "pay_amount", "bonus_amount", "is_active", "sort_order"]
    list_editable = ["is_active", "sort_order"]


class AllocationInline(ReadOnlyInline):
    model = WalletSpendAllocation
    fk_name = "entry"
    fields = ["recharge", "sold_store", "spend_store", "principal", "bonus"]
    readonly_fields = fields


@admin.register(WalletEntry)
class WalletEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "member", "kind", "principal_delta", "bonus_delta", "reference", "store", "actor"]
    list_filter = ["kind", "store"]
    search_fields = ["member__phone", "reference"]
    list_select_related = ["member", "store", "actor"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [AllocationInline]


@admin.register(WalletRecharge)
class WalletRechargeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "member", "reference", "package", "principal", "bonus", "principal_remaining",
                    "bonus_remaining", "store", "refunded_at"]
    list_filter = ["store", "package"]
    search_fields = ["member__phone", "reference"]
    list_select_related = ["member", "package", "store"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(WalletSpendAllocation)
class WalletSpendAllocationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "entry", "recharge", "sold_store", "spend_store", "principal", "bonus"]
    list_filter = ["sold_store", "spend_store"]
    search_fields = ["entry__reference", "recharge__reference"]
    list_select_related = ["entry", "recharge", "sold_store", "spend_store"]
    date_hierarchy = "created_at"
    show_full_result_count = False


# --- coupons -------------------------------------------------------------------------------------


# What a coupon's terms are: frozen once coupons of the template are out, since an
# issued coupon is evaluated against its template.
COUPON_TERMS = ["kind", "amount", "percent", "max_discount", "threshold", "channels", "stores", "categories", "skus",
                "validity", "valid_from", "valid_until", "valid_days", "bearer", "ecommerce_share_percent"]


class CouponTemplateForm(forms.ModelForm):
    # The order channels as boxes to tick, not codes to type.
    channels = forms.TypedMultipleChoiceField(
        label=_("channels"), choices=SalesChannel.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every channel."))

    class Meta:
        model = CouponTemplate
        fields = "__all__"


@admin.register(CouponTemplate)
class CouponTemplateAdmin(admin.ModelAdmin):
    form = CouponTemplateForm
    list_display = ["code", "name", "kind", "amount", "percent", "threshold", "bearer", "validity", "issued_count",
                    "total_limit", "per_member_limit", "is_active"]
    list_filter = ["kind", "bearer", "validity", "is_active", "claimable_online", "guide_can_issue", "shareable"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["stores", "categories", "skus"]
    fieldsets = [
        (None, {"fields": ["code", "name", "description", "is_active"]}),
        (_("Terms"), {"fields": ["kind", "amount", "percent", "max_discount", "threshold",
                                 "stacks_with_promotions"]}),
        (_("Scope (empty means all)"), {"fields": ["channels", "stores", "categories", "skus"]}),
        (_("Validity"), {"fields": ["validity", "valid_from", "valid_until", "valid_days"]}),
        (_("Limits and issue channels"), {"fields": ["total_limit", "per_member_limit", "issued_count",
                                                     "claimable_online", "guide_can_issue", "shareable"]}),
        (_("Who bears the cost"), {"fields": ["bearer", "ecommerce_share_percent"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.issued_count:
            return ["issued_count", *COUPON_TERMS]
        return ["issued_count"]

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or not obj.issued_count)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class CampaignAddForm(forms.Form):
    template = forms.ModelChoiceField(label=_("coupon template"), queryset=CouponTemplate.objects.filter(
        is_active=True))
    name = forms.CharField(label=_("name"), max_length=100)
    # The segment is picked, not typed: every choice left empty means every member.
    tier = forms.ModelChoiceField(label=_("members of the tier"), queryset=Tier.objects.all(), required=False,
                                  empty_label=_("any tier"))
    city = forms.ModelChoiceField(label=_("registered in the city"), queryset=City.objects.order_by("code"),
                                  required=False, empty_label=_("any city"))
    store = forms.ModelChoiceField(label=_("registered at the store"), queryset=Store.objects.order_by("code"),
                                   required=False, empty_label=_("any store"))
    channel = forms.ChoiceField(label=_("registered through"), required=False,
                                choices=[("", _("any channel")), *RegistrationChannel.choices])
    segment = forms.JSONField(label=_("further member filters (advanced)"), required=False, initial=dict,
                              help_text=_('Optional, for filters not offered above, e.g. {"spend_12m__gte": 1000}.'))
    batch_size = forms.IntegerField(label=_("batch size"), min_value=1, max_value=10000, initial=500)

    PICKED = {"tier": "tier_id", "city": "registration_store__city_id", "store": "registration_store_id",
              "channel": "registration_channel"}

    def segment_of(self) -> dict:
        data = self.cleaned_data
        segment = dict(data.get("segment") or {})
        for field, lookup in self.PICKED.items():
            value = data.get(field)
            if value:
                segment[lookup] = getattr(value, "pk", value)
        return segment

    def submit(self, actor):
        data = self.cleaned_data
        return coupon_services.coupon_campaign_create(template=data["template"], name=data["name"],
                                                      segment=self.segment_of(),
                                                      batch_size=data["batch_size"], actor=actor)


@admin.register(CouponCampaign)
class CouponCampaignAdmin(ServiceAddAdmin):
    """Campaigns are drafted here and issued by the "issue now" action (a Celery task in
    batches); the list shows how far each has got."""

    add_form_class = CampaignAddForm
    list_display = ["name", "template", "status", "progress", "issued", "skipped", "started_at", "heartbeat_at",
                    "finished_at", "note"]
    list_filter = ["status"]
    search_fields = ["name", "template__code", "template__name"]
    list_select_related = ["template"]
    readonly_fields = ["name", "template", "segment", "status", "batch_size", "progress", "total", "processed",
                       "issued", "skipped", "cursor", "note", "created_by", "created_at", "started_at",
                       "heartbeat_at", "finished_at"]
    fields = readonly_fields
    actions = ["issue_now", "cancel"]

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("progress"))
    def progress(self, obj):
        total = obj.total if obj.total is not None else "?"
        return format_html('<progress max="100" value="{}"></progress> {}% ({} / {})', obj.progress_percent,
                           obj.progress_percent, obj.processed, total)

    @admin.action(description=_("Issue now (in the background, resumable)"), permissions=["add"])
    def issue_now(self, request, queryset):
        action_each(self, request, queryset,
                    lambda c: coupon_services.coupon_campaign_start(campaign_id=c.pk, actor=request.user),
                    gettext("Queued %(count)d campaign(s) for issue; reload to follow their progress."))

    @admin.action(description=_("Cancel (coupons already issued stay)"), permissions=["add"])
    def cancel(self, request, queryset):
        action_each(self, request, queryset,
                    lambda c: coupon_services.coupon_campaign_cancel(campaign_id=c.pk, actor=request.user),
                    gettext("Cancelled %(count)d campaign(s)."))


class CouponEventInline(ReadOnlyInline):
    model = CouponEvent
    fields = ["at", "kind", "channel", "store", "actor", "partner", "order_number", "from_member", "to_member",
              "note"]
    readonly_fields = fields
    show_change_link = False


class CouponRedemptionInline(ReadOnlyInline):
    model = CouponRedemption
    fields = ["redeemed_at", "order_number", "channel", "store", "eligible_amount", "discount", "ecommerce_amount",
              "store_amount", "actor", "partner", "restored_at"]
    readonly_fields = fields
    show_change_link = False


@admin.register(IssuedCoupon)
class IssuedCouponAdmin(ReadOnlyAdmin):
    list_display = ["display_code", "template", "member", "status", "source", "valid_until", "issued_at"]
    list_filter = ["status", "source", "template"]
    search_fields = ["=code", "member__phone", "template__code", "campaign__name"]
    list_select_related = ["template", "member"]
    readonly_fields = ["display_code", "qr_code", "template", "member", "issued_to", "status", "source", "campaign",
                       "guide", "valid_from", "valid_until", "issued_at", "updated_at"]
    fields = readonly_fields
    inlines = [CouponRedemptionInline, CouponEventInline]
    date_hierarchy = "issued_at"
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        """A scanned payload or a code typed with dashes or in lower case finds the coupon."""
        code = coupon_services.coupon_code_normalize(search_term)
        return super().get_search_results(request, queryset, code if len(code) == 12 else search_term)

    @admin.display(description=_("code"))
    def display_code(self, obj):
        return obj.display_code

    @admin.display(description=_("QR code"))
    def qr_code(self, obj):
        return mark_safe(coupon_services.coupon_qr_svg(obj))  # generated by segno from the code only


@admin.register(CouponRedemption)
class CouponRedemptionAdmin(ReadOnlyAdmin):
    list_display = ["redeemed_at", "coupon", "order_number", "channel", "store", "discount", "ecommerce_amount",
                    "store_amount", "actor", "partner", "restored_at"]
    list_filter = ["channel", "store", ("restored_at", admin.EmptyFieldListFilter)]
    search_fields = ["order_number", "coupon__code", "member__phone"]
    list_select_related = ["coupon", "store", "actor"]
    date_hierarchy = "redeemed_at"
    show_full_result_count = False


# --- guides and commission -----------------------------------------------------------------------


@admin.register(GuideBindingRule)
class GuideBindingRuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "policy", "valid_days", "on_guide_leave", "updated_at"]
    autocomplete_fields = ["region"]


@admin.register(GuideBinding)
class GuideBindingAdmin(ReadOnlyAdmin):
    list_display = ["member", "guide", "store", "source", "valid_from", "valid_to", "ended_reason"]
    list_filter = ["source", "ended_reason", "store"]
    search_fields = ["member__phone", "guide__guide_code", "guide__display_name", "guide__employee_no"]
    list_select_related = ["member", "guide", "store"]
    date_hierarchy = "valid_from"
    show_full_result_count = False


@admin.register(CommissionRule)
class CommissionRuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "store", "category", "sku", "rate_percent", "is_active", "updated_at"]
    list_editable = ["rate_percent", "is_active"]
    list_filter = ["is_active", "store"]
    search_fields = ["sku__code", "sku__name", "category__code", "category__name", "store__code"]
    autocomplete_fields = ["store", "category", "sku"]
    list_select_related = ["store", "category", "sku"]


@admin.register(CommissionEntry)
class CommissionEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "guide", "kind", "order_number", "line_no", "sku", "base_amount", "rate_percent",
                    "frozen_delta", "released_delta", "frozen_until", "reference"]
    list_filter = ["kind", "channel", "store"]
    search_fields = ["order_number", "reference", "guide__guide_code", "guide__display_name"]
    list_select_related = ["guide", "sku"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(GuideCommissionBalance)
class GuideCommissionBalanceAdmin(ReadOnlyAdmin):
    list_display = ["guide", "frozen", "released", "updated_at"]
    search_fields = ["guide__guide_code", "guide__display_name", "guide__employee_no"]
    list_select_related = ["guide"]


GUIDE_QR_PAGE = engines["django"].from_string("""{% extends "admin/base_site.html" %}{% load i18n %}
{% block extrastyle %}{{ block.super }}<style>
.guide-qr { display: inline-block; width: 15rem; margin: 0 1rem 1.5rem 0; padding: 1rem; border: 1px solid #ccc;
            text-align: center; vertical-align: top; break-inside: avoid; }
.guide-qr svg { width: 12rem; height: 12rem; }
.guide-qr .url { font-size: .7rem; word-break: break-all; color: #555; }
@media print { #header, .breadcrumbs, #footer, .noprint, nav { display: none !important; } }
</style>{% endblock %}
{% block content %}<div id="content-main">
<p class="noprint"><button type="button" onclick="window.print()">{% translate "Print" %}</button></p>
{% for card in cards %}<div class="guide-qr">
<div>{{ card.svg }}</div>
<strong>{{ card.guide.display_name }}</strong><br>{{ card.store.name|default:"" }}<br>
<span>{% translate "Assistant code" %}: {{ card.guide.guide_code }}</span>
<div class="url">{{ card.url }}</div>
</div>{% endfor %}
</div>{% endblock %}""")


@admin.register(Guide)
class GuideQrAdmin(ReadOnlyAdmin):
    """Each guide's QR code (opens ``/g/<scene>``), to print and hand out; scans are counted."""

    list_display = ["display_name", "guide_code", "employee_no", "is_active", "scans", "qr_link"]
    list_filter = ["is_active", "stores"]
    search_fields = ["display_name", "guide_code", "employee_no"]
    actions = ["print_qr_codes"]

    def get_queryset(self, request):
        qs = super().get_queryset(request).filter(role=Role.GUIDE, guide_code__isnull=False)
        if staff_sees_all(request.user):
            return qs
        return qs.filter(memberships__store__in=staff_store_ids(request.user)).distinct()

    @admin.display(description=_("scans"))
    def scans(self, obj):
        return GuideQrScan.objects.filter(guide_id=obj.pk).count()

    @admin.display(description=_("QR code"))
    def qr_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:members_guide_qr", args=[obj.pk]), gettext("Print"))

    def get_urls(self):
        return [path("<int:pk>/qr/", self.admin_site.admin_view(self.qr_view), name="members_guide_qr"),
                *super().get_urls()]

    def qr_view(self, request, pk: int):
        guide = self.get_queryset(request).filter(pk=pk).first()
        if guide is None or not self.has_view_permission(request, guide):
            raise Http404
        return self._qr_page(request, [guide])

    @admin.action(description=_("Print the QR codes of the selected guides"))
    def print_qr_codes(self, request, queryset):
        return self._qr_page(request, list(queryset.order_by("display_name", "pk")))

    def _qr_page(self, request, guides_shown):
        base = public_base_url(request)
        cards = [{"guide": g, "store": guide_services.guide_home_store(g),
                  "url": guide_services.guide_qr_url(g, base_url=base),
                  "svg": mark_safe(guide_services.guide_qr_svg(g, base_url=base))}  # segno's own SVG
                 for g in guides_shown]
        context = {**self.admin_site.each_context(request), "title": gettext("Guide QR codes"), "cards": cards,
                   "opts": self.model._meta}
        return HttpResponse(GUIDE_QR_PAGE.render(context, request))
