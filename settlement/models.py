"""Settlement (日结): split rules, the settled days and their statements.

A business day D runs from the cut-off hour on D to the cut-off hour on D+1
(Asia/Shanghai).  Settling it writes, per store (and once for "no store": orders
shipped from a warehouse, money taken online), one ``StoreSettlement`` with its
``SettlementStatement`` per channel, in one transaction per store.  Every source
event is settled exactly once, in detail rows keyed by the event:

* ``SplitLine``: one order line sold (the order was paid), returned (one return
  line) or cancelled after payment, with the revenue split and the rule that made it;
* ``TenderLine``: one payment captured or one refund completed, by tender.

Statements are totals of their lines.  Closed rows are immutable: database
triggers refuse UPDATE and DELETE on closed statements and on every detail row,
so a late event is settled as an adjustment of the next open day, never as an edit.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from catalog.models import ProductLine
from django.conf import settings

from stores.models import StaffProfile, Store

__all__ = [
    "StatementChannel",
    "SplitRule",
    "SettlementDay",
    "StoreSettlement",
    "SettlementStatement",
    "StatementTender",
    "SplitLine",
    "TenderLine",
    "PromotionCostLine",
    "WalletTransfer",
    "PartyShare",
    "ScheduledJob",
    "Party",
    "LedgerPosting",
    "Payout",
    "RuleSetAdoption",
]

MONEY = {"max_digits": 14, "decimal_places": 2}
PERCENT = {"max_digits": 5, "decimal_places": 2,
           "validators": [MinValueValidator(Decimal("0.00")), MaxValueValidator(Decimal("100.00"))]}
ZERO = Decimal("0.00")


def _money(label):
    return models.DecimalField(label, default=ZERO, **MONEY)


class StatementChannel(models.TextChoices):
    """The order channels, plus money not tied to any order."""

    WEB = "web", _("Web shop")
    MINI_PROGRAM = "mini_program", _("WeChat mini-program")
    MARKETPLACE = "marketplace", _("Marketplace partner")
    POS = "pos", _("Store POS")
    OTHER = "other", _("Not tied to an order")


class SplitRule(models.Model):
    """How the net of an order line is shared between the e-commerce department and stores.

    The first active rule (lowest priority number, then oldest) whose conditions all
    match the line on the business day decides.  The e-commerce department keeps
    ``ecommerce_percent`` of the net; when the order's guide works at another store,
    that store gets ``guide_store_percent``; the fulfilling store (where sold, picked
    up or shipped from) keeps the rest.  Without a fulfilling store (shipped from a
    warehouse) the e-commerce department keeps the rest, unless the rule credits the
    trade-area store of the customer's city (``credit_trade_area``): then that store
    keeps it, as a fulfilling store would.  Rules may be limited to a product line
    (大货, N品, …) and a territory.  No matching rule: all to the fulfilling store.  A rule that has split lines cannot change its terms (the
    lines name it); deactivate it and add a new one instead.
    """

    class Territory(models.TextChoices):
        ANY = "", _("Anywhere")
        TRADE_AREA = "trade_area", _("Shipped to a store's trade area")
        NO_TRADE_AREA = "no_trade_area", _("Shipped outside every trade area, or not shipped")

    class GuideCondition(models.TextChoices):
        ANY = "", _("Any order")
        OTHER_STORE = "other_store", _("The order's guide works at another store")
        NOT_OTHER_STORE = "not_other_store", _("No guide, or the guide works at the fulfilling store")

    name = models.CharField(_("name"), max_length=100)
    priority = models.PositiveIntegerField(_("priority"), default=100,
                                           help_text=_("Lower numbers are tried first."))
    channel = models.CharField(_("channel"), max_length=20, blank=True, default="",
                               choices=StatementChannel.choices[:4], help_text=_("Empty: every channel."))
    fulfillment = models.CharField(_("fulfillment"), max_length=20, blank=True, default="",
                                   choices=[("ship_warehouse", _("Ship from warehouse")),
                                            ("ship_store", _("Ship from store")),
                                            ("pickup", _("Pickup in store")),
                                            ("in_store", _("Taken in store"))],
                                   help_text=_("Empty: every fulfillment."))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("fulfilling store"), help_text=_("Empty: every store."))
    guide_condition = models.CharField(_("guide"), max_length=20, blank=True, default="",
                                       choices=GuideCondition.choices)
    product_line = models.CharField(_("product line"), max_length=20, blank=True, default="",
                                    choices=[("", _("Every product line")), *ProductLine.choices[1:]],
                                    help_text=_("The product's line (大货, N品, 电商专供); empty: every line."))
    territory = models.CharField(_("territory"), max_length=20, blank=True, default="",
                                 choices=Territory.choices)
    credit_trade_area = models.BooleanField(
        _("credit the trade-area store"), default=False,
        help_text=_("An order shipped from a warehouse to a customer in a store's trade area: that store gets "
                    "the share a fulfilling store would get."))
    ecommerce_percent = models.DecimalField(_("e-commerce share (%)"), default=ZERO, **PERCENT)
    guide_store_percent = models.DecimalField(_("guide's store share (%)"), default=ZERO, **PERCENT,
                                              help_text=_("Paid only when the guide works at another store."))
    trade_area_percent = models.DecimalField(
        _("trade-area store share (%)"), default=ZERO, **PERCENT,
        help_text=_("Paid to the store whose trade area the order is shipped to (postcode or city), when that "
                    "store is not the one credited: it gets its own share, the credited party keeps the rest."))
    valid_from = models.DateField(_("valid from"), null=True, blank=True,
                                  help_text=_("First business day; empty: always."))
    valid_until = models.DateField(_("valid until"), null=True, blank=True,
                                   help_text=_("Last business day; empty: open ended."))
    is_active = models.BooleanField(_("active"), default=True)
    draft = models.CharField(_("draft set"), max_length=50, blank=True, default="", db_index=True,
                             help_text=_("Rules of a draft set are never applied: HQ simulates them on past "
                                         "months side by side with the rules in force. Empty: a rule in force."))
    note = models.CharField(_("note"), max_length=300, blank=True, default="")
    first_used_on = models.DateField(_("first used on"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "orders_splitrule"  # the table kept its name when the model moved
        verbose_name = _("revenue split rule")
        verbose_name_plural = _("revenue split rules")
        ordering = ["priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ecommerce_percent__gte=0, guide_store_percent__gte=0, trade_area_percent__gte=0)
                & Q(ecommerce_percent__lte=100 - F("guide_store_percent") - F("trade_area_percent")),
                name="split_rule_shares_within_100"),
            models.CheckConstraint(condition=Q(valid_until__isnull=True) | Q(valid_from__isnull=True)
                                   | Q(valid_until__gte=F("valid_from")), name="split_rule_validity"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if (self.ecommerce_percent or 0) + (self.guide_store_percent or 0) + (self.trade_area_percent or 0) > 100:
            errors["guide_store_percent"] = _("The shares may add up to 100% at most.")
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            errors["valid_until"] = _("The last day cannot be before the first.")
        if errors:
            raise ValidationError(errors)


class SettlementDay(models.Model):
    """One business day: its window, whether every store is settled, and the day's totals."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        CLOSED = "closed", _("Closed")

    day = models.DateField(_("business day"), unique=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    window_start = models.DateTimeField(_("from"))
    window_end = models.DateTimeField(_("until"))
    cutoff_hour = models.PositiveSmallIntegerField(_("cut-off hour"))
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    stores_settled = models.PositiveIntegerField(_("stores settled"), default=0)
    sales_net = _money(_("sales (net)"))
    returns_net = _money(_("returns"))
    cancelled_net = _money(_("cancelled after payment"))
    net = _money(_("net"))
    adjustments_net = _money(_("adjustments"))
    payments_total = _money(_("payments"))
    refunds_total = _money(_("refunds"))
    commission_released = models.PositiveIntegerField(_("commission entries released"), default=0)
    commission_released_amount = _money(_("commission released"))

    class Meta:
        db_table = "orders_settlementday"  # the table kept its name when the model moved
        verbose_name = _("settlement day")
        verbose_name_plural = _("settlement days")
        ordering = ["-day"]
        constraints = [
            models.CheckConstraint(condition=Q(window_end__gt=F("window_start")), name="settlement_day_window"),
            models.CheckConstraint(condition=Q(status="running", closed_at__isnull=True)
                                   | Q(status="closed", closed_at__isnull=False),
                                   name="settlement_day_closed_at"),
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d}"

    @property
    def tender_net(self) -> Decimal:
        return self.payments_total - self.refunds_total


class StoreSettlement(models.Model):
    """One store's part of a day (store empty: no store — online money, warehouse shipments).

    Written in one transaction with its statements and detail rows: its existence is
    the mark that this (day, store) step is done.  The counts are of the events of the
    day's own window, so the next day can tell whether any arrived late.
    """

    day = models.ForeignKey(SettlementDay, on_delete=models.PROTECT, related_name="stores",
                            verbose_name=_("business day"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("store"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    orders_paid = models.PositiveIntegerField(_("orders paid"), default=0)
    returns = models.PositiveIntegerField(_("returns"), default=0)
    cancels = models.PositiveIntegerField(_("cancelled after payment"), default=0)
    payments = models.PositiveIntegerField(_("payments"), default=0)
    refunds = models.PositiveIntegerField(_("refunds"), default=0)
    late_lines = models.PositiveIntegerField(_("late lines settled here"), default=0)
    cash_payments = _money(_("cash taken"))
    cash_refunds = _money(_("cash paid out"))
    shifts_closed = models.PositiveIntegerField(_("shifts closed"), default=0)
    shifts_cash_sales = _money(_("shifts: cash sales"))
    shifts_cash_refunds = _money(_("shifts: cash refunds"))
    shifts_expected_cash = _money(_("shifts: expected cash"))
    shifts_counted_cash = _money(_("shifts: counted cash"))
    shifts_over_short = _money(_("shifts: over (+) / short (−)"))
    wallet_recharged_principal = _money(_("wallet recharges sold (principal)"))
    wallet_recharged_bonus = _money(_("wallet recharges sold (bonus)"))
    wallet_recharge_refunded = _money(_("wallet recharges refunded"))
    wallet_spent_principal = _money(_("wallet spent here (principal)"))
    wallet_spent_bonus = _money(_("wallet spent here (bonus)"))
    wallet_cross_in_principal = _money(_("spent here from other stores' recharges (principal)"))
    wallet_cross_in_bonus = _money(_("spent here from other stores' recharges (bonus)"))
    wallet_cross_out_principal = _money(_("our recharges spent elsewhere (principal)"))
    wallet_cross_out_bonus = _money(_("our recharges spent elsewhere (bonus)"))
    commission_released = models.PositiveIntegerField(_("commission entries released"), default=0)
    commission_released_amount = _money(_("commission released"))

    class Meta:
        db_table = "orders_storesettlement"  # the table kept its name when the model moved
        verbose_name = _("store settlement")
        verbose_name_plural = _("store settlements")
        ordering = ["-day__day", "store_id"]
        constraints = [
            models.UniqueConstraint(fields=["day", "store"], name="store_settlement_once", nulls_distinct=False),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.store or _('no store')}"

    @property
    def cash_net(self) -> Decimal:
        return self.cash_payments - self.cash_refunds

    @property
    def cash_difference(self) -> Decimal:
        """Cash the tenders say was taken less what the closed shifts' drawers account for."""
        return self.cash_net - (self.shifts_cash_sales - self.shifts_cash_refunds)


class SettlementStatement(models.Model):
    """The statement of one business day, store and channel.

    Sales are the order lines of orders paid that day, at the order's store (where sold
    or picked up; none for warehouse shipments); returns and cancellations count on
    the day they happened, against the original order's store and channel.  Tenders are
    the money that moved at the store that day (payments taken, refunds handed out).
    """

    store_settlement = models.ForeignKey(StoreSettlement, on_delete=models.PROTECT, related_name="statements",
                                         verbose_name=_("store settlement"))
    business_day = models.DateField(_("business day"), db_index=True)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("store"))
    channel = models.CharField(_("channel"), max_length=20, choices=StatementChannel.choices)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    orders_count = models.PositiveIntegerField(_("orders"), default=0)
    sale_lines = models.PositiveIntegerField(_("lines sold"), default=0)
    sales_gross = _money(_("gross sales"))
    sales_discount = _money(_("discounts"))
    sales_net = _money(_("sales (net)"))
    coupon_discount = _money(_("coupon discounts"))
    coupon_cost_ecommerce = _money(_("coupon cost borne by e-commerce"))
    coupon_cost_store = _money(_("coupon cost borne by stores"))
    # What the promotions took off, net of returns and cancellations, and who bears it.
    promotion_discount = _money(_("promotion discounts"))
    promotion_cost_hq = _money(_("promotion cost borne by head office"))
    promotion_cost_ecommerce = _money(_("promotion cost borne by e-commerce"))
    promotion_cost_store = _money(_("promotion cost borne by stores"))
    promotion_cost_supplier = _money(_("promotion cost borne by suppliers"))
    return_lines = models.PositiveIntegerField(_("lines returned"), default=0)
    returns_net = _money(_("returns"))
    cancelled_net = _money(_("cancelled after payment"))
    net = _money(_("net"))
    adjustments_net = _money(_("of which late (adjustments)"))
    split_ecommerce = _money(_("e-commerce share"))
    split_store = _money(_("fulfilling stores' share"))
    split_guide_store = _money(_("guides' stores share"))
    split_trade_store = _money(_("trade-area stores' share"))
    payments_count = models.PositiveIntegerField(_("payments"), default=0)
    payments_total = _money(_("payments taken"))
    refunds_count = models.PositiveIntegerField(_("refunds"), default=0)
    refunds_total = _money(_("refunds given"))
    tender_adjustments = _money(_("money of late events"))
    points_issued = models.IntegerField(_("points issued"), default=0)
    points_redeemed = models.IntegerField(_("points redeemed"), default=0)
    points_redeemed_value = _money(_("points redeemed (value)"))

    class Meta:
        db_table = "orders_settlementstatement"  # the table kept its name when the model moved
        verbose_name = _("settlement statement")
        verbose_name_plural = _("settlement statements")
        ordering = ["-business_day", "store_id", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["business_day", "store", "channel"], name="settlement_statement_once",
                                    nulls_distinct=False),
            models.CheckConstraint(condition=Q(net=F("sales_net") - F("returns_net") - F("cancelled_net")),
                                   name="settlement_statement_net"),
            models.CheckConstraint(condition=Q(net=F("split_ecommerce") + F("split_store") + F("split_guide_store")
                                               + F("split_trade_store")),
                                   name="settlement_statement_split_adds_up"),
            models.CheckConstraint(condition=Q(promotion_discount=F("promotion_cost_hq") + F("promotion_cost_ecommerce")
                                               + F("promotion_cost_store") + F("promotion_cost_supplier")),
                                   name="settlement_statement_promotion_cost_adds_up"),
        ]

    def __str__(self) -> str:
        return f"{self.business_day:%Y-%m-%d} {self.store or _('no store')} {self.get_channel_display()}"

    @property
    def tender_net(self) -> Decimal:
        return self.payments_total - self.refunds_total


class StatementTender(models.Model):
    """A statement's money by tender.  Cash refunds count as cash whatever the original tender,
    and exchange refunds as exchange credit: the tender is where the money actually moved."""

    statement = models.ForeignKey(SettlementStatement, on_delete=models.PROTECT, related_name="tenders",
                                  verbose_name=_("statement"))
    tender = models.CharField(_("tender"), max_length=20)
    payments_count = models.PositiveIntegerField(_("payments"), default=0)
    payments_amount = _money(_("payments taken"))
    refunds_count = models.PositiveIntegerField(_("refunds"), default=0)
    refunds_amount = _money(_("refunds given"))

    class Meta:
        db_table = "orders_statementtender"  # the table kept its name when the model moved
        verbose_name = _("statement tender")
        verbose_name_plural = _("statement tenders")
        ordering = ["statement_id", "tender"]
        constraints = [models.UniqueConstraint(fields=["statement", "tender"], name="statement_tender_once")]

    def __str__(self) -> str:
        return self.tender

    @property
    def net(self) -> Decimal:
        return self.payments_amount - self.refunds_amount


class SplitLine(models.Model):
    """One order line's revenue event and its split, with the rule that made it.

    Sale: +net of the line.  Return: −refund of one return line, the split reversed
    with the sale's rule and parties (cumulatively rounded, so a line returned in
    parts reverses exactly what the sale split).  Cancel: the sale negated.  The
    foreign keys are not database constraints: a day writes millions of lines in one
    statement and a per-row constraint check would cost more than the insert; the
    joins that write them guarantee the references, and the audit checks them.
    """

    class Kind(models.TextChoices):
        SALE = "sale", _("Sale")
        RETURN = "return", _("Return")
        CANCEL = "cancel", _("Cancelled after payment")

    statement = models.ForeignKey(SettlementStatement, on_delete=models.PROTECT, related_name="split_lines",
                                  db_constraint=False, verbose_name=_("statement"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    order = models.ForeignKey("orders.Order", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
                              related_name="+", verbose_name=_("order"))
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.DO_NOTHING, db_constraint=False,
                                   db_index=False, related_name="+", verbose_name=_("order line"))
    return_line = models.ForeignKey("orders.ReturnLine", null=True, blank=True, on_delete=models.DO_NOTHING,
                                    db_constraint=False, db_index=False, related_name="+",
                                    verbose_name=_("return line"))
    sale_line = models.ForeignKey("self", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                  db_index=False, related_name="+", verbose_name=_("reverses sale"))
    rule = models.ForeignKey(SplitRule, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                             db_index=False, related_name="+", verbose_name=_("split rule"))
    event_at = models.DateTimeField(_("time"))
    adjustment = models.BooleanField(_("late (adjustment)"), default=False)
    gross = _money(_("gross"))
    discount = _money(_("discount"))
    coupon_discount = _money(_("coupon discount"))
    coupon_cost_ecommerce = _money(_("coupon cost (e-commerce)"))
    coupon_cost_store = _money(_("coupon cost (store)"))
    net = _money(_("net"))
    ecommerce_amount = _money(_("e-commerce share"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                              db_index=False, related_name="+", verbose_name=_("fulfilling store"))
    store_amount = _money(_("fulfilling store's share"))
    guide_store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                    db_index=False, related_name="+", verbose_name=_("guide's store"))
    guide_store_amount = _money(_("guide's store share"))
    trade_store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                                    db_index=False, related_name="+", verbose_name=_("trade-area store"))
    trade_store_amount = _money(_("trade-area store share"))

    class Meta:
        db_table = "orders_splitline"  # the table kept its name when the model moved
        verbose_name = _("split line")
        verbose_name_plural = _("split lines")
        ordering = ["statement_id", "id"]
        constraints = [
            # One index does it all: a line sold once, cancelled once, each return line once; and it
            # finds a line's sale (order_line, kind) for the returns and cancellations that reverse it.
            models.UniqueConstraint(F("order_line"), F("kind"), Coalesce(F("return_line"), Value(0)),
                                    name="split_line_once"),
            models.CheckConstraint(condition=Q(net=F("ecommerce_amount") + F("store_amount") + F("guide_store_amount")
                                               + F("trade_store_amount")),
                                   name="split_line_shares_add_up"),
            models.CheckConstraint(condition=Q(net=F("gross") - F("discount")), name="split_line_net"),
            models.CheckConstraint(condition=Q(kind="return") | Q(return_line__isnull=True),
                                   name="split_line_return_has_return_line"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.order_line_id} {self.net}"


class TenderLine(models.Model):
    """One payment captured (+) or refund completed (−), settled once."""

    class Kind(models.TextChoices):
        PAYMENT = "payment", _("Payment")
        REFUND = "refund", _("Refund")

    statement = models.ForeignKey(SettlementStatement, on_delete=models.PROTECT, related_name="tender_lines",
                                  db_constraint=False, verbose_name=_("statement"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    payment = models.ForeignKey("payments.Payment", on_delete=models.DO_NOTHING, db_constraint=False,
                                db_index=False, related_name="+", verbose_name=_("payment"))
    refund = models.ForeignKey("payments.Refund", null=True, blank=True, on_delete=models.DO_NOTHING,
                               db_constraint=False, db_index=False, related_name="+", verbose_name=_("refund"))
    tender = models.CharField(_("tender"), max_length=20)
    amount = models.DecimalField(_("amount"), **MONEY)
    event_at = models.DateTimeField(_("time"))
    adjustment = models.BooleanField(_("late (adjustment)"), default=False)

    class Meta:
        db_table = "orders_tenderline"  # the table kept its name when the model moved
        verbose_name = _("tender line")
        verbose_name_plural = _("tender lines")
        ordering = ["statement_id", "id"]
        constraints = [
            models.UniqueConstraint(F("payment"), F("kind"), Coalesce(F("refund"), Value(0)), name="tender_line_once"),
            models.CheckConstraint(condition=(Q(kind="payment", refund__isnull=True, amount__gt=0)
                                              | Q(kind="refund", refund__isnull=False, amount__lt=0)),
                                   name="tender_line_shape"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.tender} {self.amount}"


class PromotionCostLine(models.Model):
    """What one promotion took off one order line, settled once per event, with who bears it.

    Sale: +the amount of the line's explanation row (``orders.OrderLinePromotion``), on the day the
    order was paid.  Return: −the returned units' share of it (cumulatively rounded, so a line returned
    in parts reverses exactly what it took), on the day of the return.  Cancel: the sale negated.  The
    statement is the order's store and channel, like its split lines; ``store`` is that party (empty:
    the e-commerce department's orders shipped from a warehouse).  References are not database
    constraints, as for split lines; the audit checks them.
    """

    statement = models.ForeignKey(SettlementStatement, on_delete=models.PROTECT, related_name="promotion_lines",
                                  db_constraint=False, verbose_name=_("statement"))
    kind = models.CharField(_("kind"), max_length=10, choices=SplitLine.Kind.choices)
    order = models.ForeignKey("orders.Order", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
                              related_name="+", verbose_name=_("order"))
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.DO_NOTHING, db_constraint=False,
                                   db_index=False, related_name="+", verbose_name=_("order line"))
    line_promotion = models.ForeignKey("orders.OrderLinePromotion", on_delete=models.DO_NOTHING,
                                       db_constraint=False, db_index=False, related_name="+",
                                       verbose_name=_("promotion on the line"))
    return_line = models.ForeignKey("orders.ReturnLine", null=True, blank=True, on_delete=models.DO_NOTHING,
                                    db_constraint=False, db_index=False, related_name="+",
                                    verbose_name=_("return line"))
    promotion = models.ForeignKey("promotions.Promotion", on_delete=models.DO_NOTHING, db_constraint=False,
                                  related_name="+", verbose_name=_("promotion"))
    bearer = models.CharField(_("cost borne by"), max_length=10)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                              db_index=False, related_name="+", verbose_name=_("party"))
    event_at = models.DateTimeField(_("time"))
    adjustment = models.BooleanField(_("late (adjustment)"), default=False)
    amount = models.DecimalField(_("promotion cost"), **MONEY)

    class Meta:
        verbose_name = _("promotion cost line")
        verbose_name_plural = _("promotion cost lines")
        ordering = ["statement_id", "id"]
        constraints = [
            models.UniqueConstraint(F("line_promotion"), F("kind"), Coalesce(F("return_line"), Value(0)),
                                    name="promotion_cost_line_once"),
            models.CheckConstraint(condition=Q(kind="return") | Q(return_line__isnull=True),
                                   name="promotion_cost_line_return_has_return_line"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.bearer} {self.amount}"


class WalletTransfer(models.Model):
    """Wallet money spent at one store (the step's store) from recharges another store sold.

    The selling store holds the money; the spending store gave the goods.  Negative
    amounts are spends refunded.
    """

    store_settlement = models.ForeignKey(StoreSettlement, on_delete=models.PROTECT, related_name="wallet_transfers",
                                         verbose_name=_("spent at"))
    sold_store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("recharge sold by"))
    principal = _money(_("principal"))
    bonus = _money(_("bonus"))

    class Meta:
        db_table = "orders_wallettransfer"  # the table kept its name when the model moved
        verbose_name = _("cross-store wallet spending")
        verbose_name_plural = _("cross-store wallet spending")
        constraints = [models.UniqueConstraint(fields=["store_settlement", "sold_store"], nulls_distinct=False,
                                               name="wallet_transfer_once")]


class PartyShare(models.Model):
    """What a store step's split lines give each party: the e-commerce department (no store) or a
    store.  A party's share of the day is the sum over the day's steps."""

    store_settlement = models.ForeignKey(StoreSettlement, on_delete=models.PROTECT, related_name="shares",
                                         verbose_name=_("store settlement"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("party"), help_text=_("Empty: the e-commerce department."))
    fulfilment_share = _money(_("share as fulfilling store / e-commerce"))
    guide_share = _money(_("share as the guide's store"))
    trade_area_share = _money(_("share as the trade-area store"))
    total = _money(_("total"))

    class Meta:
        db_table = "orders_partyshare"  # the table kept its name when the model moved
        verbose_name = _("party share")
        verbose_name_plural = _("party shares")
        ordering = ["store_settlement_id", "store_id"]
        constraints = [
            models.UniqueConstraint(fields=["store_settlement", "store"], name="party_share_once",
                                    nulls_distinct=False),
            models.CheckConstraint(condition=Q(total=F("fulfilment_share") + F("guide_share") + F("trade_area_share")),
                                   name="party_share_total"),
        ]


class ScheduledJob(models.Model):
    """The Celery beat schedule (``o2o/schedule.py``), shown read-only in the admin.  No table."""

    name = models.CharField(_("name"), max_length=100, primary_key=True)

    class Meta:
        managed = False
        verbose_name = _("scheduled job")
        verbose_name_plural = _("scheduled jobs")
        default_permissions = ("view",)



# --- the party ledger ---------------------------------------------------------------------------


# Parties that exist once: no store, no guide.
DEPARTMENTS = ["clearing", "ecommerce", "hq", "supplier"]


class Party(models.Model):
    """Someone the settlement owes or charges: the e-commerce department, a store, a guide; and the
    clearing account every journal balances against (the day's sales, money paid out).

    ``balance`` is the sum of the party's postings, moved with F() in the posting's transaction;
    a payout takes it down with a conditional UPDATE, so it never pays more than was released."""

    class Kind(models.TextChoices):
        CLEARING = "clearing", _("Clearing (sales and payouts)")
        ECOMMERCE = "ecommerce", _("E-commerce department")
        STORE = "store", _("Store")
        GUIDE = "guide", _("Guide")
        HQ = "hq", _("Head office")
        SUPPLIER = "supplier", _("Suppliers (promotion funding)")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    store = models.OneToOneField(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("store"))
    guide = models.OneToOneField(StaffProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("guide"))
    balance = _money(_("balance"))

    class Meta:
        verbose_name = _("party")
        verbose_name_plural = _("parties")
        ordering = ["kind", "store_id", "guide_id"]
        constraints = [
            models.UniqueConstraint(fields=["kind"], condition=Q(kind__in=DEPARTMENTS),
                                    name="party_single_department"),
            models.CheckConstraint(condition=(Q(kind__in=DEPARTMENTS, store__isnull=True,
                                                guide__isnull=True)
                                              | Q(kind="store", store__isnull=False, guide__isnull=True)
                                              | Q(kind="guide", store__isnull=True, guide__isnull=False)),
                                   name="party_shape"),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.STORE:
            return str(self.store)
        if self.kind == self.Kind.GUIDE:
            return f"{_('Guide')} {self.guide}"
        return str(self.get_kind_display())


class LedgerPosting(models.Model):
    """One side of a journal: the postings of a journal sum to zero.  Append-only."""

    class Account(models.TextChoices):
        SPLIT = "split", _("Revenue split")
        COUPON = "coupon", _("Coupon cost share")
        PROMOTION = "promotion", _("Promotion cost share")
        WALLET = "wallet", _("Cross-store wallet spending")
        COMMISSION = "commission", _("Guide commission released")
        COLLECTION = "collection", _("Money collected at the counter (held for HQ)")
        PAYOUT = "payout", _("Payout")

    journal = models.UUIDField(_("journal"), db_index=True)
    day = models.ForeignKey(SettlementDay, null=True, blank=True, on_delete=models.PROTECT, related_name="postings",
                            verbose_name=_("business day"))
    party = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="postings", verbose_name=_("party"))
    account = models.CharField(_("account"), max_length=12, choices=Account.choices)
    amount = models.DecimalField(_("amount"), **MONEY, help_text=_("Positive: owed to the party."))
    reference = models.CharField(_("reference"), max_length=60, blank=True, default="")
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("ledger posting")
        verbose_name_plural = _("ledger postings")
        ordering = ["-id"]
        constraints = [
            # a settled day posts each account once per party: re-running a day cannot post twice
            models.UniqueConstraint(fields=["day", "account", "party", "reference"], condition=Q(day__isnull=False),
                                    name="ledger_posting_once_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.get_account_display()} {self.party} {self.amount}"


class Payout(models.Model):
    """Money paid to a party (guide commission, what a store is owed), requested then approved.
    Approval takes it off the party's balance; it cannot exceed what was released."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        APPROVED = "approved", _("Approved and paid")
        REJECTED = "rejected", _("Rejected")

    number = models.CharField(_("number"), max_length=30, unique=True)
    party = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="payouts", verbose_name=_("party"))
    amount = models.DecimalField(_("amount"), **MONEY)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.REQUESTED)
    note = models.CharField(_("note"), max_length=200, blank=True, default="")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", verbose_name=_("requested by"))
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("decided by"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    journal = models.UUIDField(_("journal"), null=True, blank=True)

    class Meta:
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_positive"),
            models.CheckConstraint(condition=Q(status="requested") | Q(decided_at__isnull=False),
                                   name="payout_decided_at"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.party} {self.amount}"


class RuleSetAdoption(models.Model):
    """A draft rule set adopted as the split rules in force from a business day, and who did it.

    Adoption copies the draft's rules into rules in force valid from that day and ends the rules in
    force the day before; rules that settled days used keep their terms (their split lines name
    them), so settled days stay as they were.  Never from a day already settled or being settled."""

    draft = models.CharField(_("draft set"), max_length=50)
    effective_from = models.DateField(_("in force from"))
    rules_adopted = models.JSONField(_("rules put in force"), default=list)
    rules_ended = models.JSONField(_("rules ended"), default=list)
    adopted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("adopted by"))
    adopted_at = models.DateTimeField(_("adopted at"), auto_now_add=True)

    class Meta:
        verbose_name = _("rule set adoption")
        verbose_name_plural = _("rule set adoptions")
        ordering = ["-adopted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.draft} → {self.effective_from:%Y-%m-%d}"
