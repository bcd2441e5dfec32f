from django.conf import settings
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

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


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
