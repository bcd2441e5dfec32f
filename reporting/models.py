"""Report roll-ups read by the head-office dashboard.

The dashboard never sums the order book on a page view: ``rollups.sales_rollup_refresh``
rebuilds these rows for a span of business days from one GROUP BY, and the beat job
re-runs it for the last few days so late payments, cancellations and returns land.
"""

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from catalog.models import Sku
from members.models import Tier
from stores.models import StaffProfile, Store, Warehouse

__all__ = ["DailyCommissionRollup", "DailyCouponRollup", "DailyGuideSalesRollup", "DailyMemberChannels",
           "DailyO2ORollup", "DailySalesRollup", "DailyStockSoldRollup", "MemberActivityCount", "MemberActivityDay",
           "MemberActivityScope", "MemberTierRollup"]

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
        db_table = "orders_dailysalesrollup"  # the table kept its name when the model moved
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


class DailyStockSoldRollup(models.Model):
    """Units that left one warehouse as sales of one SKU on one business day (Asia/Shanghai).

    Summed from the stock move ledger (sale moves), so it is what the turnover and days-of-cover
    figures count; their cost is priced at read time, at the SKU's current cost, as before.
    """

    day = models.DateField(_("day"))
    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="+",
                                  verbose_name=_("warehouse"))
    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="+", verbose_name=_("SKU"))
    units = models.IntegerField(_("units"), default=0)
    refreshed_at = models.DateTimeField(_("refreshed at"))

    class Meta:
        db_table = "orders_dailystocksoldrollup"  # the table kept its name when the model moved
        verbose_name = _("daily stock sold roll-up")
        verbose_name_plural = _("daily stock sold roll-ups")
        ordering = ["-day", "warehouse_id", "sku_id"]
        constraints = [
            models.UniqueConstraint(fields=["day", "warehouse", "sku"], name="daily_stock_sold_rollup_key"),
        ]
        indexes = [models.Index(fields=["warehouse", "day"], name="daily_stock_sold_wh_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.warehouse_id} {self.sku_id}"


class DailyCommissionRollup(models.Model):
    """Net commission booked for one guide on one business day (Asia/Shanghai).

    Summed from the commission ledger (accruals, releases and claw-backs as they were written),
    which is what the guide leaderboard shows for a period.
    """

    day = models.DateField(_("day"))
    guide = models.ForeignKey(StaffProfile, on_delete=models.CASCADE, related_name="+", verbose_name=_("guide"))
    amount = models.DecimalField(_("commission"), default=Decimal("0.00"), **MONEY)
    refreshed_at = models.DateTimeField(_("refreshed at"))

    class Meta:
        db_table = "orders_dailycommissionrollup"  # the table kept its name when the model moved
        verbose_name = _("daily commission roll-up")
        verbose_name_plural = _("daily commission roll-ups")
        ordering = ["-day", "guide_id"]
        constraints = [models.UniqueConstraint(fields=["day", "guide"], name="daily_commission_rollup_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.guide_id}"


class DailyO2ORollup(models.Model):
    """The O2O counts of one business day (Asia/Shanghai) for one store, channel and fulfillment.

    Two kinds of facts share a row, each additive on its own:

    * orders paid that day and not cancelled, against the order's store (``orders``,
      ``picked_up`` and ``pickup_seconds``: handed-over pickups and their summed time from
      payment to handover);
    * returns received that day, against the store that took them back and the original
      order's channel and fulfillment (``returns``, ``returns_amount``).

    Late changes to an order (handover, cancellation) recompute its payment day; see
    ``rollups.sales_rollup_refresh_recent``.
    """

    day = models.DateField(_("day"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                              verbose_name=_("store"))
    channel = models.CharField(_("channel"), max_length=20)
    fulfillment = models.CharField(_("fulfillment"), max_length=20)
    orders = models.PositiveIntegerField(_("orders"), default=0)
    picked_up = models.PositiveIntegerField(_("picked up"), default=0)
    pickup_seconds = models.DecimalField(_("time to pickup (seconds)"), max_digits=20, decimal_places=6,
                                         default=Decimal("0"))
    returns = models.PositiveIntegerField(_("returns (count)"), default=0)
    returns_amount = models.DecimalField(_("returns"), default=Decimal("0.00"), **MONEY)

    class Meta:
        db_table = "orders_dailyo2orollup"  # the table kept its name when the model moved
        verbose_name = _("daily O2O roll-up")
        verbose_name_plural = _("daily O2O roll-ups")
        ordering = ["-day", "store_id", "channel", "fulfillment"]
        constraints = [
            models.UniqueConstraint(fields=["day", "store", "channel", "fulfillment"], name="daily_o2o_rollup_key",
                                    nulls_distinct=False),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.store_id or '-'} {self.channel} {self.fulfillment}"


class DailyGuideSalesRollup(models.Model):
    """Orders paid on one business day and attributed to one guide at one store, not cancelled.

    ``sales`` is what the customers kept (total less refunded as of the last refresh); a late
    return recomputes the order's payment day.
    """

    day = models.DateField(_("day"))
    guide = models.ForeignKey(StaffProfile, on_delete=models.CASCADE, related_name="+", verbose_name=_("guide"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                              verbose_name=_("store"))
    orders = models.PositiveIntegerField(_("orders"), default=0)
    sales = models.DecimalField(_("sales"), default=Decimal("0.00"), **MONEY)

    class Meta:
        db_table = "orders_dailyguidesalesrollup"  # the table kept its name when the model moved
        verbose_name = _("daily guide sales roll-up")
        verbose_name_plural = _("daily guide sales roll-ups")
        ordering = ["-day", "guide_id", "store_id"]
        constraints = [
            models.UniqueConstraint(fields=["day", "guide", "store"], name="daily_guide_sales_rollup_key",
                                    nulls_distinct=False),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.guide_id} {self.store_id or '-'}"


class DailyCouponRollup(models.Model):
    """Coupons of one business day for one store and channel.

    ``issued`` counts coupons issued that day against the store of their issue event (none when
    issued without one); the redemption columns count redemptions made that day and not given
    back by a return, against the redeeming store and channel, with the discount split by who
    bears it.
    """

    day = models.DateField(_("day"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                              verbose_name=_("store"))
    channel = models.CharField(_("channel"), max_length=20, blank=True)
    issued = models.PositiveIntegerField(_("issued"), default=0)
    redeemed = models.PositiveIntegerField(_("redeemed"), default=0)
    discount = models.DecimalField(_("discount"), default=Decimal("0.00"), **MONEY)
    ecommerce_amount = models.DecimalField(_("borne by e-commerce"), default=Decimal("0.00"), **MONEY)
    store_amount = models.DecimalField(_("borne by the store"), default=Decimal("0.00"), **MONEY)

    class Meta:
        db_table = "orders_dailycouponrollup"  # the table kept its name when the model moved
        verbose_name = _("daily coupon roll-up")
        verbose_name_plural = _("daily coupon roll-ups")
        ordering = ["-day", "store_id", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["day", "store", "channel"], name="daily_coupon_rollup_key",
                                    nulls_distinct=False),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.store_id or '-'} {self.channel}"


class DailyMemberChannels(models.Model):
    """The channels (a bit per channel, ``rollups.CHANNEL_BITS``) one member bought through at one
    store on one business day, from the paid, not cancelled orders.

    A member's channels over any date range are the ``bit_or`` of their rows in it; the key's
    index carries ``channels`` so that is an index-only scan of the range.
    """

    day = models.DateField(_("day"))
    member_id = models.BigIntegerField(_("member"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                              verbose_name=_("store"), db_index=False)
    channels = models.SmallIntegerField(_("channels"))

    class Meta:
        db_table = "orders_dailymemberchannels"  # the table kept its name when the model moved
        verbose_name = _("daily member channels")
        verbose_name_plural = _("daily member channels")
        ordering = ["-day", "member_id"]
        constraints = [
            models.UniqueConstraint(fields=["day", "member_id", "store"], include=["channels"],
                                    name="daily_member_channels_key", nulls_distinct=False),
        ]
        # A member's days from a given one on, for rebuilding MemberActivityDay.
        indexes = [models.Index(fields=["member_id", "day"], include=["channels"],
                                name="daily_member_channels_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.member_id} {self.store_id or '-'}"


class MemberActivityDay(models.Model):
    """One business day on which a member bought (paid, not cancelled orders, any store), with the
    member's next such day and, per channel, the last day up to this one they bought through it.

    Counting distinct members over a range then needs no grouping: each member who bought in
    [start, end] has exactly one row there whose ``next_day`` is past ``end`` (or none), and the
    channels they used in the range are those whose ``last_<channel>`` is on or after ``start``.
    Rebuilt from ``DailyMemberChannels`` for the members whose days were refreshed, from the
    first refreshed day on.
    """

    member_id = models.BigIntegerField(_("member"))
    day = models.DateField(_("day"))
    next_day = models.DateField(_("next day"), null=True, blank=True)
    last_web = models.DateField(null=True, blank=True)
    last_mini_program = models.DateField(null=True, blank=True)
    last_marketplace = models.DateField(null=True, blank=True)
    last_pos = models.DateField(null=True, blank=True)

    class Meta:
        db_table = "orders_memberactivityday"  # the table kept its name when the model moved
        verbose_name = _("member activity day")
        verbose_name_plural = _("member activity days")
        ordering = ["member_id", "day"]
        constraints = [models.UniqueConstraint(fields=["member_id", "day"], name="member_activity_day_key")]
        indexes = [models.Index(fields=["day"], include=["next_day", "last_web", "last_mini_program",
                                                         "last_marketplace", "last_pos"],
                                name="member_activity_day_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.day}"


class MemberActivityCount(models.Model):
    """How many members' activity days share a day, a next day and an omni-channel day, over every
    store (``scope`` empty: the ``MemberActivityDay`` rows) or over the stores of one region, one city
    or one store (``scope``: their ids, ascending, comma-separated; the same chain of days built from
    ``DailyMemberChannels`` of those stores).  The distinct-member counts of any range then sum at
    most a few thousand rows instead of one row per member who bought in it.

    ``omni_since`` is the second latest of the day's ``last_<channel>`` days: the member bought
    through more than one channel in [start, day] exactly when it is on or after ``start``.  Ranges
    span at most ``MAX_SPAN_DAYS``, so a ``next_day`` further than that after ``day`` is stored as
    none (past any range's end) and an ``omni_since`` further before it as none (before any start);
    that keeps the rows per day bounded however long the history.  Rebuilt with every refresh.
    """

    MAX_SPAN_DAYS = 366

    scope = models.CharField(_("stores"), max_length=1000, blank=True)
    day = models.DateField(_("day"))
    next_day = models.DateField(_("next day"), null=True, blank=True)
    omni_since = models.DateField(_("in more than one channel since"), null=True, blank=True)
    members = models.PositiveIntegerField(_("members"))

    class Meta:
        verbose_name = _("member activity count")
        verbose_name_plural = _("member activity counts")
        ordering = ["scope", "day"]
        indexes = [models.Index(fields=["scope", "day"], include=["next_day", "omni_since", "members"],
                                name="member_activity_count_idx")]

    def __str__(self) -> str:
        return f"{self.scope or '*'} {self.day} {self.next_day or '-'} {self.omni_since or '-'}: {self.members}"


class MemberActivityScope(models.Model):
    """A store set whose ``MemberActivityCount`` rows the last refresh built (each region's, each
    city's and each store's stores): a scope not listed here is counted from the daily rows."""

    scope = models.CharField(_("stores"), max_length=1000, unique=True)

    class Meta:
        verbose_name = _("member activity scope")
        verbose_name_plural = _("member activity scopes")

    def __str__(self) -> str:
        return self.scope


class MemberTierRollup(models.Model):
    """Members (not merged into another) and their points and wallet balances per tier, as of the
    last refresh: the dashboard's member figures without summing every member on a page view."""

    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, null=True, blank=True, related_name="+",
                             verbose_name=_("tier"))
    members = models.PositiveIntegerField(_("members"), default=0)
    points_available = models.BigIntegerField(_("points available"), default=0)
    points_frozen = models.BigIntegerField(_("points frozen"), default=0)
    wallet_principal = models.DecimalField(_("wallet principal"), default=Decimal("0.00"), max_digits=18,
                                           decimal_places=2)
    wallet_bonus = models.DecimalField(_("wallet bonus"), default=Decimal("0.00"), max_digits=18,
                                       decimal_places=2)
    refreshed_at = models.DateTimeField(_("refreshed at"))

    class Meta:
        verbose_name = _("member tier roll-up")
        verbose_name_plural = _("member tier roll-ups")
        constraints = [models.UniqueConstraint(fields=["tier"], name="member_tier_rollup_key",
                                               nulls_distinct=False)]

    def __str__(self) -> str:
        return f"{self.tier_id or '-'}: {self.members}"
