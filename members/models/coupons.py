"""Coupons: templates, issued coupons with their life cycle, redemptions, campaigns.

A template holds the terms (kind, scope, validity, limits, who bears the cost).
Each issued coupon has a unique random code and moves issued → redeemed →
(restored: back to issued) or issued → expired; every step writes a
``CouponEvent``.  A redemption row records the discount of one order and its
split between the e-commerce department and the store; at most one redemption
per coupon is active (not restored), enforced by a partial unique index.

Channels are the order channel values (``web``, ``mini_program``,
``marketplace``, ``pos``); they are plain strings here because members never
imports orders.
"""

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from catalog.models import Category, Sku
from stores.models import StaffProfile, Store

__all__ = [
    "CouponKind",
    "CouponValidity",
    "CostBearer",
    "CouponTemplate",
    "CouponQuota",
    "CouponCampaign",
    "IssuedCoupon",
    "CouponRedemption",
    "CouponEvent",
]

MONEY = {"max_digits": 12, "decimal_places": 2}
PERCENT = {"max_digits": 5, "decimal_places": 2,
           "validators": [MinValueValidator(Decimal("0.00")), MaxValueValidator(Decimal("100.00"))]}


class CouponKind(models.TextChoices):
    FIXED = "fixed", _("Fixed amount off")
    PERCENT = "percent", _("Percent off (with a cap)")
    THRESHOLD = "threshold", _("Spend X, save Y (满减)")


class CouponValidity(models.TextChoices):
    FIXED_DATES = "fixed", _("Fixed dates")
    DAYS_AFTER_ISSUE = "days", _("N days after issue")


class CostBearer(models.TextChoices):
    ECOMMERCE = "ecommerce", _("E-commerce department")
    STORE = "store", _("Store")
    SPLIT = "split", _("Split")


class CouponTemplate(models.Model):
    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True, default="")
    kind = models.CharField(_("kind"), max_length=10, choices=CouponKind.choices)
    amount = models.DecimalField(_("amount off (CNY)"), null=True, blank=True, **MONEY,
                                 help_text=_("Fixed coupons: the amount off.  Spend-and-save: the saving."))
    percent = models.DecimalField(_("percent off"), null=True, blank=True, **PERCENT,
                                  # xgettext:no-python-format
                                  help_text=_("Percent coupons: e.g. 15.00 for 15% off."))
    max_discount = models.DecimalField(_("discount cap (CNY)"), null=True, blank=True, **MONEY,
                                       help_text=_("Percent coupons: the most they take off."))
    threshold = models.DecimalField(_("minimum spend (CNY)"), default=Decimal("0.00"), **MONEY,
                                    help_text=_("Measured on the lines in scope."))
    # Scope: empty means all.  Categories include their subcategories.
    channels = ArrayField(models.CharField(max_length=20), verbose_name=_("channels"), default=list, blank=True,
                          help_text=_("Order channels (web, mini_program, marketplace, pos); empty for all."))
    stores = models.ManyToManyField(Store, blank=True, related_name="+", verbose_name=_("stores"))
    categories = models.ManyToManyField(Category, blank=True, related_name="+", verbose_name=_("categories"))
    skus = models.ManyToManyField(Sku, blank=True, related_name="+", verbose_name=_("SKUs"))
    validity = models.CharField(_("validity"), max_length=5, choices=CouponValidity.choices,
                                default=CouponValidity.FIXED_DATES)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    valid_days = models.PositiveIntegerField(_("valid for (days after issue)"), null=True, blank=True)
    total_limit = models.PositiveIntegerField(_("total quantity"), null=True, blank=True,
                                              help_text=_("How many may be issued in all; empty for no limit."))
    per_member_limit = models.PositiveIntegerField(_("per member"), null=True, blank=True, default=1,
                                                   validators=[MinValueValidator(1)],
                                                   help_text=_("How many one member may receive (issued, "
                                                               "claimed or shared to them); empty for no limit."))
    issued_count = models.PositiveIntegerField(_("issued"), default=0, editable=False)
    bearer = models.CharField(_("cost borne by"), max_length=10, choices=CostBearer.choices,
                              default=CostBearer.ECOMMERCE)
    ecommerce_share_percent = models.DecimalField(
        _("e-commerce share (%)"), default=Decimal("100.00"), **PERCENT,
        help_text=_("For a split: the percentage of the discount borne by the e-commerce department."))
    claimable_online = models.BooleanField(_("members may claim it online"), default=False)
    guide_can_issue = models.BooleanField(_("guides may hand it out"), default=False)
    shareable = models.BooleanField(_("members may share it"), default=False)
    stacks_with_promotions = models.BooleanField(
        _("stacks with promotions"), default=True,
        help_text=_("If not, a sale takes either the promotions or this coupon, whichever saves the customer more."))
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="fixed") | Q(amount__gt=0), name="coupon_template_fixed_amount"),
            models.CheckConstraint(
                condition=~Q(kind="threshold") | (Q(amount__gt=0) & Q(threshold__gt=0)),
                name="coupon_template_threshold_terms"),
            models.CheckConstraint(
                condition=~Q(kind="percent") | (Q(percent__gt=0) & Q(percent__lt=100)),
                name="coupon_template_percent_terms"),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="coupon_template_threshold_non_negative"),
            models.CheckConstraint(condition=Q(max_discount__isnull=True) | Q(max_discount__gt=0),
                                   name="coupon_template_cap_positive"),
            models.CheckConstraint(
                condition=~Q(validity="fixed") | (Q(valid_from__isnull=False) & Q(valid_until__gt=F("valid_from"))),
                name="coupon_template_fixed_dates"),
            models.CheckConstraint(condition=~Q(validity="days") | Q(valid_days__gt=0),
                                   name="coupon_template_valid_days"),
            models.CheckConstraint(condition=Q(per_member_limit__isnull=True) | Q(per_member_limit__gt=0),
                                   name="coupon_template_per_member_positive"),
            models.CheckConstraint(condition=Q(total_limit__isnull=True) | Q(issued_count__lte=F("total_limit")),
                                   name="coupon_template_within_total_limit"),
            models.CheckConstraint(condition=Q(ecommerce_share_percent__gte=0)
                                   & Q(ecommerce_share_percent__lte=100),
                                   name="coupon_template_share_percent_range"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def clean(self) -> None:
        """The database constraints above, as form errors in the user's language."""
        errors: dict[str, str] = {}
        if self.kind in (CouponKind.FIXED, CouponKind.THRESHOLD) and not (self.amount and self.amount > 0):
            errors["amount"] = _("Enter the amount off.")
        if self.kind == CouponKind.THRESHOLD and not (self.threshold and self.threshold > 0):
            errors["threshold"] = _("A spend-and-save coupon needs a minimum spend.")
        if self.kind == CouponKind.PERCENT and not (self.percent and 0 < self.percent < 100):
            errors["percent"] = _("Enter a percentage between 0 and 100.")
        if self.validity == CouponValidity.FIXED_DATES:
            if not self.valid_from or not self.valid_until or self.valid_until <= self.valid_from:
                errors["valid_until"] = _("Fixed dates need a start and a later end.")
        elif not self.valid_days:
            errors["valid_days"] = _("Enter for how many days a coupon is valid after it is issued.")
        if self.bearer == CostBearer.SPLIT and not (0 < self.ecommerce_share_percent < 100):
            errors["ecommerce_share_percent"] = _("A split needs an e-commerce share between 0 and 100%.")
        if self.total_limit is not None and self.total_limit < self.issued_count:
            errors["total_limit"] = _("More coupons than that have already been issued.")
        if errors:
            raise ValidationError(errors)

    @property
    def ecommerce_fraction(self) -> Decimal:
        """The share of a discount borne by the e-commerce department, 0..1."""
        if self.bearer == CostBearer.ECOMMERCE:
            return Decimal(1)
        if self.bearer == CostBearer.STORE:
            return Decimal(0)
        return self.ecommerce_share_percent / Decimal(100)


class CouponQuota(models.Model):
    """How many coupons of a template a member has received: the per-member limit's counter.

    Moved by one conditional upsert, so two claims at once cannot both pass the limit.
    """

    template = models.ForeignKey(CouponTemplate, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+")
    received = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("coupon quota")
        verbose_name_plural = _("coupon quotas")
        constraints = [models.UniqueConstraint(fields=["template", "member"], name="coupon_quota_unique")]


class CouponCampaign(models.Model):
    """An HQ bulk issue of one template to a member segment, processed in resumable batches.

    ``segment`` holds Member field lookups (e.g. ``{"tier__code": "gold"}``); the
    batches walk the segment in member-id order from ``cursor``, so a stopped run
    continues where it left off, and (campaign, member) is unique on the coupons.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        RUNNING = "running", _("Issuing")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    name = models.CharField(_("name"), max_length=100)
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="campaigns",
                                 verbose_name=_("coupon template"))
    segment = models.JSONField(_("member segment"), default=dict, blank=True,
                               help_text=_('Member filters, e.g. {"tier__code": "gold"}; empty for every member.'))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    batch_size = models.PositiveIntegerField(_("batch size"), default=500,
                                             validators=[MinValueValidator(1), MaxValueValidator(10000)])
    cursor = models.BigIntegerField(_("last member id processed"), default=0, editable=False)
    total = models.PositiveIntegerField(_("members in segment"), null=True, blank=True, editable=False)
    processed = models.PositiveIntegerField(_("processed"), default=0, editable=False)
    issued = models.PositiveIntegerField(_("issued"), default=0, editable=False)
    skipped = models.PositiveIntegerField(_("skipped"), default=0, editable=False)
    note = models.CharField(_("note"), max_length=300, blank=True, default="", editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(_("last batch at"), null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("coupon campaign")
        verbose_name_plural = _("coupon campaigns")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(processed=F("issued") + F("skipped")),
                                   name="coupon_campaign_counts_add_up"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.total:
            return 0
        return min(100, self.processed * 100 // self.total)


class IssuedCoupon(models.Model):
    class Status(models.TextChoices):
        ISSUED = "issued", _("Issued")
        REDEEMED = "redeemed", _("Redeemed")
        EXPIRED = "expired", _("Expired")

    class Source(models.TextChoices):
        HQ = "hq", _("Issued by head office")
        CAMPAIGN = "campaign", _("Campaign")
        GUIDE = "guide", _("Handed out by a guide")
        CLAIM = "claim", _("Claimed online")

    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons",
                                 verbose_name=_("template"))
    code = models.CharField(_("code"), max_length=16, unique=True)
    # The owner now (sharing and merges move it); ``issued_to`` never changes.
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="coupons",
                               verbose_name=_("member"))
    issued_to = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("issued to"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ISSUED)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    campaign = models.ForeignKey(CouponCampaign, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="coupons", verbose_name=_("campaign"))
    guide = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("handed out by"))
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    issued_at = models.DateTimeField(_("issued at"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "issued_to"], condition=Q(campaign__isnull=False),
                                    name="coupon_once_per_campaign_member"),
            models.CheckConstraint(condition=Q(valid_until__gt=F("valid_from")), name="coupon_validity_window"),
        ]
        indexes = [
            models.Index(fields=["member", "status"], name="coupon_member_status_idx"),
            models.Index(fields=["valid_until"], name="coupon_issued_expiry_idx", condition=Q(status="issued")),
        ]

    def __str__(self) -> str:
        return self.display_code

    @property
    def display_code(self) -> str:
        """The code in groups of four, as printed and read aloud."""
        return "-".join(self.code[i:i + 4] for i in range(0, len(self.code), 4))


class CouponRedemption(models.Model):
    """One use of a coupon on one order; ``restored_at`` set when a full return gave it back."""

    coupon = models.ForeignKey(IssuedCoupon, on_delete=models.PROTECT, related_name="redemptions",
                               verbose_name=_("coupon"))
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("member"))
    order_number = models.CharField(_("order"), max_length=40, db_index=True)
    channel = models.CharField(_("channel"), max_length=20)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("store"))
    eligible_amount = models.DecimalField(_("amount in scope"), **MONEY)
    discount = models.DecimalField(_("discount"), **MONEY)
    ecommerce_amount = models.DecimalField(_("borne by e-commerce"), **MONEY)
    store_amount = models.DecimalField(_("borne by the store"), **MONEY)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("clerk"))
    partner = models.CharField(_("partner"), max_length=60, blank=True, default="")
    redeemed_at = models.DateTimeField(_("redeemed at"))
    restored_at = models.DateTimeField(_("restored at"), null=True, blank=True)

    class Meta:
        verbose_name = _("coupon redemption")
        verbose_name_plural = _("coupon redemptions")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["coupon"], condition=Q(restored_at__isnull=True),
                                    name="coupon_one_active_redemption"),
            models.CheckConstraint(condition=Q(discount__gt=0) & Q(discount__lte=F("eligible_amount")),
                                   name="coupon_redemption_discount_range"),
            models.CheckConstraint(condition=Q(ecommerce_amount__gte=0) & Q(store_amount__gte=0)
                                   & Q(discount=F("ecommerce_amount") + F("store_amount")),
                                   name="coupon_redemption_split_adds_up"),
        ]

    def __str__(self) -> str:
        return f"{self.coupon_id} @ {self.order_number}"


class CouponEvent(models.Model):
    """Append-only log of a coupon's life: who, when, where, through which channel or partner."""

    class Kind(models.TextChoices):
        ISSUED = "issued", _("Issued")
        SHARED = "shared", _("Shared to another member")
        REDEEMED = "redeemed", _("Redeemed")
        RESTORED = "restored", _("Restored by a return")
        EXPIRED = "expired", _("Expired")
        MERGED = "merged", _("Moved by a member merge")

    coupon = models.ForeignKey(IssuedCoupon, on_delete=models.PROTECT, related_name="events",
                               verbose_name=_("coupon"))
    kind = models.CharField(_("event"), max_length=10, choices=Kind.choices)
    at = models.DateTimeField(_("time"), db_index=True)
    channel = models.CharField(_("channel"), max_length=20, blank=True, default="")
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("store"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("user"))
    partner = models.CharField(_("partner"), max_length=60, blank=True, default="")
    order_number = models.CharField(_("order"), max_length=40, blank=True, default="")
    from_member = models.ForeignKey("members.Member", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("from member"))
    to_member = models.ForeignKey("members.Member", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+", verbose_name=_("to member"))
    note = models.CharField(_("note"), max_length=300, blank=True, default="")

    class Meta:
        verbose_name = _("coupon event")
        verbose_name_plural = _("coupon events")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.at:%Y-%m-%d %H:%M}"
