from decimal import Decimal

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Region(models.Model):
    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class City(models.Model):
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="cities", verbose_name=_("region"))
    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100)
    launched_on = models.DateField(_("O2O launched on"), null=True, blank=True,
                                   help_text=_("The day O2O started in this city; empty: not launched yet."))

    class Meta:
        verbose_name = _("city")
        verbose_name_plural = _("cities")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Warehouse(models.Model):
    class Kind(models.TextChoices):
        CENTRAL = "central", _("Central warehouse")
        REGIONAL = "regional", _("Regional warehouse")
        STORE = "store", _("Store stockroom")

    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    city = models.ForeignKey(City, on_delete=models.PROTECT, related_name="warehouses", verbose_name=_("city"))
    address = models.CharField(_("address"), max_length=300, blank=True, default="")
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("warehouse")
        verbose_name_plural = _("warehouses")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class CashRounding(models.TextChoices):
    """How a store rounds cash handed over the counter (抹零).  Cash due on a sale is rounded down to
    the unit and the difference is a discount on the order; a cash refund is rounded to the nearest
    unit, the difference going to the card or provider part of the refund (or recorded on the return).
    "none" keeps cash to the fen: the closing count then offers the fen coins."""

    NONE = "none", _("None: to the fen")
    JIAO = "jiao", _("To the jiao (¥0.10)")
    YUAN = "yuan", _("To the yuan (¥1.00)")


CASH_ROUNDING_UNITS = {CashRounding.NONE: Decimal("0.01"), CashRounding.JIAO: Decimal("0.10"),
                       CashRounding.YUAN: Decimal("1.00")}


class Store(models.Model):
    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100)
    city = models.ForeignKey(City, on_delete=models.PROTECT, related_name="stores", verbose_name=_("city"))
    address = models.CharField(_("address"), max_length=300, blank=True, default="")
    phone = models.CharField(_("phone"), max_length=30, blank=True, default="")
    warehouse = models.OneToOneField(
        Warehouse, on_delete=models.PROTECT, related_name="store", verbose_name=_("warehouse"),
        limit_choices_to={"kind": Warehouse.Kind.STORE},
    )
    is_active = models.BooleanField(_("active"), default=True)
    launched_on = models.DateField(_("O2O launched on"), null=True, blank=True,
                                   help_text=_("Empty: the store follows its city's launch date."))
    cash_rounding = models.CharField(
        _("cash rounding (抹零)"), max_length=10, choices=CashRounding.choices, default=CashRounding.NONE,
        help_text=_("Cash due on a sale is rounded down to this unit (the difference is a discount); cash "
                    "refunds are rounded to it. Takes effect at the next shift opened."))

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def cash_unit(self) -> Decimal:
        return CASH_ROUNDING_UNITS[self.cash_rounding]


class Role(models.TextChoices):
    HQ_ADMIN = "hq_admin", _("HQ admin")
    REGIONAL_MANAGER = "regional_manager", _("Regional manager")
    STORE_MANAGER = "store_manager", _("Store manager")
    CLERK = "clerk", _("Clerk")
    GUIDE = "guide", _("Shop assistant (guide)")


class StaffProfile(models.Model):
    """A staff member: their role, their stores (or region), and their guide code."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff",
                                verbose_name=_("user"))
    employee_no = models.CharField(_("employee number"), max_length=20, unique=True)
    display_name = models.CharField(_("name"), max_length=100)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    region = models.ForeignKey(Region, null=True, blank=True, on_delete=models.PROTECT,
                               verbose_name=_("region"), help_text=_("For regional managers."))
    stores = models.ManyToManyField(Store, through="StoreMembership", blank=True, related_name="staff",
                                    verbose_name=_("stores"))
    guide_code = models.CharField(_("guide code"), max_length=20, unique=True, null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")
        ordering = ["employee_no"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(role="regional_manager") | Q(region__isnull=False),
                name="staff_regional_manager_has_region",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.employee_no} {self.display_name}"


class StoreMembership(models.Model):
    staff = models.ForeignKey(StaffProfile, on_delete=models.CASCADE, related_name="memberships")
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="memberships")
    since = models.DateField(_("since"), auto_now_add=True)

    class Meta:
        verbose_name = _("store membership")
        verbose_name_plural = _("store memberships")
        constraints = [models.UniqueConstraint(fields=["staff", "store"], name="store_membership_unique")]


class TradeArea(models.Model):
    """A city in a store's trade area (商圈): online customers shipped to there count as the
    store's, and split rules may credit it for their orders even when the central warehouse ships."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="trade_areas", verbose_name=_("store"))
    city = models.OneToOneField(City, on_delete=models.CASCADE, related_name="trade_area", verbose_name=_("city"),
                                help_text=_("One store per city."))

    class Meta:
        verbose_name = _("trade area")
        verbose_name_plural = _("trade areas")
        ordering = ["city_id"]

    def __str__(self) -> str:
        return f"{self.city} → {self.store}"


class TradeAreaPostcode(models.Model):
    """A postcode prefix in a store's trade area: an online order shipped to a postcode starting with
    it counts as the store's (split rules may credit the store even when the central warehouse
    ships).  Finer than a city: when a postcode matches, it decides before the city's trade area.

    Two stores may list overlapping prefixes.  The longest matching prefix wins; on a tie, the
    store in the city the order is shipped to, then the store opened first (lowest id)."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="trade_postcodes",
                              verbose_name=_("store"))
    prefix = models.CharField(_("postcode prefix"), max_length=6,
                              validators=[RegexValidator(r"^[0-9]{1,6}$", _("One to six digits."))],
                              help_text=_("The first digits of the postcodes (邮编) served, e.g. 3100 or 310012."))
    district = models.CharField(_("district"), max_length=50, blank=True, default="",
                                help_text=_("For reference: the district these postcodes cover."))

    class Meta:
        verbose_name = _("trade-area postcode")
        verbose_name_plural = _("trade-area postcodes")
        ordering = ["prefix", "store_id"]
        constraints = [
            models.UniqueConstraint(fields=["store", "prefix"], name="trade_postcode_once"),
            models.CheckConstraint(condition=Q(prefix__regex=r"^[0-9]{1,6}$"), name="trade_postcode_digits"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}* → {self.store}"


# --- roll-out: which O2O capabilities are on where ------------------------------------------


class Capability(models.TextChoices):
    PICKUP = "pickup", _("Pickup in store")
    SHIP_FROM_STORE = "ship_from_store", _("Ship from store")
    RETURN_ANYWHERE = "return_anywhere", _("Return anywhere")
    WALLET_CROSS_STORE = "wallet_cross_store", _("Cross-store wallet spending")
    GUIDE = "guide", _("Guide binding and commission")
    COUPON_SCOPES = "coupon_scopes", _("Coupon scopes")
    SPLIT_RULES = "split_rules", _("Revenue split rules")


class CapabilitySwitch(models.Model):
    """One capability switched on or off at one level: a store, a city, a region, or everywhere
    (no place: the global default).  The nearest level that has a switch decides; without any
    switch a capability is on, so a retailer that never configures a roll-out keeps everything."""

    capability = models.CharField(_("capability"), max_length=30, choices=Capability.choices)
    region = models.ForeignKey(Region, null=True, blank=True, on_delete=models.CASCADE, related_name="switches",
                               verbose_name=_("region"))
    city = models.ForeignKey(City, null=True, blank=True, on_delete=models.CASCADE, related_name="switches",
                             verbose_name=_("city"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.CASCADE, related_name="switches",
                              verbose_name=_("store"))
    enabled = models.BooleanField(_("on"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("updated by"))

    class Meta:
        verbose_name = _("capability switch")
        verbose_name_plural = _("capability switches")
        ordering = ["capability", "region_id", "city_id", "store_id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(region__isnull=True, city__isnull=True) | Q(region__isnull=True, store__isnull=True)
                           | Q(city__isnull=True, store__isnull=True)),
                name="capability_switch_one_level"),
            models.UniqueConstraint(fields=["capability", "region", "city", "store"], nulls_distinct=False,
                                    name="capability_switch_once"),
        ]

    def __str__(self) -> str:
        return f"{self.get_capability_display()} @ {self.place or _('everywhere')}: {self.enabled}"

    @property
    def place(self):
        return self.store or self.city or self.region

    @property
    def level(self) -> str:
        return "store" if self.store_id else "city" if self.city_id else "region" if self.region_id else "default"


class RolloutChange(models.Model):
    """The audit row of a roll-out change: a switch set or cleared, a launch date set, by whom."""

    class Kind(models.TextChoices):
        SWITCH = "switch", _("Switch set")
        CLEAR = "clear", _("Switch cleared")
        LAUNCH = "launch", _("Launch date set")

    batch = models.UUIDField(_("batch"), db_index=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    capability = models.CharField(_("capability"), max_length=30, blank=True, default="",
                                  choices=Capability.choices)
    region = models.ForeignKey(Region, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                               verbose_name=_("region"))
    city = models.ForeignKey(City, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("city"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                              verbose_name=_("store"))
    before = models.CharField(_("before"), max_length=20, blank=True, default="")
    after = models.CharField(_("after"), max_length=20, blank=True, default="")
    source = models.CharField(_("source"), max_length=100, blank=True, default="",
                              help_text=_("For a copy: the pilot it was copied from."))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", verbose_name=_("by"))
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("roll-out change")
        verbose_name_plural = _("roll-out changes")
        ordering = ["-created_at", "-id"]
