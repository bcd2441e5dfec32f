"""Admin for the partner API keys (the raw key is shown once, on creation or rotation) and idempotency
records."""

from __future__ import annotations


from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop
from django.utils.translation import ngettext

from o2o.apiauth import (SCOPES, KeyNotRotatable, key_generate, key_hash, partner_key_revoke, partner_key_rotate,
                         scopes_clean)
from o2o.channels import Channel
from o2o.login_throttle import ThrottledAdminAuthenticationForm
from o2o.models import IdempotencyRecord, PartnerKey

# The product's name on every admin page (not Django's), and a sign-in that locks out guessers.
admin.site.site_header = _("o2o backoffice")
admin.site.site_title = _("o2o backoffice")
admin.site.index_title = _("Backoffice home")
admin.site.login_form = ThrottledAdminAuthenticationForm

# Django 5.2's admin has these (screen-reader headers of the index's model tables) but its Chinese
# catalog does not translate them; marked here so that `make messages` keeps our translations.
DJANGO_ADMIN_MESSAGES = (gettext_noop("Model name"), gettext_noop("Add link"),
                         gettext_noop("Change or view list link"))

SCOPE_LABELS = {
    "catalog:read": _("read the catalog"),
    "stock:read": _("read stock"),
    "orders:read": _("read orders"),
    "orders:write": _("place and change orders"),
    "members:read": _("read members"),
    "members:write": _("register and change members"),
    "members:pii": _("read members' phone and name unmasked (logged)"),
    "payments:notify": _("send payment notifications"),
}


class PartnerKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=[(s, format_lazy("{} · {}", s, SCOPE_LABELS[s])) for s in SCOPES],
                                       widget=forms.CheckboxSelectMultiple,
                                       required=False, label=_("scopes"))

    class Meta:
        model = PartnerKey
        fields = ["name", "channel", "partner", "scopes", "stores", "rate_limit_per_minute", "expires_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"] = forms.ChoiceField(
            choices=[(c.value, c.label) for c in Channel if c != Channel.POS], label=_("channel"))

    def clean_scopes(self):
        return scopes_clean(self.cleaned_data["scopes"])


@admin.register(PartnerKey)
class PartnerKeyAdmin(admin.ModelAdmin):
    form = PartnerKeyForm
    list_display = ["name", "prefix", "channel", "partner", "scope_list", "created_at", "last_used_at",
                    "expires_at", "live", "revoked_at", "replaced_by"]
    list_filter = ["channel", ("revoked_at", admin.EmptyFieldListFilter),
                   ("expires_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "partner"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at", "replaced_by"]
    filter_horizontal = ["stores"]
    actions = ["revoke", "rotate"]

    @admin.display(description=_("live"), boolean=True)
    def live(self, obj):
        return obj.is_active

    @admin.display(description=_("scopes"))
    def scope_list(self, obj):
        return ", ".join(obj.scopes or [])

    def save_model(self, request, obj, form, change):
        if not change:
            obj.prefix, raw = key_generate()
            obj.key_hash = key_hash(raw)
            super().save_model(request, obj, form, change)
            messages.warning(request, _("The new API key is shown only now; copy it: %(key)s") % {"key": raw})
            return
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request, queryset):
        for key in queryset:
            partner_key_revoke(key=key)
        self.message_user(request, ngettext("%(n)d key revoked.", "%(n)d keys revoked.", queryset.count())
                          % {"n": queryset.count()})

    @admin.action(description=_("Rotate the selected keys (the old ones keep working for 7 days)"))
    def rotate(self, request, queryset):
        for key in queryset.order_by("pk"):
            try:
                new, raw = partner_key_rotate(key=key)
            except KeyNotRotatable:
                self.message_user(request, _("%(key)s was not rotated: it is revoked, expired or already "
                                             "rotated.") % {"key": key}, level=messages.ERROR)
                continue
            messages.warning(request, _("New key for %(name)s, shown only now; copy it: %(key)s. The old key "
                                        "%(old)s keeps working until %(until)s.")
                             % {"name": new.name, "key": raw, "old": key.prefix,
                                "until": date_format(timezone.localtime(key.expires_at), "DATETIME_FORMAT")})


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["owner", "key", "method", "path", "status", "response_status", "created_at"]
    list_filter = ["status", "method"]
    search_fields = ["owner", "key", "path"]
    readonly_fields = ["owner", "key", "fingerprint", "method", "path", "status", "response_status",
                       "response_body", "response_headers", "created_at", "locked_at", "completed_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
