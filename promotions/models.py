"""Promotions HQ runs the same in every channel: 满减, 满折, 第N件N折, 买赠, 会员价, 限时特价 and bundles.

A promotion is a row HQ schedules; ``promotions.selectors`` compiles the live ones into engine
rules (``promotions.engine``) once per sale.  Its budget and its number of uses are counters moved
only by ``promotions.services.promotions_consume`` with a conditional UPDATE in the sale's
transaction, so a cap holds under any number of concurrent sales; the CHECK constraints are the
last word.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from catalog.models import Category, Product, Sku
from o2o.channels import Channel
from promotions import engine
from stores.models import City, Region, Store

MONEY = {"max_digits": 12, "decimal_places": 2}
PERCENT = {"max_digits": 5, "decimal_places": 2, "validators": [MinValueValidator(Decimal("0.01")),
                                                                MaxValueValidator(Decimal("100"))]}


class Kind(models.TextChoices):
    THRESHOLD_OFF = engine.THRESHOLD_OFF, _("Spend and save (满减)")
    THRESHOLD_PERCENT = engine.THRESHOLD_PERCENT, _("Spend and get a percentage off (满折)")
    NTH_ITEM = engine.NTH_ITEM, _("N-th item at a percentage off (第N件N折)")
    GIFT = engine.GIFT, _("Buy and get a gift (买赠)")
    MEMBER_PRICE = engine.MEMBER_PRICE, _("Member price by tier (会员价)")
    SPECIAL_PRICE = engine.SPECIAL_PRICE, _("Limited-time special price (限时特价)")
    BUNDLE = engine.BUNDLE, _("Bundle price")


class Bearer(models.TextChoices):
    HQ = "hq", _("Head office")
    ECOMMERCE = "ecommerce", _("E-commerce department")
    STORE = "store", _("Store")
    SUPPLIER = "supplier", _("Supplier")


class Promotion(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")

    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100, help_text=_("Printed on the receipt."))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    priority = models.PositiveIntegerField(_("priority"), default=100,
                                           help_text=_("Smaller runs first among promotions of the same stage "
                                                       "(item prices before spend-and-save)."))
    exclusive_group = models.CharField(_("exclusivity group"), max_length=40, blank=True, default="",
                                       help_text=_("Of the promotions sharing a group, only the one saving the "
                                                   "customer most applies. Empty: stacks with every other."))
    bearer = models.CharField(_("cost borne by"), max_length=10, choices=Bearer.choices, default=Bearer.HQ)
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    daily_from = models.TimeField(_("each day from"), null=True, blank=True)
    daily_until = models.TimeField(_("each day until"), null=True, blank=True)
    # Scope: empty means all.  Places: any store named, or any store in a city or region named.
    channels = ArrayField(models.CharField(max_length=20, choices=Channel.choices), verbose_name=_("channels"),
                          default=list, blank=True,
                          help_text=_("web, mini_program, pos; empty for all. Marketplace orders keep the "
                                      "marketplace's own prices."))
    regions = models.ManyToManyField(Region, blank=True, related_name="+", verbose_name=_("regions"))
    cities = models.ManyToManyField(City, blank=True, related_name="+", verbose_name=_("cities"))
    stores = models.ManyToManyField(Store, blank=True, related_name="+", verbose_name=_("stores"))
    categories = models.ManyToManyField(Category, blank=True, related_name="+", verbose_name=_("categories"),
                                        help_text=_("Includes their subcategories."))
    products = models.ManyToManyField(Product, blank=True, related_name="+", verbose_name=_("products"))
    skus = models.ManyToManyField(Sku, blank=True, related_name="+", verbose_name=_("SKUs"),
                                  help_text=_("Bundle: the SKUs of the bundle, one unit of each per set."))
    member_tiers = ArrayField(models.CharField(max_length=20), verbose_name=_("member tiers"), default=list,
                              blank=True, help_text=_("Tier codes; empty for every customer."))
    # The terms, by kind.
    steps = models.CharField(_("spend-and-save steps"), max_length=200, blank=True, default="",
                             help_text=_("满减: spend:off pairs, e.g. 300:50, 600:120."))
    threshold = models.DecimalField(_("minimum spend (CNY)"), default=Decimal("0.00"), **MONEY)
    percent = models.DecimalField(_("percent off"), null=True, blank=True, **PERCENT,
                                  help_text=_("满折 and N-th item: e.g. 50 for half price."))
    nth = models.PositiveSmallIntegerField(_("N-th item"), default=2, validators=[MinValueValidator(1)])
    price = models.DecimalField(_("price (CNY)"), null=True, blank=True, **MONEY,
                                help_text=_("Special price per unit; bundle price per set."))
    buy_qty = models.PositiveSmallIntegerField(_("buy quantity"), default=1, validators=[MinValueValidator(1)])
    gift_sku = models.ForeignKey(Sku, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("gift SKU"))
    gift_qty = models.PositiveSmallIntegerField(_("gift quantity"), default=1, validators=[MinValueValidator(1)])
    tier_benefits = models.CharField(_("tier benefits"), max_length=300, blank=True, default="",
                                     help_text=_("会员价: TIER=price or TIER=percent% off, e.g. GOLD=89.00, "
                                                 "SILVER=5%."))
    # Caps, enforced in the sale's transaction.
    max_uses = models.PositiveIntegerField(_("at most (sales)"), null=True, blank=True)
    budget = models.DecimalField(_("budget (CNY)"), null=True, blank=True, **MONEY,
                                 help_text=_("The most it may take off in all."))
    used_count = models.PositiveIntegerField(_("used (sales)"), default=0, editable=False)
    used_amount = models.DecimalField(_("used (CNY)"), default=Decimal("0.00"), editable=False, **MONEY)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"), editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True, editable=False)
    paused_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+", verbose_name=_("paused by"), editable=False)

    class Meta:
        verbose_name = _("promotion")
        verbose_name_plural = _("promotions")
        ordering = ["priority", "id"]
        indexes = [models.Index(fields=["status", "valid_until"], name="promotion_live_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(valid_until__gt=F("valid_from")), name="promotion_window"),
            models.CheckConstraint(condition=Q(max_uses__isnull=True) | Q(used_count__lte=F("max_uses")),
                                   name="promotion_uses_within_cap"),
            models.CheckConstraint(condition=Q(budget__isnull=True) | Q(used_amount__lte=F("budget")),
                                   name="promotion_spend_within_budget"),
            models.CheckConstraint(condition=Q(used_amount__gte=0), name="promotion_used_non_negative"),
            models.CheckConstraint(condition=Q(price__isnull=True) | Q(price__gte=0),
                                   name="promotion_price_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def clean(self) -> None:
        errors = {}
        try:
            steps = steps_parse(self.steps)
        except ValueError:
            errors["steps"] = _("Write spend:off pairs such as 300:50, 600:120.")
            steps = ()
        try:
            benefits = tier_benefits_parse(self.tier_benefits)
        except ValueError:
            errors["tier_benefits"] = _("Write TIER=price or TIER=percent%, such as GOLD=89.00, SILVER=5%.")
            benefits = ()
        need = {Kind.THRESHOLD_OFF: ("steps", bool(steps)),
                Kind.THRESHOLD_PERCENT: ("percent", self.percent is not None),
                Kind.NTH_ITEM: ("percent", self.percent is not None),
                Kind.GIFT: ("gift_sku", self.gift_sku_id is not None),
                Kind.MEMBER_PRICE: ("tier_benefits", bool(benefits)),
                Kind.SPECIAL_PRICE: ("price", self.price is not None),
                Kind.BUNDLE: ("price", self.price is not None)}.get(self.kind)
        if need and not need[1] and need[0] not in errors:
            errors[need[0]] = _("This kind of promotion needs it.")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            errors["valid_until"] = _("The end must come after the start.")
        if errors:
            raise ValidationError(errors)


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite() or value < 0:
        raise ValueError(text)
    return value


def steps_parse(text: str) -> tuple[tuple[Decimal, Decimal], ...]:
    """"300:50, 600:120" → ((300, 50), (600, 120)), ascending by spend.  Raises ValueError."""
    steps = []
    for part in filter(None, (p.strip() for p in re.split(r"[,，;；]", text or ""))):
        spend, sep, off = part.replace("：", ":").partition(":")
        if not sep:
            raise ValueError(part)
        spend, off = _decimal(spend), _decimal(off)
        if off <= 0 or spend <= 0:
            raise ValueError(part)
        steps.append((spend, off))
    return tuple(sorted(steps))


def tier_benefits_parse(text: str) -> tuple[tuple[str, engine.TierBenefit], ...]:
    """"GOLD=89.00, SILVER=5%" → the tier's unit price, or percentage off.  Raises ValueError."""
    out = []
    for part in filter(None, (p.strip() for p in re.split(r"[,，;；]", text or ""))):
        tier, sep, value = part.partition("=")
        tier, value = tier.strip(), value.strip().replace("％", "%")
        if not sep or not tier:
            raise ValueError(part)
        if value.endswith("%"):
            pct = _decimal(value[:-1])
            if not 0 < pct <= 100:
                raise ValueError(part)
            out.append((tier, engine.TierBenefit(percent=pct)))
        else:
            out.append((tier, engine.TierBenefit(price=_decimal(value))))
    return tuple(out)
