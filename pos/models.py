"""Baskets kept on the server, and the sales a till took while the network was down.

Each clerk's open basket at a store, and the parked ones (挂单): the open basket follows the clerk,
not the browser: logging in again, or on another till of the store, finds it where it was.  A parked
basket belongs to the store: any clerk of the store may recall it, until it is recalled once or the
shift closes (then it expires, and the close says which ones).

An offline sale is a fact: the goods left the store and the customer paid.  Syncing records it
exactly once (the till's client UUID is unique here and on the order), and what no longer agrees
with the server is posted as a conflict for the store manager instead of refusing the sale.
"""

from __future__ import annotations


from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from payments.models import PosShift
from stores.models import Store


class PosBasket(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("Open")
        PARKED = "parked", _("Parked")
        RECALLED = "recalled", _("Recalled")
        EXPIRED = "expired", _("Expired")

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+", verbose_name=_("store"))
    # The open basket's clerk; for a parked one, the clerk who parked it.
    clerk = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("clerk"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.OPEN)
    data = models.JSONField(_("basket"), default=dict)
    label = models.CharField(_("note"), max_length=40, blank=True, default="")
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2, null=True, blank=True)
    units = models.PositiveIntegerField(_("units"), default=0)
    shift = models.ForeignKey(PosShift, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("parked in shift"))
    updated_at = models.DateTimeField(_("updated at"))
    parked_at = models.DateTimeField(_("parked at"), null=True, blank=True)
    recalled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("recalled by"))
    recalled_at = models.DateTimeField(_("recalled at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)
    expired_shift = models.ForeignKey(PosShift, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                      verbose_name=_("expired at the close of"))

    class Meta:
        verbose_name = _("POS basket")
        verbose_name_plural = _("POS baskets")
        ordering = ["-id"]
        indexes = [models.Index(fields=["store", "state"], name="pos_basket_store_state_idx")]
        constraints = [
            models.UniqueConstraint(fields=["clerk", "store"], condition=Q(state="open"),
                                    name="pos_basket_one_open_per_clerk"),
            models.CheckConstraint(condition=Q(state="open") | Q(parked_at__isnull=False, total__isnull=False),
                                   name="pos_basket_parked_has_total"),
            models.CheckConstraint(condition=~Q(state="recalled") | Q(recalled_at__isnull=False,
                                                                     recalled_by__isnull=False),
                                   name="pos_basket_recalled_says_who"),
            models.CheckConstraint(condition=~Q(state="expired") | Q(expired_at__isnull=False),
                                   name="pos_basket_expired_says_when"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        """The short number the clerk reads out and the list shows."""
        return f"P{self.pk}"


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
