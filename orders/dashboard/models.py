"""Report roll-ups read by the head-office dashboard.

The dashboard never sums the order book on a page view: ``rollups.sales_rollup_refresh``
rebuilds these rows for a span of business days from one GROUP BY, and the beat job
re-runs it for the last few days so late payments, cancellations and returns land.
"""

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from stores.models import Store

__all__ = ["DailySalesRollup"]

MONEY = {"max_digits": 14, "decimal_places": 2}


class DailySalesRollup(models.Model):
    """Sales of one business day (Asia/Shanghai) for one store and channel.

    ``store`` is where the order was sold or picked up; orders shipped from a warehouse
    have none.  Orders count on the day they were paid; returns count on the day they
    were received, against the original order's store and channel, so ``net`` is what
    each channel and store kept.
    """

    day = models.DateField(_("day"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                              verbose_name=_("store"))
    channel = models.CharField(_("channel"), max_length=20)
    orders = models.PositiveIntegerField(_("orders"), default=0)
    units = models.IntegerField(_("units"), default=0)
    gross = models.DecimalField(_("gross sales"), default=Decimal("0.00"), **MONEY)
    discounts = models.DecimalField(_("discounts"), default=Decimal("0.00"), **MONEY)
    returns = models.DecimalField(_("returns"), default=Decimal("0.00"), **MONEY)
    returned_orders = models.PositiveIntegerField(_("returns (count)"), default=0)
    net = models.DecimalField(_("net sales"), default=Decimal("0.00"), **MONEY)
    refreshed_at = models.DateTimeField(_("refreshed at"))

    class Meta:
        verbose_name = _("daily sales roll-up")
        verbose_name_plural = _("daily sales roll-ups")
        ordering = ["-day", "store_id", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["day", "store", "channel"], name="daily_sales_rollup_key",
                                    nulls_distinct=False),
        ]
        indexes = [
            models.Index(fields=["store", "day"], name="daily_sales_rollup_store_idx"),
            models.Index(fields=["channel", "day"], name="daily_sales_rollup_channel_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.store_id or '-'} {self.channel}"
