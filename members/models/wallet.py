"""The wallet (储值): recharge packages, recharge lots, append-only entries and spend provenance.

Principal (money the member paid) and bonus (money the package gave) are two
balances.  Each recharge is a lot with its own remaining principal and bonus;
every later movement of a lot is a ``WalletSpendAllocation`` row, so a lot's
remaining is always its original amount less the sum of its allocations, and
wallet money spent in a store other than the one that sold it is on record
for settlement.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from members.models.member import Member
from stores.models import Store

__all__ = [
    "RechargePackage",
    "WalletRecharge",
    "WalletEntryKind",
    "WalletEntry",
    "WalletSpendAllocation",
]

MONEY = {"max_digits": 12, "decimal_places": 2}


class RechargePackage(models.Model):
    """An offer such as "pay 1000, get 1100": pay amount (principal) + bonus amount."""

    name = models.CharField(_("name"), max_length=100)
    pay_amount = models.DecimalField(_("pay (CNY)"), **MONEY)
    bonus_amount = models.DecimalField(_("bonus (CNY)"), default=Decimal("0.00"), **MONEY)
    is_active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveIntegerField(_("order"), default=10)

    class Meta:
        verbose_name = _("recharge package")
        verbose_name_plural = _("recharge packages")
        ordering = ["sort_order", "pay_amount"]
        constraints = [
            models.CheckConstraint(condition=Q(pay_amount__gt=0), name="recharge_package_pay_positive"),
            models.CheckConstraint(condition=Q(bonus_amount__gte=0), name="recharge_package_bonus_non_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def credit_amount(self) -> Decimal:
        return self.pay_amount + self.bonus_amount


class WalletRecharge(models.Model):
    """One recharge: a lot of principal and bonus, and the store that sold it."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="wallet_recharges",
                               verbose_name=_("member"))
    package = models.ForeignKey(RechargePackage, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("package"))
    principal = models.DecimalField(_("principal (CNY)"), **MONEY)
    bonus = models.DecimalField(_("bonus (CNY)"), **MONEY)
    principal_remaining = models.DecimalField(_("principal left (CNY)"), **MONEY)
    bonus_remaining = models.DecimalField(_("bonus left (CNY)"), **MONEY)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("sold by store"))
    reference = models.CharField(_("payment reference"), max_length=64, unique=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("by"))
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)
    created_at = models.DateTimeField(_("recharged at"), auto_now_add=True)

    class Meta:
        verbose_name = _("wallet recharge")
        verbose_name_plural = _("wallet recharges")
        ordering = ["-id"]
        indexes = [models.Index(fields=["member", "id"], name="wallet_recharge_member")]
        constraints = [
            models.CheckConstraint(condition=Q(principal__gt=0), name="wallet_recharge_principal_positive"),
            models.CheckConstraint(condition=Q(bonus__gte=0), name="wallet_recharge_bonus_non_negative"),
            models.CheckConstraint(condition=Q(principal_remaining__gte=0, principal_remaining__lte=F("principal")),
                                   name="wallet_recharge_principal_left_within"),
            models.CheckConstraint(condition=Q(bonus_remaining__gte=0, bonus_remaining__lte=F("bonus")),
                                   name="wallet_recharge_bonus_left_within"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.principal}+{self.bonus}"


class WalletEntryKind(models.TextChoices):
    RECHARGE = "recharge", _("Recharge")
    SPEND = "spend", _("Spend")
    REFUND_SPEND = "refund_spend", _("Spend refunded")
    RECHARGE_REFUND = "recharge_refund", _("Recharge refunded")
    MERGE_OUT = "merge_out", _("Merged into another member")
    MERGE_IN = "merge_in", _("Merged from another member")


class WalletEntry(models.Model):
    """One immutable change of a member's wallet (signed principal and bonus deltas)."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="wallet_entries",
                               verbose_name=_("member"))
    kind = models.CharField(_("kind"), max_length=16, choices=WalletEntryKind.choices)
    principal_delta = models.DecimalField(_("principal (CNY)"), default=Decimal("0.00"), **MONEY)
    bonus_delta = models.DecimalField(_("bonus (CNY)"), default=Decimal("0.00"), **MONEY)
    recharge = models.ForeignKey(WalletRecharge, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="entries", verbose_name=_("recharge"))
    reference = models.CharField(_("reference"), max_length=64, blank=True, default="", db_index=True)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("store"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("by"))
    created_at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("wallet entry")
        verbose_name_plural = _("wallet entries")
        ordering = ["-id"]
        indexes = [models.Index(fields=["member", "id"], name="wallet_entry_member")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.principal_delta:+}/{self.bonus_delta:+}"


class WalletSpendAllocation(models.Model):
    """What one entry took from (positive) or put back into (negative) one recharge lot.

    Spends and refunds of spends record both stores, so settlement can pay the
    store that sold the recharge for wallet money spent elsewhere; a recharge
    refund records the principal returned and the bonus forfeited.
    """

    entry = models.ForeignKey(WalletEntry, on_delete=models.PROTECT, related_name="allocations",
                              verbose_name=_("entry"))
    recharge = models.ForeignKey(WalletRecharge, on_delete=models.PROTECT, related_name="allocations",
                                 verbose_name=_("recharge"))
    sold_store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("recharge sold by"))
    spend_store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("spent at"))
    principal = models.DecimalField(_("principal (CNY)"), **MONEY)
    bonus = models.DecimalField(_("bonus (CNY)"), **MONEY)
    created_at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("wallet spend allocation")
        verbose_name_plural = _("wallet spend allocations")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(principal=0) | ~Q(bonus=0), name="wallet_allocation_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.recharge_id}: {self.principal}+{self.bonus}"

    @property
    def is_cross_store(self) -> bool:
        return (self.sold_store_id is not None and self.spend_store_id is not None
                and self.sold_store_id != self.spend_store_id)
