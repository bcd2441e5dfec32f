"""Order API serializers: inputs (what a client may send) apart from outputs (what it reads).

Inputs name SKUs and quantities, stores and cities by id, and nothing the
server decides: no price, total, discount, status or channel.  Outputs show
money as strings with their currency.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from o2o.api import MAX_ID, ModelFieldsOnce, StrictInput, Text
from o2o.apiauth import principal_of
from orders.models import Fulfillment, Order, OrderLine, OrderLinePromotion, Return, ReturnLine, Shipment, ShipmentLine
from orders.selectors import PaymentState, order_payment_state, orders_with_overpayment_refunds
from payments.api.serializers import PaymentOut
from payments.selectors import payments_for_reference
from stores.models import City, Store

ONLINE_FULFILLMENTS = [Fulfillment.PICKUP, Fulfillment.SHIP_WAREHOUSE, Fulfillment.SHIP_STORE]
MAX_QTY = 9999
MAX_LINES = 100
PHONE_PATTERN = r"^\+?[0-9][0-9 -]{4,18}$"


def store_field(**kwargs) -> serializers.PrimaryKeyRelatedField:
    return serializers.PrimaryKeyRelatedField(queryset=Store.objects.filter(is_active=True), **kwargs)


def restrict_stores(serializer: serializers.Serializer, name: str = "store") -> None:
    """Limit a store field to the caller's stores (a store outside them is 'does not exist')."""
    request = serializer.context.get("request")
    principal = principal_of(request) if request is not None else None
    if principal is not None and principal.store_ids is not None:
        field = serializer.fields[name]
        field.queryset = field.queryset.filter(pk__in=principal.store_ids)


# --- inputs ---------------------------------------------------------------------------------------


class OrderLineIn(StrictInput, serializers.Serializer):
    sku = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="SKU id.")
    qty = serializers.IntegerField(min_value=1, max_value=MAX_QTY)


class MemberRefIn(StrictInput, serializers.Serializer):
    """Who the customer is: our member ``id``, or their ``phone`` and/or WeChat identity."""

    id = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, help_text="Our member id.")
    phone = Text(max_length=30, required=False, help_text="Mobile number; an unknown number registers the "
                                                          "member when your key has members:write.")
    wechat_openid = Text(max_length=128, required=False, help_text="The openid of the mini-program session.")
    wechat_appid = Text(max_length=64, required=False, default="", help_text="The app the openid belongs to.")
    wechat_unionid = Text(max_length=128, required=False)
    name = Text(max_length=100, required=False, default="", help_text="Used when the member is registered.")

    def validate(self, attrs):
        named = [k for k in ("phone", "wechat_openid", "wechat_unionid") if attrs.get(k)]
        if "id" in attrs and named:
            raise serializers.ValidationError({"id": [_("Give the member id alone, or a phone and/or WeChat "
                                                        "identity.")]}, code="invalid")
        if "id" not in attrs and not named:
            raise serializers.ValidationError({"id": [_("Give one of id, phone, wechat_openid or "
                                                        "wechat_unionid.")]}, code="required")
        if attrs.get("wechat_openid") and not attrs.get("wechat_appid"):
            raise serializers.ValidationError({"wechat_appid": [_("An openid needs the app id it belongs to.")]},
                                              code="required")
        return attrs


class OrderCreateIn(StrictInput, serializers.Serializer):
    external_id = Text(max_length=100, required=False, allow_null=True, default=None,
                       help_text="Your order id. Placing the same id again returns the first order (200).")
    fulfillment = serializers.ChoiceField(choices=ONLINE_FULFILLMENTS)
    store = store_field(required=False, allow_null=True, default=None,
                        help_text="Pickup store (required for pickup).")
    ship_city = serializers.PrimaryKeyRelatedField(queryset=City.objects.all(), required=False,
                                                   allow_null=True,
                                                   default=None, help_text="Required when shipping.")
    ship_address = Text(max_length=300, required=False, allow_blank=True, default="")
    ship_postcode = serializers.RegexField(r"^[0-9]{6}$", required=False, allow_blank=True, default="",
                                           help_text="Six-digit postcode shipped to: an order shipped into a "
                                                     "store's trade area (its postcode prefixes) credits that "
                                                     "store in the revenue split.")
    customer_name = Text(max_length=100, required=False, allow_blank=True, default="")
    customer_phone = serializers.RegexField(PHONE_PATTERN, max_length=20, required=False, allow_blank=True,
                                            default="")
    lines = OrderLineIn(many=True, min_length=1, max_length=MAX_LINES)
    member = MemberRefIn(required=False, allow_null=True, default=None,
                         help_text="The customer: points are earned, the coupon is theirs, the order goes to "
                                   "their guide.")
    member_code = Text(max_length=200, required=False, allow_blank=True, default="",
                       help_text="The dynamic member code the customer's app shows (POST "
                                 "/api/v1/members/{id}/code/): proves the customer; needed to pay from the "
                                 "wallet unless the member is named by their WeChat identity. Names the member "
                                 "when member is left out.")
    coupon_code = Text(max_length=32, required=False, allow_blank=True, default="",
                       help_text="One of the member's coupons, redeemed on this order.")
    guide_code = Text(max_length=20, required=False, allow_blank=True, default="",
                      help_text="The shop assistant who served the customer: the member is bound to them "
                                "under the region's rule.")
    scene = Text(max_length=300, required=False, allow_blank=True, default="",
                 help_text="The scene of a guide's QR code the customer scanned (or its whole URL); binds "
                           "like guide_code, as a QR scan.")
    points = serializers.IntegerField(min_value=1, max_value=10**9, required=False, allow_null=True,
                                      default=None,
                                      help_text="Points to pay with at once (at the programme's rate, within "
                                                "its cap); the rest is paid at the provider.")
    wallet = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"),
                                      required=False, allow_null=True, default=None,
                                      help_text="CNY to pay from the member's wallet at once; needs member_code "
                                                "or a WeChat-identified member.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        restrict_stores(self)

    def validate(self, attrs):
        required = [serializers.Field.default_error_messages["required"]]
        if attrs.get("guide_code") and attrs.get("scene"):
            raise serializers.ValidationError({"scene": [_("Give guide_code or scene, not both.")]},
                                              code="invalid")
        if attrs["fulfillment"] == Fulfillment.PICKUP and attrs.get("store") is None:
            raise serializers.ValidationError({"store": required}, code="required")
        if attrs["fulfillment"] != Fulfillment.PICKUP and attrs.get("ship_city") is None:
            raise serializers.ValidationError({"ship_city": required}, code="required")
        return attrs


class OrderCancelIn(StrictInput, serializers.Serializer):
    reason = Text(max_length=300, required=False, allow_blank=True, default="")


class ShipmentLineIn(StrictInput, serializers.Serializer):
    order_line = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    qty = serializers.IntegerField(min_value=1, max_value=MAX_QTY)


class ShipmentCreateIn(StrictInput, serializers.Serializer):
    lines = ShipmentLineIn(many=True, required=False, min_length=1, max_length=MAX_LINES,
                           help_text="Default: everything left to ship (from one warehouse).")
    warehouse = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                         help_text="Ship what is left from this warehouse.")


class ShipmentShipIn(StrictInput, serializers.Serializer):
    carrier = Text(max_length=50)
    tracking_number = Text(max_length=50)


class OrderUpdateIn(StrictInput, serializers.Serializer):
    """What a partner may change before fulfilment starts; fields left out stay as they are."""

    ship_address = Text(max_length=300, required=False, allow_blank=False,
                        help_text="Shipped orders only, until a shipment is made.")
    customer_name = Text(max_length=100, required=False, allow_blank=True)
    customer_phone = serializers.RegexField(PHONE_PATTERN, max_length=20, required=False, allow_blank=True)
    remark = Text(max_length=300, required=False, allow_blank=True,
                  help_text="A note for the people fulfilling the order.")
    store = store_field(required=False, help_text="A new pickup store: pickup orders only, while unpaid. "
                                                  "The goods are held there instead; the prices stay.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        restrict_stores(self)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(_("Name at least one field to change."), code="required")
        return attrs


class PickupIn(StrictInput, serializers.Serializer):
    code = Text(max_length=12, help_text="The pickup code the customer shows.")
    store = store_field(required=False, allow_null=True, default=None,
                        help_text="Your store; may be left out when you work at one store only.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        restrict_stores(self)


class ReturnLineIn(StrictInput, serializers.Serializer):
    order_line = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    qty = serializers.IntegerField(min_value=1, max_value=MAX_QTY)
    condition = serializers.ChoiceField(choices=ReturnLine.Condition.choices,
                                        default=ReturnLine.Condition.SELLABLE)


class ReturnCreateIn(StrictInput, serializers.Serializer):
    store = store_field(required=False, allow_null=True, default=None,
                        help_text="Where the goods are received; staff of one store may leave it out.")
    lines = ReturnLineIn(many=True, min_length=1, max_length=MAX_LINES)
    reason = Text(max_length=300, required=False, allow_blank=True, default="")
    client_uuid = serializers.UUIDField(required=False, allow_null=True, default=None,
                                        help_text="Your id of this return; resending it returns the first "
                                                  "return.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        restrict_stores(self)


# --- outputs --------------------------------------------------------------------------------------


class OrderLinePromotionOut(ModelFieldsOnce, serializers.ModelSerializer):
    """What one promotion took off one line, as it was when the order was placed (code, name and kind
    are snapshots).  ``gift_qty``: for a 买赠 gift line, the units given free."""

    class Meta:
        model = OrderLinePromotion
        fields = ["promotion", "code", "name", "kind", "amount", "gift_qty"]
        read_only_fields = fields


class OrderLineOut(ModelFieldsOnce, serializers.ModelSerializer):
    promotions = OrderLinePromotionOut(many=True, read_only=True,
                                       help_text="Which promotion took how much off this line; the line's "
                                                 "`discount` includes these amounts.")

    class Meta:
        model = OrderLine
        fields = ["id", "line_no", "sku", "sku_code", "name", "unit_price", "qty", "discount", "line_total",
                  "warehouse", "qty_shipped", "qty_returned", "refunded_amount", "promotions"]
        read_only_fields = fields


class OrderOut(ModelFieldsOnce, serializers.ModelSerializer):
    lines = OrderLineOut(many=True, read_only=True)
    store_code = serializers.CharField(source="store.code", default=None, read_only=True, allow_null=True)
    pickup_code = serializers.SerializerMethodField(
        help_text="Shown to the partner that placed the order (to give to its customer); hidden from staff.")
    promotion_discount = serializers.SerializerMethodField(
        help_text="What the promotions took off the order in all (part of `discount_total`).")
    payment_status = serializers.SerializerMethodField(
        help_text="unpaid, partially_paid, paid, partially_refunded (some of what was paid went back) or "
                  "refunded (all of it; also an order whose only money was a late payment given back).")
    overpayment_refunded = serializers.SerializerMethodField(
        help_text="Money given back that never counted towards the order (a late payment on a closed order, "
                  "a second capture); not in refunded_total.")

    class Meta:
        model = Order
        fields = ["id", "number", "channel", "partner", "external_id", "status", "fulfillment", "store",
                  "store_code", "customer_name", "customer_phone", "ship_city", "ship_address", "ship_postcode",
                  "remark", "currency", "subtotal", "discount_total", "cash_rounding", "total", "paid_total",
                  "refunded_total", "pickup_code", "payment_status", "overpayment_refunded", "needs_transfer",
                  "expires_at", "created_at", "updated_at", "paid_at", "handed_over_at", "version",
                  "promotion_discount", "lines"]
        read_only_fields = fields

    @extend_schema_field(serializers.DecimalField(max_digits=12, decimal_places=2))
    def get_promotion_discount(self, obj) -> str:
        # From the lines' prefetched rows: no query per order in a list.
        total = sum((p.amount for line in obj.lines.all() for p in line.promotions.all()), Decimal("0.00"))
        return f"{total:.2f}"

    @extend_schema_field(serializers.ChoiceField(choices=PaymentState.CHOICES))
    def get_payment_status(self, obj) -> str:
        return order_payment_state(obj)

    @extend_schema_field(serializers.DecimalField(max_digits=12, decimal_places=2))
    def get_overpayment_refunded(self, obj) -> str:
        value = getattr(obj, "overpayment_refunded", None)
        if value is None:
            value = orders_with_overpayment_refunds(Order.objects.filter(pk=obj.pk)).values_list(
                "overpayment_refunded", flat=True).first() or Decimal("0.00")
        return f"{value:.2f}"

    def get_pickup_code(self, obj) -> str | None:
        request = self.context.get("request")
        principal = principal_of(request) if request is not None else None
        return obj.pickup_code if principal is not None and principal.is_partner else None


class ShipmentLineOut(ModelFieldsOnce, serializers.ModelSerializer):
    class Meta:
        model = ShipmentLine
        fields = ["order_line", "qty"]
        read_only_fields = fields


class ShipmentOut(ModelFieldsOnce, serializers.ModelSerializer):
    order_number = serializers.CharField(source="order.number", read_only=True)
    lines = ShipmentLineOut(many=True, read_only=True)

    class Meta:
        model = Shipment
        fields = ["id", "number", "order", "order_number", "warehouse", "status", "carrier",
                  "tracking_number",
                  "created_at", "updated_at", "shipped_at", "lines"]
        read_only_fields = fields


class ReturnLineOut(ModelFieldsOnce, serializers.ModelSerializer):
    class Meta:
        model = ReturnLine
        fields = ["order_line", "qty", "condition", "refund_amount"]
        read_only_fields = fields


class ReturnOut(ModelFieldsOnce, serializers.ModelSerializer):
    order_number = serializers.CharField(source="order.number", read_only=True)
    currency = serializers.CharField(source="order.currency", read_only=True)
    lines = ReturnLineOut(many=True, read_only=True)

    class Meta:
        model = Return
        fields = ["id", "number", "order", "order_number", "store", "reason", "refund_total", "cash_rounding",
                  "currency", "refund_policy", "created_at", "updated_at", "lines"]
        read_only_fields = fields


class OrderDetailOut(OrderOut):
    payments = serializers.SerializerMethodField()
    shipments = ShipmentOut(many=True, read_only=True)
    returns = ReturnOut(many=True, read_only=True)

    class Meta(OrderOut.Meta):
        fields = [*OrderOut.Meta.fields, "payments", "shipments", "returns"]
        read_only_fields = fields

    @extend_schema_field(PaymentOut(many=True))
    def get_payments(self, obj):
        known = self.context.get("payments")  # the caller knows them already (none, for a new order)
        payments = known if known is not None else payments_for_reference(reference=obj.number)
        return PaymentOut(payments, many=True).data


class AvailabilityOut(serializers.Serializer):
    sku = serializers.IntegerField()
    sku_code = serializers.CharField()
    store = serializers.IntegerField(allow_null=True)
    available_in_store = serializers.IntegerField(
        allow_null=True, help_text="Units in the store's stockroom, ready for pickup at once.")
    available_for_pickup = serializers.IntegerField(
        allow_null=True, help_text="Units one pickup order may take at the store (the store's own, or one "
                                   "warehouse's that is then transferred there).")
    available_to_ship = serializers.IntegerField(
        help_text="Units one shipped order of this channel may take from its shipping warehouses.")
