"""Members, their linked identities, tiers, merges and the paid-spend record tiers are computed from."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from stores.models import Store

__all__ = [
    "RegistrationChannel",
    "Tier",
    "Member",
    "IdentityKind",
    "MemberIdentity",
    "MemberMerge",
    "MemberSpend",
]

MONEY = {"max_digits": 12, "decimal_places": 2}


class RegistrationChannel(models.TextChoices):
    POS = "pos", _("In store (POS)")
    WEB = "web", _("Web shop")
    MINI_PROGRAM = "mini_program", _("WeChat mini-program")
    PARTNER = "partner", _("Partner system")
    ADMIN = "admin", _("Head office")


class Tier(models.Model):
    """A membership level (普通/银卡/金卡/钻石): reached by rolling 12-month paid spend."""

    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=50)
    min_spend = models.DecimalField(_("minimum 12-month spend (CNY)"), default=Decimal("0.00"), **MONEY)
    points_multiplier = models.DecimalField(_("points multiplier"), max_digits=5, decimal_places=2,
                                            default=Decimal("1.00"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["min_spend", "code"]
        constraints = [
            models.CheckConstraint(condition=Q(min_spend__gte=0), name="tier_min_spend_non_negative"),
            models.CheckConstraint(condition=Q(points_multiplier__gt=0), name="tier_multiplier_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    """One person across every channel.  The mobile number (E.164) is the natural key.

    The balance fields are caches of the points and wallet ledgers: they change
    only in ``members.services`` under a row lock on this member, together with
    the ledger entries they sum.  A merged member stays as a row (its history
    refers to it) with ``merged_into`` set; every service follows that link.
    """

    phone = models.CharField(_("mobile number"), max_length=20, unique=True, help_text=_("E.164, e.g. +8613800138000"))
    name = models.CharField(_("name"), max_length=100, blank=True, default="")
    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="members",
                             verbose_name=_("tier"))
    registration_channel = models.CharField(_("registered through"), max_length=20,
                                            choices=RegistrationChannel.choices)
    registration_store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT,
                                           related_name="registered_members", verbose_name=_("registered at store"))
    registration_partner = models.CharField(_("registered through partner"), max_length=50, blank=True, default="")
    spend_12m = models.DecimalField(_("paid spend, last 12 months (CNY)"), default=Decimal("0.00"), editable=False,
                                    max_digits=14, decimal_places=2)
    tier_updated_at = models.DateTimeField(_("tier computed at"), null=True, blank=True, editable=False)
    points_available = models.IntegerField(_("available points"), default=0, editable=False)
    points_frozen = models.IntegerField(_("frozen points"), default=0, editable=False)
    points_debt = models.IntegerField(_("points debt"), default=0, editable=False)
    wallet_principal = models.DecimalField(_("wallet principal (CNY)"), default=Decimal("0.00"), editable=False,
                                           **MONEY)
    wallet_bonus = models.DecimalField(_("wallet bonus (CNY)"), default=Decimal("0.00"), editable=False, **MONEY)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="merged_members", verbose_name=_("merged into"), editable=False)
    merged_at = models.DateTimeField(_("merged at"), null=True, blank=True, editable=False)
    erased_at = models.DateTimeField(_("personal data erased at"), null=True, blank=True, editable=False,
                                     help_text=_("Phone, name and identities were pseudonymised on request; "
                                                 "the ledgers are kept."))
    created_at = models.DateTimeField(_("registered at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(points_available__gte=0), name="member_points_available_non_negative"),
            models.CheckConstraint(condition=Q(points_frozen__gte=0), name="member_points_frozen_non_negative"),
            models.CheckConstraint(condition=Q(points_debt__gte=0), name="member_points_debt_non_negative"),
            models.CheckConstraint(condition=Q(wallet_principal__gte=0), name="member_wallet_principal_non_negative"),
            models.CheckConstraint(condition=Q(wallet_bonus__gte=0), name="member_wallet_bonus_non_negative"),
            models.CheckConstraint(condition=~Q(merged_into=F("id")), name="member_not_merged_into_itself"),
        ]

    def __str__(self) -> str:
        return f"{self.phone} {self.name}".strip()

    @property
    def is_merged(self) -> bool:
        return self.merged_into_id is not None

    @property
    def points_balance(self) -> int:
        """Available points less the recorded debt (negative while in debt)."""
        return self.points_available - self.points_debt

    @property
    def wallet_balance(self) -> Decimal:
        return self.wallet_principal + self.wallet_bonus


class IdentityKind(models.TextChoices):
    WECHAT_OPENID = "wechat_openid", _("WeChat openid")
    WECHAT_UNIONID = "wechat_unionid", _("WeChat unionid")
    PARTNER = "partner", _("Partner customer id")


class MemberIdentity(models.Model):
    """An outside identifier of the member.  ``namespace`` is the WeChat app id or partner code
    (empty when global, e.g. a unionid), so two partners' customer ids can never collide."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="identities", verbose_name=_("member"))
    kind = models.CharField(_("kind"), max_length=20, choices=IdentityKind.choices)
    namespace = models.CharField(_("app id / partner"), max_length=64, blank=True, default="")
    value = models.CharField(_("identifier"), max_length=128)
    created_at = models.DateTimeField(_("linked at"), auto_now_add=True)

    class Meta:
        verbose_name = _("member identity")
        verbose_name_plural = _("member identities")
        ordering = ["kind", "namespace", "value"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "namespace", "value"], name="member_identity_unique"),
            models.CheckConstraint(condition=~Q(value=""), name="member_identity_value_not_empty"),
        ]

    def __str__(self) -> str:
        prefix = f"{self.namespace}:" if self.namespace else ""
        return f"{self.get_kind_display()} {prefix}{self.value}"


class MemberMerge(models.Model):
    """Who merged which duplicate into which member, when, and what moved."""

    source = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="merges_out",
                               verbose_name=_("merged member"))
    target = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="merges_in",
                               verbose_name=_("surviving member"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("merged by"))
    note = models.CharField(_("note"), max_length=300, blank=True, default="")
    moved = models.JSONField(_("what moved"), default=dict, blank=True)
    created_at = models.DateTimeField(_("merged at"), auto_now_add=True)

    class Meta:
        verbose_name = _("member merge")
        verbose_name_plural = _("member merges")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.source_id} → {self.target_id}"


class MemberSpend(models.Model):
    """Paid spend of an order (negative for a return): what tiers are computed from."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="spend_records",
                               verbose_name=_("member"))
    order_number = models.CharField(_("order number"), max_length=30)
    channel = models.CharField(_("channel"), max_length=20)
    amount = models.DecimalField(_("amount (CNY)"), **MONEY)
    at = models.DateTimeField(_("paid / returned at"))
    reference = models.CharField(_("reference"), max_length=64, blank=True, default="",
                                 help_text=_("Payment or return number; one record per reference."))
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("member spend")
        verbose_name_plural = _("member spend")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["member", "at"], name="member_spend_member_at")]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="member_spend_amount_not_zero"),
            models.UniqueConstraint(fields=["order_number", "channel", "reference"], condition=~Q(reference=""),
                                    name="member_spend_reference_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.order_number} {self.amount}"
