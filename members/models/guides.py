"""Shop assistants (导购): member bindings, binding rules, commission rules and the commission ledger.

A binding ties a member to a guide from ``valid_from`` to ``valid_to`` (open
ended when null).  Bindings are never deleted or re-pointed: a binding that ends
gets ``valid_to`` set to the end time and an ``ended_reason``, so the history
answers "who was this member's guide on that day".  At most one binding per
member is open (``ended_reason`` empty), enforced by a partial unique index.

Commission is a ledger: ``CommissionEntry`` rows are only ever inserted (a
database trigger refuses UPDATE and DELETE).  Each entry moves the frozen and/or
released balance of one guide; ``GuideCommissionBalance`` caches Σ entries.
"""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from catalog.models import Category, Sku
from stores.models import Region, StaffProfile, Store

__all__ = [
    "BindingPolicy",
    "GuideLeavePolicy",
    "GuideBindingRule",
    "GuideBinding",
    "CommissionRule",
    "CommissionEntry",
    "GuideCommissionBalance",
    "Guide",
    "GuideQrScan",
]

MONEY = {"max_digits": 12, "decimal_places": 2}


class BindingPolicy(models.TextChoices):
    FIRST_WINS = "first_wins", _("First binding wins (protected until it expires)")
    LAST_WINS = "last_wins", _("Last binding wins (a new scan rebinds)")


class GuideLeavePolicy(models.TextChoices):
    END = "end", _("Bindings end")
    TRANSFER = "transfer", _("Bindings move to the store manager")
    KEEP = "keep", _("Bindings stay until they expire")


class GuideBindingRule(models.Model):
    """How binding works in a region, or everywhere (no region).  The region's rule wins."""

    region = models.OneToOneField(Region, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                  verbose_name=_("region"), help_text=_("Empty for the default rule."))
    policy = models.CharField(_("when a member scans another guide"), max_length=10, choices=BindingPolicy.choices,
                              default=BindingPolicy.FIRST_WINS)
    valid_days = models.PositiveIntegerField(_("binding valid for (days)"), null=True, blank=True, default=365,
                                             validators=[MinValueValidator(1)],
                                             help_text=_("Empty: a binding never expires."))
    on_guide_leave = models.CharField(_("when the guide leaves"), max_length=10, choices=GuideLeavePolicy.choices,
                                      default=GuideLeavePolicy.TRANSFER)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("guide binding rule")
        verbose_name_plural = _("guide binding rules")
        constraints = [
            # One default rule: region NULL counts as a value here.
            models.UniqueConstraint(fields=["region"], name="guide_binding_rule_one_per_region",
                                    nulls_distinct=False),
            models.CheckConstraint(condition=Q(valid_days__isnull=True) | Q(valid_days__gt=0),
                                   name="guide_binding_rule_valid_days_positive"),
        ]

    def __str__(self) -> str:
        return str(self.region) if self.region_id else str(_("Default rule"))


class GuideBinding(models.Model):
    class Source(models.TextChoices):
        QR = "qr", _("Scanned the guide's QR code")
        POS = "pos", _("Registered by the guide at the POS")
        API = "api", _("Partner / API")
        TRANSFER = "transfer", _("Moved from a guide who left")
        MERGE = "merge", _("Moved by a member merge")

    class EndReason(models.TextChoices):
        OPEN = "", _("Open")
        REPLACED = "replaced", _("Replaced by a newer binding")
        EXPIRED = "expired", _("Expired")
        GUIDE_LEFT = "guide_left", _("Guide left")
        TRANSFERRED = "transferred", _("Transferred to the store manager")
        MERGED = "merged", _("Member merged")

    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="guide_bindings",
                               verbose_name=_("member"))
    guide = models.ForeignKey(StaffProfile, on_delete=models.PROTECT, related_name="member_bindings",
                              verbose_name=_("guide"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("store"))
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    valid_from = models.DateTimeField(_("valid from"))
    # Planned expiry while open; the actual end once ended.
    valid_to = models.DateTimeField(_("valid to"), null=True, blank=True)
    ended_reason = models.CharField(_("ended because"), max_length=12, choices=EndReason.choices, blank=True,
                                    default="")
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("continues"))
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("guide binding")
        verbose_name_plural = _("guide bindings")
        ordering = ["-valid_from", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["member"], condition=Q(ended_reason=""),
                                    name="guide_binding_one_open_per_member"),
            models.CheckConstraint(condition=Q(valid_to__isnull=True) | Q(valid_to__gte=F("valid_from")),
                                   name="guide_binding_window"),
            models.CheckConstraint(condition=Q(ended_reason="") | Q(valid_to__isnull=False),
                                   name="guide_binding_ended_has_end"),
        ]
        indexes = [
            models.Index(fields=["member", "valid_from"], name="guide_binding_member_idx"),
            models.Index(fields=["guide"], name="guide_binding_open_guide_idx", condition=Q(ended_reason="")),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} → {self.guide}"

    def is_current(self, at) -> bool:
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)


class CommissionRule(models.Model):
    """A commission rate for a SKU, a category (and its subcategories) or everything, per store or global.

    The most specific rule wins: SKU over category over catch-all, a deeper
    category over its parents, and at the same level a store's rule over the
    global one.
    """

    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                              verbose_name=_("store"), help_text=_("Empty: every store."))
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("category"))
    sku = models.ForeignKey(Sku, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                            verbose_name=_("SKU"))
    rate_percent = models.DecimalField(_("rate (%)"), max_digits=5, decimal_places=2,
                                       validators=[MinValueValidator(Decimal("0.00")),
                                                   MaxValueValidator(Decimal("100.00"))])
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("commission rule")
        verbose_name_plural = _("commission rules")
        ordering = ["store_id", "category_id", "sku_id"]
        constraints = [
            models.UniqueConstraint(fields=["store", "category", "sku"], name="commission_rule_unique_scope",
                                    nulls_distinct=False),
            models.CheckConstraint(condition=Q(category__isnull=True) | Q(sku__isnull=True),
                                   name="commission_rule_category_or_sku"),
            models.CheckConstraint(condition=Q(rate_percent__gte=0) & Q(rate_percent__lte=100),
                                   name="commission_rule_rate_range"),
        ]

    def __str__(self) -> str:
        target = self.sku or self.category or _("everything")
        where = self.store or _("all stores")
        return f"{target} @ {where}: {self.rate_percent}%"


class CommissionEntry(models.Model):
    """One append-only commission ledger entry.

    accrual: +frozen for one order line, frozen until ``frozen_until``;
    release: −frozen +released of what is left of one accrual (at most one per accrual);
    clawback: −frozen (not yet released) or −released, for returned goods.
    """

    class Kind(models.TextChoices):
        ACCRUAL = "accrual", _("Accrued (frozen)")
        RELEASE = "release", _("Released")
        CLAWBACK = "clawback", _("Clawed back")

    guide = models.ForeignKey(StaffProfile, on_delete=models.PROTECT, related_name="commission_entries",
                              verbose_name=_("guide"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    accrual = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("accrual"))
    order_number = models.CharField(_("order"), max_length=40, db_index=True)
    line_no = models.PositiveSmallIntegerField(_("line"), null=True, blank=True)
    channel = models.CharField(_("channel"), max_length=20, blank=True, default="")
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("store"))
    sku = models.ForeignKey(Sku, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                            verbose_name=_("SKU"))
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("category"))
    # Accrual: the line amount commission is paid on; clawback: the returned part of it.
    base_amount = models.DecimalField(_("base amount"), default=Decimal("0.00"), **MONEY)
    rate_percent = models.DecimalField(_("rate (%)"), max_digits=5, decimal_places=2, null=True, blank=True)
    frozen_delta = models.DecimalField(_("frozen change"), default=Decimal("0.00"), **MONEY)
    released_delta = models.DecimalField(_("released change"), default=Decimal("0.00"), **MONEY)
    frozen_until = models.DateTimeField(_("frozen until"), null=True, blank=True)
    reference = models.CharField(_("reference"), max_length=60, blank=True, default="",
                                 help_text=_("For clawbacks: the return it belongs to."))
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("commission entry")
        verbose_name_plural = _("commission entries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["order_number", "line_no"], condition=Q(kind="accrual"),
                                    name="commission_accrual_once_per_line"),
            models.UniqueConstraint(fields=["accrual"], condition=Q(kind="release"),
                                    name="commission_release_once"),
            models.UniqueConstraint(fields=["accrual", "reference"], condition=Q(kind="clawback") & ~Q(reference=""),
                                    name="commission_clawback_once_per_reference"),
            models.CheckConstraint(
                condition=~Q(kind="accrual") | (Q(accrual__isnull=True) & Q(line_no__isnull=False)
                                                & Q(frozen_delta__gt=0) & Q(released_delta=0)
                                                & Q(frozen_until__isnull=False)),
                name="commission_accrual_shape"),
            models.CheckConstraint(
                condition=~Q(kind="release") | (Q(accrual__isnull=False) & Q(frozen_delta__lte=0)
                                                & Q(released_delta=-F("frozen_delta"))),
                name="commission_release_shape"),
            models.CheckConstraint(
                condition=~Q(kind="clawback") | (Q(accrual__isnull=False) & Q(frozen_delta__lte=0)
                                                 & Q(released_delta__lte=0)),
                name="commission_clawback_shape"),
        ]
        indexes = [
            models.Index(fields=["frozen_until"], name="commission_accrual_due_idx", condition=Q(kind="accrual")),
            models.Index(fields=["accrual", "kind"], name="commission_entry_accrual_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.order_number} {self.frozen_delta + self.released_delta}"

    @property
    def amount(self):
        return self.frozen_delta + self.released_delta


class GuideCommissionBalance(models.Model):
    """Cached Σ of a guide's commission entries; moved only together with a new entry."""

    guide = models.OneToOneField(StaffProfile, on_delete=models.PROTECT, related_name="commission_balance",
                                 verbose_name=_("guide"))
    frozen = models.DecimalField(_("frozen"), default=Decimal("0.00"), **MONEY)
    released = models.DecimalField(_("released"), default=Decimal("0.00"), **MONEY)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("guide commission balance")
        verbose_name_plural = _("guide commission balances")
        constraints = [
            models.CheckConstraint(condition=Q(frozen__gte=0), name="guide_commission_frozen_non_negative"),
            # No payouts yet, so released never goes below what was released; a payout
            # feature that allows debt would relax this on purpose.
            models.CheckConstraint(condition=Q(released__gte=0), name="guide_commission_released_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.guide}: {self.frozen} / {self.released}"


class Guide(StaffProfile):
    """The shop assistants (role guide) as head office sees them: their QR codes to print."""

    class Meta:
        proxy = True
        verbose_name = _("guide QR code")
        verbose_name_plural = _("guide QR codes")


class GuideQrScan(models.Model):
    """One opening of a guide's QR page (``/g/<scene>``): how often each guide's code is scanned."""

    guide = models.ForeignKey(StaffProfile, on_delete=models.PROTECT, related_name="+", verbose_name=_("guide"))
    scanned_at = models.DateTimeField(_("scanned at"), auto_now_add=True, db_index=True)
    user_agent = models.CharField(_("browser"), max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("guide QR scan")
        verbose_name_plural = _("guide QR scans")
        indexes = [models.Index(fields=["guide", "scanned_at"], name="members_guideqrscan_guide_at")]

    def __str__(self) -> str:
        return f"{self.guide_id} @ {self.scanned_at:%Y-%m-%d %H:%M}"
