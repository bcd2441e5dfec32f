"""Sales a till took while the network was down, and the conflicts they brought back.

An offline sale is a fact: the goods left the store and the customer paid.  Syncing records it
exactly once (the till's client UUID is unique here and on the order), and what no longer agrees
with the server is posted as a conflict for the store manager instead of refusing the sale.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class OfflineSale(models.Model):
    client_uuid = models.UUIDField(_("client sale id"), unique=True)
    store = models.ForeignKey("stores.Store", on_delete=models.PROTECT, related_name="offline_sales")
    till = models.CharField(_("till"), max_length=40)
    sequence = models.PositiveIntegerField(_("sequence on the till"))
    receipt_number = models.CharField(_("offline receipt number"), max_length=80)
    sold_at = models.DateTimeField(_("sold at (till clock)"))
    synced_at = models.DateTimeField(_("synced at"), auto_now_add=True)
    synced_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The clerk signed in at the till when the sale was made (the order's clerk); the one who
    # synced when the till did not say, or named someone who is not staff of the store.
    sold_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                null=True, blank=True, verbose_name=_("sold by"))
    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="offline_sale")
    # What the customer paid, as the till priced it; and what the server would have charged.
    paid_total = models.DecimalField(_("paid (till price)"), max_digits=12, decimal_places=2)
    server_total = models.DecimalField(_("server price"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("offline sale")
        verbose_name_plural = _("offline sales")
        ordering = ["-synced_at"]
        constraints = [models.UniqueConstraint(fields=["store", "receipt_number"], name="offline_receipt_once")]

    def __str__(self) -> str:
        return self.receipt_number

    @property
    def price_difference(self):
        """Positive: the customer paid less than the server price (the store bears it)."""
        return self.server_total - self.paid_total


class OfflineConflict(models.Model):
    """What an offline sale found changed when it synced: a task for the store manager."""

    class Kind(models.TextChoices):
        STOCK_SHORT = "stock_short", _("Sold more than the stock on the books")
        PRICE_CHANGED = "price_changed", _("Price changed while offline")

    class Status(models.TextChoices):
        OPEN = "open", _("Waiting for the store manager")
        RESOLVED = "resolved", _("Resolved")

    offline_sale = models.ForeignKey(OfflineSale, on_delete=models.PROTECT, related_name="conflicts")
    store = models.ForeignKey("stores.Store", on_delete=models.PROTECT, related_name="offline_conflicts")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+")
    qty = models.PositiveIntegerField(_("quantity sold"))
    # STOCK_SHORT: the units the books did not have; they were booked in (an adjustment awaiting
    # the count) so the sale could take them without breaking 0 <= reserved <= on_hand.
    qty_short = models.PositiveIntegerField(_("units short"), default=0)
    # PRICE_CHANGED: the line as the customer paid it and as the server prices it now.
    paid_amount = models.DecimalField(_("paid"), max_digits=12, decimal_places=2, null=True, blank=True)
    server_amount = models.DecimalField(_("server price"), max_digits=12, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("offline sale conflict")
        verbose_name_plural = _("offline sale conflicts")
        ordering = ["status", "-created_at"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(kind="stock_short") | models.Q(qty_short__gt=0),
                                   name="offline_conflict_short_has_units"),
            models.CheckConstraint(condition=~models.Q(kind="price_changed")
                                   | (models.Q(paid_amount__isnull=False) & models.Q(server_amount__isnull=False)),
                                   name="offline_conflict_price_has_amounts"),
        ]

    def __str__(self) -> str:
        return f"{self.offline_sale} · {self.get_kind_display()}"
