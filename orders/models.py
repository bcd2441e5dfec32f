"""One order book for every channel.

An order moves only along ``TRANSITIONS``; every change writes an ``OrderEvent``
(actor, time, from → to, reason) in the same transaction.  Lines keep price and
discount snapshots, with order-level discounts allocated to lines to the fen,
so any partial refund is exact.
"""

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from catalog.models import Sku
from o2o.channels import Channel  # noqa: F401  (the order book's channels; re-exported for its callers)
from members.models import Member
from stores.models import City, StaffProfile, Store, Warehouse

MONEY = {"max_digits": 12, "decimal_places": 2}


class Fulfillment(models.TextChoices):
    SHIP_WAREHOUSE = "ship_warehouse", _("Ship from warehouse")
    SHIP_STORE = "ship_store", _("Ship from store")
    PICKUP = "pickup", _("Pickup in store")
    IN_STORE = "in_store", _("Taken in store")


class Status(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", _("Awaiting payment")
    PAID = "paid", _("Paid")
    READY_FOR_PICKUP = "ready_for_pickup", _("Ready for pickup")
    PARTIALLY_SHIPPED = "partially_shipped", _("Partially shipped")
    SHIPPED = "shipped", _("Shipped")
    PICKED_UP = "picked_up", _("Picked up")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")


# A pickup code is held while its order is open (not yet picked up, cancelled or expired).
OPEN_PICKUP_STATUSES = (Status.PENDING_PAYMENT, Status.PAID, Status.READY_FOR_PICKUP)
PICKUP_CODE_OPEN_ONCE = "order_pickup_code_open_once"


# The pipeline: from-status → statuses it may move to.  Nothing else is allowed.
TRANSITIONS: dict[str, set[str]] = {
    "": {Status.PENDING_PAYMENT, Status.COMPLETED},
    # A cash-on-delivery order ships unpaid (the services allow it only with the COD payment pending);
    # the courier's remittance pays it later without moving its status.
    Status.PENDING_PAYMENT: {Status.PAID, Status.CANCELLED, Status.EXPIRED, Status.PARTIALLY_SHIPPED,
                             Status.SHIPPED},
    Status.PAID: {Status.READY_FOR_PICKUP, Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.CANCELLED},
    Status.READY_FOR_PICKUP: {Status.PICKED_UP, Status.CANCELLED},
    Status.PARTIALLY_SHIPPED: {Status.PARTIALLY_SHIPPED, Status.SHIPPED},
    Status.SHIPPED: set(),
    Status.PICKED_UP: set(),
    Status.COMPLETED: set(),
    Status.CANCELLED: set(),
    Status.EXPIRED: set(),
}


class ChannelConfig(models.Model):
    """Per-channel rules HQ can change: return window, split shipments, warehouse priority."""

    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices, unique=True)
    return_window_days = models.PositiveIntegerField(_("return window (days)"), default=7)
    allow_split = models.BooleanField(_("may split across warehouses"), default=False)
    ship_from_store = models.BooleanField(_("may ship from stores of the customer's city"), default=True)

    class Meta:
        verbose_name = _("channel rules")
        verbose_name_plural = _("channel rules")

    def __str__(self) -> str:
        return self.get_channel_display()


class ChannelWarehouse(models.Model):
    """The warehouses a channel ships from, in priority order (lower first)."""

    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="+", verbose_name=_("warehouse"))
    priority = models.PositiveIntegerField(_("priority"), default=10)

    class Meta:
        verbose_name = _("channel warehouse")
        verbose_name_plural = _("channel warehouses")
        ordering = ["channel", "priority", "warehouse_id"]
        constraints = [models.UniqueConstraint(fields=["channel", "warehouse"], name="channel_warehouse_unique")]


class Order(models.Model):
    number = models.CharField(_("order number"), max_length=30, unique=True)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    partner = models.CharField(_("partner"), max_length=50, blank=True, default="",
                               help_text=_("Marketplace or partner system code; empty for own channels."))
    external_id = models.CharField(_("external order id"), max_length=100, null=True, blank=True)
    client_uuid = models.UUIDField(_("client sale id"), null=True, blank=True, unique=True)
    request_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="orders",
                              verbose_name=_("store"), help_text=_("Where sold or where picked up."))
    fulfillment = models.CharField(_("fulfillment"), max_length=20, choices=Fulfillment.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT, related_name="orders",
                               verbose_name=_("member"))
    guide = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("attributed guide"),
                              help_text=_("Chosen at the POS, or else the member's bound guide."))
    coupon_code = models.CharField(_("coupon"), max_length=40, blank=True, default="")
    coupon_discount = models.DecimalField(_("coupon discount"), default=Decimal("0.00"), **MONEY)
    coupon_cost_ecommerce = models.DecimalField(_("coupon cost borne by e-commerce"), default=Decimal("0.00"),
                                                **MONEY)
    coupon_cost_store = models.DecimalField(_("coupon cost borne by the store"), default=Decimal("0.00"), **MONEY)
    customer_name = models.CharField(_("customer name"), max_length=100, blank=True, default="")
    customer_phone = models.CharField(_("customer phone"), max_length=20, blank=True, default="")
    ship_city = models.ForeignKey(City, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("ship to city"))
    ship_address = models.CharField(_("ship to address"), max_length=300, blank=True, default="")
    ship_postcode = models.CharField(_("ship to postcode"), max_length=6, blank=True, default="",
                                     help_text=_("Six digits; decides the trade-area store of a shipped order."))
    remark = models.CharField(_("remark"), max_length=300, blank=True, default="",
                              help_text=_("The customer's or partner's note for the people fulfilling the order."))
    subtotal = models.DecimalField(_("subtotal"), **MONEY)
    discount_total = models.DecimalField(_("discount"), default=Decimal("0.00"), **MONEY)
    # 抹零: the fen of the cash due dropped by the store's cash rounding; part of ``discount_total``
    # and allocated to the lines like any order-level discount, so a return refunds exactly.
    cash_rounding = models.DecimalField(
        _("cash rounding (抹零)"), default=Decimal("0.00"), **MONEY,
        help_text=_("What the store's cash rounding dropped from the cash due; part of the discount."))
    total = models.DecimalField(_("total"), **MONEY)
    paid_total = models.DecimalField(_("paid"), default=Decimal("0.00"), **MONEY)
    refunded_total = models.DecimalField(_("refunded"), default=Decimal("0.00"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    pickup_code = models.CharField(_("pickup code"), max_length=12, null=True, blank=True, db_index=True,
                                   help_text=_("Unique among open pickup orders; reused once an order closes."))
    needs_transfer = models.BooleanField(_("supplied by transfer"), default=False)
    expires_at = models.DateTimeField(_("pay before"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    # When the customer got the goods (sale, pickup handover, last shipment): the return
    # window, frozen points and frozen commission all count from here.
    handed_over_at = models.DateTimeField(_("handed over at"), null=True, blank=True)
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "partner", "external_id"], name="order_external_id_once",
                                    condition=Q(external_id__isnull=False)),
            models.UniqueConstraint(fields=["pickup_code"], name=PICKUP_CODE_OPEN_ONCE,
                                    condition=Q(pickup_code__isnull=False, status__in=OPEN_PICKUP_STATUSES)),
            models.CheckConstraint(condition=Q(total__gte=0) & Q(subtotal__gte=0) & Q(discount_total__gte=0),
                                   name="order_amounts_non_negative"),
            models.CheckConstraint(condition=Q(total=F("subtotal") - F("discount_total")), name="order_total_sum"),
            models.CheckConstraint(condition=Q(refunded_total__lte=F("paid_total")),
                                   name="order_refund_within_paid"),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="order_status_expiry_idx"),
                   models.Index(fields=["store", "created_at"], name="order_store_created_idx"),
                   models.Index(fields=["customer_phone"], name="order_customer_phone_idx")]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveIntegerField(_("line"))
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    sku_code = models.CharField(_("SKU code"), max_length=40)
    name = models.CharField(_("name"), max_length=200)
    unit_price = models.DecimalField(_("unit price"), **MONEY)
    qty = models.PositiveIntegerField(_("quantity"))
    discount = models.DecimalField(_("allocated discount"), default=Decimal("0.00"), **MONEY)
    coupon_discount = models.DecimalField(_("of which coupon"), default=Decimal("0.00"), **MONEY)
    category_id_snapshot = models.BigIntegerField(_("category"), null=True, blank=True)
    line_total = models.DecimalField(_("line total"), **MONEY)
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+", verbose_name=_("warehouse"))
    qty_shipped = models.PositiveIntegerField(_("shipped"), default=0)
    qty_returned = models.PositiveIntegerField(_("returned"), default=0)
    refunded_amount = models.DecimalField(_("refunded"), default=Decimal("0.00"), **MONEY)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["order_id", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_no"], name="order_line_no_unique"),
            models.CheckConstraint(condition=Q(qty__gt=0), name="order_line_qty_positive"),
            models.CheckConstraint(condition=Q(qty_returned__lte=F("qty")), name="order_line_return_within_qty"),
            models.CheckConstraint(condition=Q(qty_shipped__lte=F("qty")), name="order_line_ship_within_qty"),
            models.CheckConstraint(condition=Q(line_total=F("unit_price") * F("qty") - F("discount")),
                                   name="order_line_total_sum"),
            models.CheckConstraint(condition=Q(refunded_amount__lte=F("line_total")),
                                   name="order_line_refund_within_total"),
        ]


class OrderLinePromotion(models.Model):
    """What one promotion took off one order line: the receipt's explanation and the promotion's cost.

    A row per promotion per line rather than JSON on the line: reports and settlement sum them by
    promotion and by cost bearer in SQL, the promotion is protected from deletion while sales refer
    to it, and the code, name and bearer are snapshots, so editing a promotion later changes no
    sale already made.  The line's ``discount`` includes these amounts; a return refunds per line,
    so it gives back the promotion's share with the goods.
    """

    line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="promotions")
    promotion = models.ForeignKey("promotions.Promotion", on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("promotion"))
    code = models.CharField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=20)
    bearer = models.CharField(_("cost borne by"), max_length=10)
    amount = models.DecimalField(_("taken off"), **MONEY)
    gift_qty = models.PositiveIntegerField(_("gift units"), default=0)
    gift_cost = models.DecimalField(_("cost of the gift"), default=Decimal("0.00"), **MONEY)
    # 买赠: how many units of what earned the gift, and how many gift units' value (and how much money)
    # a return of those goods has taken back since (the customer kept the gift without what earned
    # it); bringing the gift back later gives that value back.
    buy_qty = models.PositiveIntegerField(_("units that earn the gift"), default=0)
    earned_by = ArrayField(models.BigIntegerField(), default=list, blank=True, verbose_name=_("earned by SKUs"))
    gift_taken_back = models.PositiveIntegerField(_("gift units taken back"), default=0)
    gift_value_taken_back = models.DecimalField(_("gift value taken back"), default=Decimal("0.00"), **MONEY)

    class Meta:
        verbose_name = _("promotion on an order line")
        verbose_name_plural = _("promotions on order lines")
        ordering = ["line_id", "id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="order_line_promotion_positive"),
                       models.CheckConstraint(condition=Q(gift_value_taken_back__gte=0)
                                              & Q(gift_value_taken_back__lte=F("amount")),
                                              name="order_line_promotion_gift_back_within")]


class OrderEvent(models.Model):
    class Kind(models.TextChoices):
        STATUS = "status", _("Status change")
        PAYMENT = "payment", _("Payment")
        SHIPMENT = "shipment", _("Shipment")
        PICKUP_VERIFIED = "pickup_verified", _("Pickup code verified")
        PICKUP_REJECTED = "pickup_rejected", _("Pickup code refused")
        RETURN = "return", _("Return")
        NOTE = "note", _("Note")
        UPDATE = "update", _("Details changed")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    from_status = models.CharField(_("from"), max_length=20, blank=True, default="")
    to_status = models.CharField(_("to"), max_length=20, blank=True, default="")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("by"))
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("at store"))
    reason = models.CharField(_("reason"), max_length=300, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["id"]


class Shipment(models.Model):
    class Status(models.TextChoices):
        PICKING = "picking", _("Picking")
        PACKED = "packed", _("Packed")
        SHIPPED = "shipped", _("Shipped")

    number = models.CharField(_("number"), max_length=30, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="shipments")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+", verbose_name=_("from"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PICKING)
    carrier = models.CharField(_("carrier"), max_length=50, blank=True, default="")
    tracking_number = models.CharField(_("tracking number"), max_length=50, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    shipped_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)
    shipped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        ordering = ["-id"]


class ShipmentLine(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="shipment_lines")
    qty = models.PositiveIntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(qty__gt=0), name="shipment_line_qty_positive")]


class Return(models.Model):
    """A return (RMA) received at any store, of an order from any channel."""

    number = models.CharField(_("number"), max_length=30, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="returns")
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="returns_received",
                              verbose_name=_("received at"))
    client_uuid = models.UUIDField(null=True, blank=True, unique=True)
    reason = models.CharField(_("reason"), max_length=300, blank=True, default="")
    refund_total = models.DecimalField(_("refund"), **MONEY)
    refund_policy = models.CharField(_("refund policy applied"), max_length=300, blank=True, default="")
    # The value of the returned lines not paid out because cash is paid in the store's unit and no
    # card or provider part could take the difference: positive kept, negative paid beyond the value.
    # ``refund_total`` is what was refunded; the lines' value is refund_total + cash_rounding.
    cash_rounding = models.DecimalField(
        _("cash rounding"), default=Decimal("0.00"), **MONEY,
        help_text=_("Value of the returned lines not paid out (negative: paid beyond it) because cash goes "
                    "back in the store's unit; the lines' value is the refund plus this."))
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("approved by"),
                                    help_text=_("Manager who allowed a return outside the return window."))
    exchange_order = models.OneToOneField(Order, null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="exchanged_from", verbose_name=_("exchange order"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("by"))
    created_at = models.DateTimeField(_("time"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("return")
        verbose_name_plural = _("returns")
        ordering = ["-id"]


class ReturnLine(models.Model):
    class Condition(models.TextChoices):
        SELLABLE = "sellable", _("Sellable")
        DAMAGED = "damaged", _("Damaged")

    ret = models.ForeignKey(Return, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="return_lines")
    qty = models.PositiveIntegerField(_("quantity"))
    condition = models.CharField(_("condition"), max_length=10, choices=Condition.choices)
    refund_amount = models.DecimalField(_("refund"), **MONEY)

    class Meta:
        verbose_name = _("return line")
        verbose_name_plural = _("return lines")
        constraints = [models.CheckConstraint(condition=Q(qty__gt=0), name="return_line_qty_positive")]


class CodRemittance(models.Model):
    """The courier's remittance of one cash-on-delivery parcel: what captured the order's COD payment.

    One per tracking number (the courier's reference, kept as the payment's transaction id too),
    so a remittance recorded twice, by hand or in two files, pays the order once.
    """

    class Source(models.TextChoices):
        SINGLE = "single", _("Entered by hand")
        BATCH = "batch", _("Batch file")

    tracking_number = models.CharField(_("tracking number"), max_length=50, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="cod_remittances",
                              verbose_name=_("order"))
    payment = models.OneToOneField("payments.Payment", on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("payment"))
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    remitted_on = models.DateField(_("remitted on"))
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    file_name = models.CharField(_("file"), max_length=200, blank=True, default="")
    file_line = models.PositiveIntegerField(_("line"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("recorded by"))
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("COD remittance")
        verbose_name_plural = _("COD remittances")
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="cod_remittance_positive")]

    def __str__(self) -> str:
        return self.tracking_number
