from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from catalog.validators import validate_barcode


class Category(models.Model):
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="children", verbose_name=_("parent"))
    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    # Materialised path of codes ("apparel/tops/tshirts"): cheap subtree filters.
    path = models.CharField(_("path"), max_length=400, editable=False, db_index=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["path"]

    def __str__(self) -> str:
        return self.name


class Brand(models.Model):
    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        verbose_name = _("brand")
        verbose_name_plural = _("brands")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProductLine(models.TextChoices):
    """How merchandising organises a product; revenue split rules can be conditioned on it."""

    NONE = "", _("Not classified")
    BULK = "bulk", _("Bulk line (大货)")
    NEW = "new", _("New line (N品)")
    ONLINE_ONLY = "online_only", _("Online exclusive (电商专供)")


class Product(models.Model):
    """A product (SPU); what is sold and stocked is its SKUs."""

    code = models.CharField(_("SPU code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    brand = models.ForeignKey(Brand, null=True, blank=True, on_delete=models.PROTECT, verbose_name=_("brand"))
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products",
                                 verbose_name=_("category"))
    description = models.TextField(_("description"), blank=True, default="")
    line = models.CharField(_("product line"), max_length=20, blank=True, default="", choices=ProductLine.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Sku(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="skus", verbose_name=_("product"))
    code = models.CharField(_("SKU code"), max_length=40, unique=True)
    barcode = models.CharField(_("barcode"), max_length=14, unique=True, null=True, blank=True,
                               validators=[validate_barcode])
    name = models.CharField(_("name"), max_length=200)
    color = models.CharField(_("colour"), max_length=40, blank=True, default="")
    size = models.CharField(_("size"), max_length=40, blank=True, default="")
    attributes = models.JSONField(_("other attributes"), default=dict, blank=True)
    list_price = models.DecimalField(_("list price (CNY)"), max_digits=12, decimal_places=2,
                                     validators=[MinValueValidator(Decimal("0.00"))])
    cost_price = models.DecimalField(_("cost price (CNY)"), max_digits=12, decimal_places=2,
                                     default=Decimal("0.00"), validators=[MinValueValidator(Decimal("0.00"))])
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(list_price__gte=0), name="sku_list_price_non_negative"),
            models.CheckConstraint(condition=Q(cost_price__gte=0), name="sku_cost_price_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"
