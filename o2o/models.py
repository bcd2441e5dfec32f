from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OutboxMessage(models.Model):
    """A side effect recorded in the business transaction, published after commit by the relay."""

    topic = models.CharField(_("topic"), max_length=100)
    # Messages with the same key (e.g. "order:42") are consumed in id order.
    key = models.CharField(_("key"), max_length=100, blank=True, default="")
    payload = models.JSONField(_("payload"), default=dict)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    available_at = models.DateTimeField(_("available at"), db_default=models.functions.Now())
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True, default="")

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        indexes = [
            models.Index(
                fields=["available_at", "id"],
                name="outbox_pending_idx",
                condition=models.Q(published_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic}#{self.pk}"


class ProcessedMessage(models.Model):
    """Marks a message as applied by a consumer, so a redelivery is a no-op."""

    consumer = models.CharField(max_length=100)
    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="+")
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("processed message")
        verbose_name_plural = _("processed messages")
        constraints = [
            models.UniqueConstraint(fields=["consumer", "message"], name="processed_message_once"),
        ]


# --- partner API --------------------------------------------------------------------------------


class PartnerKey(models.Model):
    """An API key of a partner system.  Only a hash of the secret is kept.

    The key is ``o2o_<prefix>_<secret>``: the prefix finds the row, the
    SHA-256 of the whole key is compared in constant time.  A key acts for one
    sales channel (and partner code); with stores set it is further limited
    to those stores.  It may expire (``expires_at``); rotating a key leaves the
    old one working until its grace period ends, so a partner has two live keys
    during a changeover.
    """

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, editable=False)
    channel = models.CharField(_("channel"), max_length=20)
    partner = models.CharField(_("partner code"), max_length=50, blank=True, default="",
                               help_text=_("Marketplace or partner system code; empty for own channels."))
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    stores = models.ManyToManyField("stores.Store", blank=True, related_name="+", verbose_name=_("stores"),
                                    help_text=_("Empty: every store."))
    rate_limit_per_minute = models.PositiveIntegerField(
        _("requests per minute"), null=True, blank=True, help_text=_("Empty: the default limit."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True,
                                      help_text=_("Empty: never. A rotated key expires after its grace period."))
    replaced_by = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, editable=False,
                                    related_name="+", verbose_name=_("rotated to"))

    class Meta:
        verbose_name = _("partner API key")
        verbose_name_plural = _("partner API keys")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired


class IdempotencyRecord(models.Model):
    """The first response to an Idempotency-Key, replayed for a retry with the same key."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")

    owner = models.CharField(_("owner"), max_length=40)
    key = models.CharField(_("key"), max_length=255)
    fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    method = models.CharField(_("method"), max_length=10)
    path = models.CharField(_("path"), max_length=300)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_body = models.JSONField(_("response body"), null=True, blank=True)
    response_headers = models.JSONField(_("response headers"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    locked_at = models.DateTimeField(_("started at"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_owner_key_once")]

    def __str__(self) -> str:
        return f"{self.owner}/{self.key}"
