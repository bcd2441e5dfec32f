"""Partner webhooks: subscriptions, one delivery per event and subscription, and the attempt log."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class WebhookSubscription(models.Model):
    """A partner's endpoint for events; deliveries are signed with ``secret``."""

    partner_key = models.ForeignKey("o2o.PartnerKey", on_delete=models.CASCADE, related_name="webhooks",
                                    verbose_name=_("partner key"))
    url = models.URLField(_("URL"), max_length=500)
    events = models.JSONField(_("events"), default=list)
    secret = models.CharField(_("signing secret"), max_length=100, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        db_table = "o2o_webhooksubscription"  # the table kept its name when the model moved
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.partner_key.name} → {self.url}"


class WebhookDelivery(models.Model):
    """One event for one subscription, retried with backoff until delivered or given up (dead)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Delivered")
        DEAD = "dead", _("Dead letter")

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries",
                                     verbose_name=_("subscription"))
    event_id = models.CharField(_("event id"), max_length=64)
    topic = models.CharField(_("event"), max_length=100)
    body = models.TextField(_("body"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), db_default=models.functions.Now())
    give_up_at = models.DateTimeField(_("give up at"))
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        db_table = "o2o_webhookdelivery"  # the table kept its name when the model moved
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event_id"], name="webhook_delivery_once"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="webhook_delivery_due_idx",
                         condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.event_id} → #{self.subscription_id}"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: the log partners and support look at."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log",
                                 verbose_name=_("delivery"))
    attempted_at = models.DateTimeField(_("time"), auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    error = models.CharField(_("error"), max_length=500, blank=True, default="")
    response_excerpt = models.CharField(_("response"), max_length=500, blank=True, default="")
    succeeded = models.BooleanField(_("succeeded"), default=False)

    class Meta:
        db_table = "o2o_webhookattempt"  # the table kept its name when the model moved
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["id"]
