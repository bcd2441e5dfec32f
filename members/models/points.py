"""The points (积分) ledger: earn lots, append-only entries, lot consumption, rules and settings.

Three balances per member, each the sum of one column of ``PointsEntry``:
available, frozen (earned on orders still inside their return window) and
debt (points reversed by a return after they had been spent).  Every entry
that takes points out of lots lists the lots in ``PointsConsumption``, so a
lot's ``remaining`` is always ``amount − Σ consumption``.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from catalog.models import Category
from members.models.member import Member
from stores.models import Store

__all__ = [
    "SalesChannel",
    "ExpiryPolicy",
    "PointsConfig",
    "PointsRule",
    "LotKind",
    "LotStatus",
    "PointsLot",
    "EntryKind",
    "PointsEntry",
    "PointsConsumption",
]


class SalesChannel(models.TextChoices):
    """The order channels (the same codes the orders app uses)."""

    WEB = "web", _("Web shop")
    MINI_PROGRAM = "mini_program", _("WeChat mini-program")
    MARKETPLACE = "marketplace", _("Marketplace partner")
    POS = "pos", _("Store POS")


class ExpiryPolicy(models.TextChoices):
    END_OF_NEXT_YEAR = "end_of_next_year", _("End of the year after the year earned")
    MONTHS = "months", _("A number of months after earning")


class PointsConfig(models.Model):
    """The programme's settings: one row (pk 1); without it the defaults apply."""

    points_per_yuan_redeemed = models.PositiveIntegerField(
        _("points per 1 CNY when redeeming"), default=100,
        help_text=_("100 means 100 points pay 1.00 CNY."))
    default_points_per_yuan = models.DecimalField(
        _("points per 1 CNY paid (no rule matches)"), max_digits=8, decimal_places=2, default=Decimal("1.00"))
    expiry_policy = models.CharField(_("lots expire"), max_length=20, choices=ExpiryPolicy.choices,
                                     default=ExpiryPolicy.END_OF_NEXT_YEAR)
    expiry_months = models.PositiveIntegerField(_("months until expiry"), default=24,
                                                help_text=_("Used when lots expire a number of months after earning."))
    redeem_max_share = models.DecimalField(
        _("largest share of an order payable with points"), max_digits=3, decimal_places=2, default=Decimal("1.00"),
        help_text=_("0.50 means points may pay at most half of an order."))

    class Meta:
        verbose_name = _("points settings")
        verbose_name_plural = _("points settings")
        constraints = [
            models.CheckConstraint(condition=Q(points_per_yuan_redeemed__gte=1), name="points_config_rate_positive"),
            models.CheckConstraint(condition=Q(default_points_per_yuan__gte=0), name="points_config_earn_non_negative"),
            models.CheckConstraint(condition=Q(expiry_months__gte=1), name="points_config_months_positive"),
            models.CheckConstraint(condition=Q(redeem_max_share__gte=0, redeem_max_share__lte=1),
                                   name="points_config_share_between_0_and_1"),
        ]

    def __str__(self) -> str:
        return str(_("points settings"))


class PointsRule(models.Model):
    """Points per 1 CNY paid, by channel and/or category.  The most specific active rule wins:
    the deepest matching category first (a rule on a parent covers its subcategories), then a
    rule for the order's channel over one for every channel."""

    channel = models.CharField(_("channel"), max_length=20, choices=SalesChannel.choices, blank=True, default="",
                               help_text=_("Empty: every channel."))
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("category"), help_text=_("Empty: every category."))
    points_per_yuan = models.DecimalField(_("points per 1 CNY paid"), max_digits=8, decimal_places=2)
    is_active = models.BooleanField(_("active"), default=True)
    note = models.CharField(_("note"), max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("points rule")
        verbose_name_plural = _("points rules")
        ordering = ["channel", "category__path"]
        constraints = [
            models.CheckConstraint(condition=Q(points_per_yuan__gte=0), name="points_rule_rate_non_negative"),
            models.UniqueConstraint(fields=["channel", "category"], nulls_distinct=False,
                                    name="points_rule_channel_category_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display() or _('every channel')} / {self.category or _('every category')}"


class LotKind(models.TextChoices):
    EARN = "earn", _("Earned on an order")
    ADJUST = "adjust", pgettext_lazy("points", "Adjustment")
    RESTORE = "restore", _("Restored after a return")


class LotStatus(models.TextChoices):
    FROZEN = "frozen", _("Frozen")
    AVAILABLE = "available", _("Available")
    EXPIRED = "expired", _("Expired")


class PointsLot(models.Model):
    """Points that came in together and expire together.  Spent oldest expiry first."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="points_lots", verbose_name=_("member"))
    kind = models.CharField(_("kind"), max_length=10, choices=LotKind.choices)
    status = models.CharField(_("status"), max_length=10, choices=LotStatus.choices)
    order_number = models.CharField(_("order number"), max_length=30, blank=True, default="", db_index=True)
    channel = models.CharField(_("channel"), max_length=20, blank=True, default="")
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("store"))
    amount = models.IntegerField(_("points"))
    remaining = models.IntegerField(_("remaining"))
    frozen_until = models.DateTimeField(_("frozen until"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), db_index=True)
    paid_amount = models.DecimalField(_("paid amount (CNY)"), max_digits=12, decimal_places=2,
                                      default=Decimal("0.00"))
    returned_amount = models.DecimalField(_("returned value (CNY)"), max_digits=12, decimal_places=2,
                                          default=Decimal("0.00"))
    reversed_points = models.IntegerField(_("points reversed by returns"), default=0)
    origin_lot = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("restored from lot"))
    detail = models.JSONField(_("calculation"), default=list, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("points lot")
        verbose_name_plural = _("points lots")
        ordering = ["-id"]
        indexes = [models.Index(fields=["member", "status", "expires_at", "id"], name="points_lot_fifo"),
                   models.Index(fields=["status", "frozen_until"], name="points_lot_frozen_due")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="points_lot_amount_non_negative"),
            models.CheckConstraint(condition=Q(remaining__gte=0, remaining__lte=F("amount")),
                                   name="points_lot_remaining_within_amount"),
            models.CheckConstraint(condition=Q(reversed_points__gte=0, reversed_points__lte=F("amount")),
                                   name="points_lot_reversed_within_amount"),
            models.CheckConstraint(condition=Q(returned_amount__gte=0, returned_amount__lte=F("paid_amount")),
                                   name="points_lot_returned_within_paid"),
            models.UniqueConstraint(fields=["order_number"], condition=Q(kind="earn"),
                                    name="points_lot_one_earn_per_order"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} {self.order_number} {self.remaining}/{self.amount}"


class EntryKind(models.TextChoices):
    EARN = "earn", _("Earned")
    UNFREEZE = "unfreeze", _("Unfrozen")
    REDEEM = "redeem", _("Redeemed")
    RESTORE = "restore", _("Redeemed points restored")
    REVERSE = "reverse", _("Earned points reversed")
    DEBT_SETTLE = "debt_settle", _("Debt settled")
    EXPIRE = "expire", _("Expired")
    ADJUST = "adjust", pgettext_lazy("points", "Adjustment")
    MERGE_OUT = "merge_out", _("Merged into another member")
    MERGE_IN = "merge_in", _("Merged from another member")


class PointsEntry(models.Model):
    """One immutable change of a member's points balances (signed deltas)."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="points_entries",
                               verbose_name=_("member"))
    kind = models.CharField(_("kind"), max_length=12, choices=EntryKind.choices)
    available_delta = models.IntegerField(_("available"), default=0)
    frozen_delta = models.IntegerField(_("frozen"), default=0)
    debt_delta = models.IntegerField(_("debt"), default=0)
    written_off = models.IntegerField(
        _("written off"), default=0,
        help_text=_("Points reversed by a return that had already expired: nothing left to take back."))
    lot = models.ForeignKey(PointsLot, null=True, blank=True, on_delete=models.PROTECT, related_name="entries",
                            verbose_name=_("lot"))
    order_number = models.CharField(_("order number"), max_length=30, blank=True, default="", db_index=True)
    reference = models.CharField(_("reference"), max_length=64, blank=True, default="")
    reason = models.CharField(_("reason"), max_length=300, blank=True, default="")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("by"))
    created_at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("points entry")
        verbose_name_plural = _("points entries")
        ordering = ["-id"]
        indexes = [models.Index(fields=["member", "id"], name="points_entry_member")]
        constraints = [
            models.CheckConstraint(condition=Q(written_off__gte=0), name="points_entry_written_off_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.available_delta:+d}/{self.frozen_delta:+d}/{self.debt_delta:+d}"


class PointsConsumption(models.Model):
    """Points an entry took out of one lot (redeemed, reversed, expired, settled a debt)."""

    entry = models.ForeignKey(PointsEntry, on_delete=models.PROTECT, related_name="consumptions",
                              verbose_name=_("entry"))
    lot = models.ForeignKey(PointsLot, on_delete=models.PROTECT, related_name="consumptions", verbose_name=_("lot"))
    points = models.IntegerField(_("points"))

    class Meta:
        verbose_name = _("points consumption")
        verbose_name_plural = _("points consumption")
        constraints = [models.CheckConstraint(condition=Q(points__gt=0), name="points_consumption_positive")]

    def __str__(self) -> str:
        return f"{self.points} ← lot {self.lot_id}"
