"""Baskets kept on the server: each clerk's open basket at a store, and the parked ones (挂单).

The open basket follows the clerk, not the browser: logging in again, or on
another till of the store, finds it where it was.  A parked basket belongs to
the store: any clerk of the store may recall it, until it is recalled once or
the shift closes (then it expires, and the close says which ones).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from payments.models import PosShift
from stores.models import Store


class PosBasket(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("Open")
        PARKED = "parked", _("Parked")
        RECALLED = "recalled", _("Recalled")
        EXPIRED = "expired", _("Expired")

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+", verbose_name=_("store"))
    # The open basket's clerk; for a parked one, the clerk who parked it.
    clerk = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("clerk"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.OPEN)
    data = models.JSONField(_("basket"), default=dict)
    label = models.CharField(_("note"), max_length=40, blank=True, default="")
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2, null=True, blank=True)
    units = models.PositiveIntegerField(_("units"), default=0)
    shift = models.ForeignKey(PosShift, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("parked in shift"))
    updated_at = models.DateTimeField(_("updated at"))
    parked_at = models.DateTimeField(_("parked at"), null=True, blank=True)
    recalled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("recalled by"))
    recalled_at = models.DateTimeField(_("recalled at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)
    expired_shift = models.ForeignKey(PosShift, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                      verbose_name=_("expired at the close of"))

    class Meta:
        verbose_name = _("POS basket")
        verbose_name_plural = _("POS baskets")
        ordering = ["-id"]
        indexes = [models.Index(fields=["store", "state"], name="pos_basket_store_state_idx")]
        constraints = [
            models.UniqueConstraint(fields=["clerk", "store"], condition=Q(state="open"),
                                    name="pos_basket_one_open_per_clerk"),
            models.CheckConstraint(condition=Q(state="open") | Q(parked_at__isnull=False, total__isnull=False),
                                   name="pos_basket_parked_has_total"),
            models.CheckConstraint(condition=~Q(state="recalled") | Q(recalled_at__isnull=False,
                                                                     recalled_by__isnull=False),
                                   name="pos_basket_recalled_says_who"),
            models.CheckConstraint(condition=~Q(state="expired") | Q(expired_at__isnull=False),
                                   name="pos_basket_expired_says_when"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        """The short number the clerk reads out and the list shows."""
        return f"P{self.pk}"
