"""Admin for webhooks: subscriptions (the signing secret is shown once, on creation), and deliveries
with their attempt log, dead-letter filter and replay."""

from __future__ import annotations

import secrets

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from integrations.webhooks import deliveries_replay


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["url", "partner_key", "events", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "partner_key__name"]
    readonly_fields = ["created_at"]
    fields = ["partner_key", "url", "events", "is_active", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change and not obj.secret:
            obj.secret = f"whsec_{secrets.token_urlsafe(32)}"
            messages.warning(request, _("The signing secret is shown only now; copy it: %(secret)s")
                             % {"secret": obj.secret})
        super().save_model(request, obj, form, change)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ["attempted_at", "status_code", "duration_ms", "succeeded", "error", "response_excerpt"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event_id", "topic", "subscription", "status", "attempts", "last_status_code",
                    "next_attempt_at", "created_at", "delivered_at"]
    list_filter = ["status", "topic"]
    search_fields = ["event_id", "subscription__url"]
    readonly_fields = ["subscription", "event_id", "topic", "body", "status", "attempts", "next_attempt_at",
                       "give_up_at", "last_status_code", "last_error", "created_at", "delivered_at"]
    inlines = [WebhookAttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Replay the selected deliveries"))
    def replay(self, request, queryset):
        count = deliveries_replay(ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, ngettext("%(n)d delivery queued again.", "%(n)d deliveries queued again.",
                                            count)
                          % {"n": count})
