"""Stock: levels, the move ledger, reservations, transfers, receipts, counts, replenishment.

Invariants (proved by ``audit_ledgers``):
  * on_hand == Σ StockMove.qty for every level;
  * reserved == Σ qty of active reservations for every level;
  * 0 <= reserved <= on_hand, enforced by CHECK constraints.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from catalog.models import Sku
from stores.models import Warehouse


class Bucket(models.TextChoices):
    SELLABLE = "sellable", _("Sellable")
    DAMAGED = "damaged", _("Damaged / quarantine")


class StockLevel(models.Model):
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="levels",
                                  verbose_name=_("warehouse"))
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="levels", verbose_name=_("SKU"))
    bucket = models.CharField(_("bucket"), max_length=10, choices=Bucket.choices, default=Bucket.SELLABLE)
    on_hand = models.IntegerField(_("on hand"), default=0)
    reserved = models.IntegerField(_("reserved"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("stock level")
        verbose_name_plural = _("stock levels")
        constraints = [
            models.UniqueConstraint(fields=["warehouse", "sku", "bucket"], name="stock_level_unique"),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_non_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0) & Q(reserved__lte=F("on_hand")),
                                   name="stock_reserved_within_on_hand"),
            models.CheckConstraint(condition=Q(bucket="sellable") | Q(reserved=0),
                                   name="stock_only_sellable_reserved"),
        ]
        indexes = [models.Index(fields=["sku", "warehouse"], name="stock_level_sku_idx")]

    def __str__(self) -> str:
        return f"{self.warehouse.code}/{self.sku.code}/{self.bucket}"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class MoveReason(models.TextChoices):
    RECEIPT = "receipt", _("Supplier receipt")
    OPENING = "opening", _("Opening stock")
    ADJUSTMENT = "adjustment", _("Adjustment")
    COUNT = "count", _("Stock count")
    SALE = "sale", _("Sale")
    RETURN = "return", _("Customer return")
    TRANSFER_OUT = "transfer_out", _("Transfer shipped")
    TRANSFER_IN = "transfer_in", _("Transfer received")
    QUARANTINE = "quarantine", _("Moved between sellable and damaged")


class StockMove(models.Model):
    """One signed change of on_hand.  Immutable: corrections are new moves."""

    level = models.ForeignKey(StockLevel, on_delete=models.PROTECT, related_name="moves", verbose_name=_("level"))
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+", verbose_name=_("warehouse"))
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    bucket = models.CharField(_("bucket"), max_length=10, choices=Bucket.choices)
    qty = models.IntegerField(_("quantity"))
    reason = models.CharField(_("reason"), max_length=20, choices=MoveReason.choices)
    reference = models.CharField(_("reference"), max_length=100, blank=True, default="")
    note = models.CharField(_("note"), max_length=300, blank=True, default="")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("actor"))
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("stock move")
        verbose_name_plural = _("stock moves")
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=~Q(qty=0), name="stock_move_qty_non_zero")]
        indexes = [models.Index(fields=["reference"], name="stock_move_reference_idx")]


class Reservation(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMMITTED = "committed", _("Committed")
        RELEASED = "released", _("Released")
        EXPIRED = "expired", _("Expired")

    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+", verbose_name=_("warehouse"))
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    qty = models.PositiveIntegerField(_("quantity"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    reference = models.CharField(_("reference"), max_length=100)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=Q(qty__gt=0), name="reservation_qty_positive")]
        indexes = [
            models.Index(fields=["expires_at"], name="reservation_expiry_idx", condition=Q(status="active")),
            models.Index(fields=["reference"], name="reservation_reference_idx"),
            models.Index(fields=["warehouse", "sku"], name="reservation_active_level_idx",
                         condition=Q(status="active")),
        ]


class Transfer(models.Model):
    """Two-step transfer: shipping takes stock out, receiving puts it in; in between it is in transit."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SHIPPED = "shipped", _("In transit")
        RECEIVED = "received", _("Received")
        CANCELLED = "cancelled", _("Cancelled")

    number = models.CharField(_("number"), max_length=30, unique=True)
    source = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="transfers_out",
                               verbose_name=_("from"))
    destination = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="transfers_in",
                                    verbose_name=_("to"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    note = models.CharField(_("note"), max_length=300, blank=True, default="")
    # Set when the transfer moves goods already reserved for an order (e.g. a pickup
    # order supplied from central): shipping consumes that reservation at the source and
    # receiving reserves the units for the same reference at the destination.
    reference = models.CharField(_("for order"), max_length=100, blank=True, default="", db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"))
    shipped_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("shipped by"))
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("received by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), null=True, blank=True)

    class Meta:
        verbose_name = _("transfer")
        verbose_name_plural = _("transfers")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(source=F("destination")), name="transfer_distinct_warehouses"),
        ]

    def __str__(self) -> str:
        return self.number


class TransferLine(models.Model):
    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="lines")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    qty = models.PositiveIntegerField(_("quantity shipped"))
    qty_received = models.PositiveIntegerField(_("received sellable"), default=0)
    qty_damaged = models.PositiveIntegerField(_("received damaged"), default=0)

    class Meta:
        verbose_name = _("transfer line")
        verbose_name_plural = _("transfer lines")
        constraints = [
            models.UniqueConstraint(fields=["transfer", "sku"], name="transfer_line_unique_sku"),
            models.CheckConstraint(condition=Q(qty__gt=0), name="transfer_line_qty_positive"),
            models.CheckConstraint(condition=Q(qty_received__lte=F("qty") - F("qty_damaged")),
                                   name="transfer_line_received_within_shipped"),
        ]

    @property
    def discrepancy(self) -> int:
        """Units shipped but not received (lost in transit), once the transfer is received."""
        return self.qty - self.qty_received - self.qty_damaged


class Receipt(models.Model):
    """Goods received from a supplier."""

    number = models.CharField(_("number"), max_length=30, unique=True)
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="receipts",
                                  verbose_name=_("warehouse"))
    supplier = models.CharField(_("supplier"), max_length=200)
    supplier_reference = models.CharField(_("supplier reference"), max_length=100, blank=True, default="")
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("received by"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        verbose_name = _("supplier receipt")
        verbose_name_plural = _("supplier receipts")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.number


class ReceiptLine(models.Model):
    receipt = models.ForeignKey(Receipt, on_delete=models.CASCADE, related_name="lines")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    qty = models.PositiveIntegerField(_("quantity"))
    unit_cost = models.DecimalField(_("unit cost (CNY)"), max_digits=12, decimal_places=2, default=0)

    class Meta:
        verbose_name = _("receipt line")
        verbose_name_plural = _("receipt lines")
        constraints = [models.CheckConstraint(condition=Q(qty__gt=0), name="receipt_line_qty_positive")]


class StockCount(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Counting")
        APPLIED = "applied", _("Applied")

    number = models.CharField(_("number"), max_length=30, unique=True)
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="counts",
                                  verbose_name=_("warehouse"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"))
    applied_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("applied by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)

    class Meta:
        verbose_name = _("stock count")
        verbose_name_plural = _("stock counts")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.number


class StockCountLine(models.Model):
    count = models.ForeignKey(StockCount, on_delete=models.CASCADE, related_name="lines")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    counted = models.PositiveIntegerField(_("counted"))
    # The book figure when the shelf was counted (a snapshot): what moved since (a sale, a receipt)
    # happened beside the count, so applying it posts counted − expected, never counted − book now.
    expected = models.IntegerField(_("book quantity"),
                                   help_text=_("On the books when the shelf was counted."))
    # Filled when the count is applied: the move it posted.
    difference = models.IntegerField(_("difference"), null=True, blank=True)

    class Meta:
        verbose_name = _("count line")
        verbose_name_plural = _("count lines")
        constraints = [
            models.UniqueConstraint(fields=["count", "sku"], name="count_line_unique_sku"),
            models.CheckConstraint(condition=Q(difference__isnull=True) | Q(difference=F("counted") - F("expected")),
                                   name="count_line_difference_from_snapshot"),
        ]


class ReplenishmentRule(models.Model):
    """Keep a warehouse×SKU between min and max: below min, propose enough to reach max."""

    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="replenishment_rules",
                                  verbose_name=_("warehouse"))
    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="+", verbose_name=_("SKU"))
    min_qty = models.PositiveIntegerField(_("minimum"))
    max_qty = models.PositiveIntegerField(_("maximum"))

    class Meta:
        verbose_name = _("replenishment rule")
        verbose_name_plural = _("replenishment rules")
        constraints = [
            models.UniqueConstraint(fields=["warehouse", "sku"], name="replenishment_rule_unique"),
            models.CheckConstraint(condition=Q(max_qty__gte=F("min_qty")), name="replenishment_max_gte_min"),
        ]


class ReplenishmentProposal(models.Model):
    class Kind(models.TextChoices):
        TRANSFER = "transfer", _("Transfer from central")
        PURCHASE = "purchase", _("Purchase from supplier")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACCEPTED = "accepted", _("Accepted")
        DISMISSED = "dismissed", _("Dismissed")

    business_date = models.DateField(_("business date"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="+", verbose_name=_("for"))
    source = models.ForeignKey(Warehouse, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                               verbose_name=_("from"))
    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="+", verbose_name=_("SKU"))
    available = models.IntegerField(_("available then"))
    qty = models.PositiveIntegerField(_("proposed quantity"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    transfer = models.ForeignKey(Transfer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("replenishment proposal")
        verbose_name_plural = _("replenishment proposals")
        ordering = ["-business_date", "warehouse", "sku"]
        constraints = [
            models.UniqueConstraint(fields=["business_date", "kind", "warehouse", "sku"],
                                    name="replenishment_proposal_once_a_day"),
        ]
