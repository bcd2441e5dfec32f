"""Orders over the API: place, pay, cancel, fulfil (ship or pickup), return, read.

Each view parses with an input serializer, calls one service of
``orders.services`` and renders with an output serializer.  What a caller may
see is decided once, in ``orders_visible``: a partner key sees its channel's
(and partner code's) orders, limited to its stores if it has any; store staff
see the orders of their stores (picked up or sold there, or shipped from
their stockroom).  Every detail and action looks the order up in that
queryset, so another caller's order is a 404.

Changes to an order run under its row lock with the optional If-Match
checked inside the same transaction (``order_guarded``), so a stale ETag can
never slip between the check and the change.
"""

from __future__ import annotations

from django.db.models import Prefetch, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter
from rest_framework import generics, serializers
from rest_framework.response import Response

from o2o.api import (
    ETAG_HEADER,
    IF_MATCH_REQUIRED,
    LIST_ERRORS,
    MAX_ID,
    READ_ERRORS,
    WRITE_ERRORS,
    api_doc,
    etag_for,
    if_match_check,
)
from members.codes import member_code_take
from o2o.apiauth import MEMBERS_WRITE, ORDERS_READ, ORDERS_WRITE, PARTNER, STAFF, STOCK_READ, Principal, principal_of
from o2o.db import service
from o2o.idempotency import idempotent
from o2o.money import ZERO
from orders.selectors import order_scope, orders_with_overpayment_refunds
from orders import locks, services
from orders.api import examples as ex
from orders.api.availability import availability
from orders.api.filters import OrderFilter, ReturnFilter, ShipmentFilter
from orders.api.serializers import (
    AvailabilityOut,
    OrderCancelIn,
    OrderCreateIn,
    OrderDetailOut,
    OrderOut,
    OrderUpdateIn,
    PickupIn,
    ReturnCreateIn,
    ReturnOut,
    ShipmentCreateIn,
    ShipmentOut,
    ShipmentShipIn,
)
from orders.exceptions import StoreRequired, WrongStore
from orders.intake import CustomerIn, MemberRef, order_place_for_customer
from orders.models import Channel, Order, Return, Shipment
from orders.services import LineIn, ReturnLineIn
from payments.api.serializers import PaymentStartIn, PaymentStartOut, payment_tenders
from payments.exceptions import InvalidPaymentInput
from payments.models import Tender
from payments.services import ProviderStart, payment_provider_open
from stores import selectors as store_read
from stores.models import Store

ORDER_TAGS = ["orders"]
READ, WRITE = {"GET": ORDERS_READ}, {"GET": ORDERS_READ, "POST": ORDERS_WRITE}
ORDER_ERRORS = {409: [("invalid_order_state", "The order cannot do this in its current state.")],
                422: [("duplicate_different_payload",
                       "This order id was already used for a different order.")]}


# --- visibility -------------------------------------------------------------------------------------


def orders_visible(principal: Principal | None):
    """The caller's orders, by the one visibility rule (``orders.selectors.order_scope``)."""
    if principal is None:
        return Order.objects.none()
    if principal.is_partner:
        return order_scope(store_ids=principal.store_ids, channel=principal.channel, partner=principal.partner)
    return order_scope(store_ids=principal.store_ids)


def order_detail_queryset(principal: Principal | None):
    return orders_with_overpayment_refunds(orders_visible(principal)).select_related("store").prefetch_related(
        "lines", "lines__promotions",
        Prefetch("shipments", queryset=Shipment.objects.select_related("order").prefetch_related("lines")),
        Prefetch("returns", queryset=Return.objects.select_related("order").prefetch_related("lines")))


def order_fresh(principal: Principal, pk: int) -> Order:
    return order_detail_queryset(principal).get(pk=pk)


def order_placed(principal: Principal, pk: int) -> Order:
    """``order_fresh`` of an order just placed, before anything could ship, return or pay it: its lines
    are read, its shipments and returns are known to be none."""
    order = (orders_with_overpayment_refunds(orders_visible(principal)).select_related("store")
             .prefetch_related("lines", "lines__promotions").get(pk=pk))
    order._prefetched_objects_cache.update(shipments=Shipment.objects.none(), returns=Return.objects.none())
    return order


@service
def order_guarded(*, order_id: int, request, action, required: bool = False):
    """Lock the order, check If-Match against its version, then run ``action(order)``: one transaction."""
    order = locks.order_for_update(order_id)
    if_match_check(request, order.version, required=required)
    return action(order)


def _etag(response: Response, order: Order) -> Response:
    response["ETag"] = etag_for(order.version)
    return response


def _store_for(principal: Principal, given: Store | None) -> Store:
    """The store the caller acts at: the one given, or the only store of a one-store caller."""
    if given is not None:
        return given
    if principal.store_ids is not None and len(principal.store_ids) == 1:
        return Store.objects.get(pk=next(iter(principal.store_ids)))
    raise StoreRequired(field="store")


def _check_warehouse(principal: Principal, warehouse_id: int) -> None:
    """A store's stockroom ships only by that store's staff; other warehouses by partners or their staff."""
    store = Store.objects.filter(warehouse_id=warehouse_id).first()
    if store is not None:
        if principal.is_partner or not principal.may_use_store(store.pk):
            raise WrongStore(message=_("Only staff of the shipping store can handle this shipment."))
    elif not principal.is_partner and principal.store_ids is not None \
            and warehouse_id not in store_read.staff_warehouse_ids(principal.user):
        raise WrongStore(message=_("You are not staff of this warehouse."))


class PrincipalMixin:
    @property
    def principal(self) -> Principal:
        return principal_of(self.request)


# --- orders -----------------------------------------------------------------------------------------


class OrderListCreate(PrincipalMixin, generics.ListAPIView):
    required_scopes = WRITE
    principal_kinds = {"POST": {PARTNER}}
    serializer_class = OrderOut
    filterset_class = OrderFilter
    ordering = "-id"

    def get_queryset(self):
        return orders_with_overpayment_refunds(orders_visible(self.principal)).select_related(
            "store").prefetch_related("lines", "lines__promotions")

    @api_doc(summary="List orders", tags=ORDER_TAGS, responses={200: OrderOut(many=True)}, errors=LIST_ERRORS,
             examples=[ex.ok("order", ex.ORDER)],
             description="Your channel's orders (staff: your stores'), newest first.")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @api_doc(
        summary="Place an online order", tags=ORDER_TAGS, request=OrderCreateIn, idempotent=True,
        description="Prices, discounts and totals are set by the server; the order holds its stock until "
                    "paid (expires_at). Placing the same external_id again returns the first order with 200. "
                    "A key limited to stores acts for those stores only: it names one of them as the order's "
                    "store for every fulfillment (the store that sold a shipped order; the goods may still "
                    "ship from a warehouse), else 400 store_required.\n\n"
                    "With a `member` the order earns the member's points when handed over, may redeem one of "
                    "their coupons (`coupon_code`) and is attributed to the guide they are bound to; a "
                    "`guide_code` or a guide QR `scene` binds them first (under the region's rule). "
                    "`points` and `wallet` pay part of the order at once (captured payments on the order); "
                    "pay the rest with POST /api/v1/orders/{id}/payments/. Unknown body keys are refused "
                    "(400 unknown_field).",
        responses={201: OrderDetailOut, 200: OrderDetailOut}, errors=(*WRITE_ERRORS, 404),
        error_examples={400: [("store_required", "This key acts for its stores only: name one of them as "
                                                 "the order's store."),
                              ("unknown_field", "Unknown field."),
                              ("member_required", "Points and wallet pay only for a member's order: name the "
                                                  "member.")],
                        404: [("member_not_found", "No such member.")],
                        409: [("insufficient_stock", "No warehouse has enough stock for this order."),
                              ("points_insufficient", "Not enough points."),
                              ("points_cap_exceeded", "Points can pay only part of an order."),
                              ("member_code_used", "This member code was already used.")],
                        422: [("unknown_sku", "Unknown SKU."), ("inactive_sku", "This SKU is not active."),
                              ("duplicate_different_payload",
                               "This order id was already used for a different order."),
                              ("coupon_not_owned", "This coupon belongs to another member."),
                              ("not_a_guide", "No active shop assistant with this guide code."),
                              ("wallet_proof_required", "Paying from the wallet needs the customer's proof."),
                              ("member_code_expired", "This member code has expired.")]},
        parameters=[ETAG_HEADER],
        examples=[ex.ORDER_CREATE_PICKUP, ex.ORDER_CREATE_SHIP, ex.ORDER_CREATE_MEMBER,
                  ex.ok("placed", ex.ORDER_DETAIL, 201),
                  ex.ok("already placed", ex.ORDER_DETAIL, 200)])
    @idempotent
    def post(self, request, *args, **kwargs):
        data = OrderCreateIn(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        v = data.validated_data
        p = self.principal
        if p.store_ids is not None and v["store"] is None:
            # The key's scope is its stores: an order of none of them would be placed and then
            # invisible to the key that placed it (it could not pay, cancel or read it).
            raise StoreRequired(_("This key acts for its stores only: name one of them as the order's store."),
                                field="store")
        # The member code is taken (marked used) before the transaction: it lives in the cache.
        proved = member_code_take(v["member_code"]).pk if v["member_code"] else None
        customer = CustomerIn(
            member=MemberRef(**v["member"]) if v["member"] else None, proved_member_id=proved,
            may_register=MEMBERS_WRITE in p.scopes, coupon_code=v["coupon_code"], guide_code=v["guide_code"],
            scene=v["scene"], points=v["points"] or 0, wallet=v["wallet"] or ZERO)
        result = order_place_for_customer(
            customer=customer, channel=p.channel, partner=p.partner, external_id=v["external_id"] or None,
            fulfillment=v["fulfillment"], store=v["store"],
            ship_city_id=v["ship_city"].pk if v["ship_city"] else None, ship_address=v["ship_address"],
            ship_postcode=v["ship_postcode"], customer_name=v["customer_name"],
            customer_phone=v["customer_phone"],
            lines=[LineIn(sku_id=line["sku"], qty=line["qty"]) for line in v["lines"]], actor=p.actor)
        # A new order paid nothing yet (no points or wallet) has no payments, shipments or returns to read.
        untouched = result.created and not (v["points"] or v["wallet"])
        order = order_placed(p, result.order.pk) if untouched else order_fresh(p, result.order.pk)
        context = {"request": request, **({"payments": []} if untouched else {})}
        response = Response(OrderDetailOut(order, context=context).data,
                            status=201 if result.created else 200,
                            headers={"Location": reverse("api:order-detail", args=[order.pk])})
        return _etag(response, order)


class OrderDetail(PrincipalMixin, generics.RetrieveAPIView):
    required_scopes = {"GET": ORDERS_READ, "PATCH": ORDERS_WRITE}
    principal_kinds = {"PATCH": {PARTNER}}
    serializer_class = OrderDetailOut
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        return order_detail_queryset(self.principal)

    @api_doc(summary="Read an order", tags=ORDER_TAGS, responses={200: OrderDetailOut}, errors=READ_ERRORS,
             parameters=[ETAG_HEADER], examples=[ex.ok("order", ex.ORDER_DETAIL)])
    def get(self, request, *args, **kwargs):
        order = self.get_object()
        return _etag(Response(self.get_serializer(order).data), order)

    @api_doc(summary="Change an order before fulfilment", tags=ORDER_TAGS, request=OrderUpdateIn,
             responses={200: OrderDetailOut}, errors=(400, 401, 403, 404, 409, 412, 413, 415, 428, 429),
             parameters=[ETAG_HEADER, IF_MATCH_REQUIRED],
             description="Partner keys. Changes the delivery address, the receiver's name and phone and the "
                         "remark while the order is unpaid or paid and nothing is shipped or ready yet, and "
                         "the pickup store while it is unpaid (the goods are held there instead; the prices "
                         "stay). If-Match is required: without it 428 precondition_required, with a stale "
                         "version 412. Fields left out stay as they are. No Idempotency-Key: resending the "
                         "same change after it was applied gets 412 (read the order again).",
             error_examples={409: [("fulfilment_started",
                                    "Fulfilment of this order has started; it can no longer be changed."),
                                   ("order_already_paid",
                                    "The pickup store can be changed only while the order is unpaid."),
                                   ("invalid_order_state", "The order cannot do this in its current state.")]},
             examples=[ex.request("address", {"ship_address": "2 Lake Road, Building 3"}),
                       ex.request("pickup store", {"store": 4}),
                       ex.ok("changed", {**ex.ORDER_DETAIL, "remark": "leave at the gate", "version": 2})])
    def patch(self, request, *args, **kwargs):
        order = self.get_object()
        data = OrderUpdateIn(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        changes = services.OrderChanges(**data.validated_data)
        order_guarded(order_id=order.pk, request=request, required=True,
                      action=lambda o: services.order_update(order=o.pk, changes=changes,
                                                             actor=self.principal.actor))
        order = order_fresh(self.principal, order.pk)
        return _etag(Response(OrderDetailOut(order, context={"request": request}).data), order)


class OrderAction(PrincipalMixin, generics.GenericAPIView):
    required_scopes = WRITE

    def get_queryset(self):
        return orders_visible(self.principal)

    def parse(self, serializer_class):
        data = serializer_class(data=self.request.data, context={"request": self.request})
        data.is_valid(raise_exception=True)
        return data.validated_data


class OrderCancel(OrderAction):
    serializer_class = OrderCancelIn

    @api_doc(summary="Cancel an order", tags=ORDER_TAGS, request=OrderCancelIn, idempotent=True,
             if_match=True,
             description="Before the goods leave: held stock is released and what was paid is refunded "
                         "to the original tenders.",
             responses={200: OrderDetailOut}, errors=(*WRITE_ERRORS, 404, 412), parameters=[ETAG_HEADER],
             error_examples={409: [("invalid_order_state", "The order cannot do this in its current state."),
                                   ("goods_in_transit", "The goods are on their way to the pickup store; "
                                                        "cancel after they arrive.")]},
             examples=[ex.request("cancel", {"reason": "customer changed their mind"}),
                       ex.ok("cancelled", {**ex.ORDER_DETAIL, "status": "cancelled", "version": 2})])
    @idempotent
    def post(self, request, pk: int):
        order = self.get_object()
        v = self.parse(OrderCancelIn)
        order_guarded(order_id=order.pk, request=request, action=lambda o: services.order_cancel(
            order=o.pk, actor=self.principal.actor, reason=v["reason"]))
        order = order_fresh(self.principal, order.pk)
        return _etag(Response(OrderDetailOut(order, context={"request": request}).data), order)


class OrderPaymentStartIn(PaymentStartIn):
    tender = serializers.ChoiceField(
        choices=[], help_text="A provider tender (the customer pays at the provider), or cash_on_delivery "
                              "(the customer pays the courier; the order ships unpaid and no longer expires).")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tender"].choices = [*payment_tenders(), Tender.CASH_ON_DELIVERY]


class OrderPaymentStart(OrderAction):
    serializer_class = OrderPaymentStartIn

    @api_doc(summary="Start paying an order at a payment provider, or choose cash on delivery", tags=ORDER_TAGS,
             request=OrderPaymentStartIn, idempotent=True, if_match=True,
             description="Opens a pending provider payment for what is still due. method qr (default) returns "
                         "its payment_code (QR payload / URL); jsapi and mini_program (WeChat Pay, with the "
                         "payer's openid) return pay_params for wx.requestPayment; mini_program with Alipay "
                         "(with buyer_id) returns the trade_no for my.tradePay. The order becomes paid when "
                         "the provider's notification arrives at /api/v1/payments/notify/<provider>/ (or "
                         "when the provider, asked about a payment still pending, says it is paid). With "
                         "cash_on_delivery (shipped orders only) the pending payment is the courier's "
                         "collection: the order may ship unpaid, no longer expires, and is paid when head "
                         "office records the courier's remittance for its tracking number.",
             responses={201: PaymentStartOut}, errors=(*WRITE_ERRORS, 404, 412, 503), parameters=[ETAG_HEADER],
             error_examples={409: [("order_not_payable", "This order can no longer be paid."),
                                   ("cod_not_available",
                                    "Cash on delivery is only for orders shipped to the customer."),
                                   ("cod_chosen", "This order is paid in cash on delivery; cancel it to pay "
                                                  "another way.")],
                             400: [("payment_method_unsupported", "This tender cannot be paid that way."),
                                   ("payer_required", "This payment method needs the payer's id."),
                                   ("invalid_payer", "The payer's id is not valid."),
                                   ("unexpected_payer", "This payment method does not take this payer id.")],
                             503: [("provider_unavailable",
                                    "This payment provider cannot take the request now.")]},
             examples=[ex.request("sandbox", {"tender": "sandbox"}),
                       ex.request("WeChat mini-program", {"tender": "wechat_pay", "method": "mini_program",
                                                          "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}),
                       ex.request("Alipay mini-program", {"tender": "alipay", "method": "mini_program",
                                                          "buyer_id": "2088102146225135"}),
                       ex.ok("payment", {**ex.PAYMENT, "method": "qr", "pay_params": None, "trade_no": None},
                             201)])
    # The provider is asked for its payment code after the payment row committed (network).
    @idempotent(atomic=False)
    def post(self, request, pk: int):
        order = self.get_object()
        v = self.parse(OrderPaymentStartIn)
        if v["tender"] == Tender.CASH_ON_DELIVERY:
            if v["method"] != "qr" or v.get("openid") or v.get("buyer_id"):
                raise InvalidPaymentInput(_("This tender cannot be paid that way."), code="payment_method_unsupported",
                                          field="method")
            payment = order_guarded(order_id=order.pk, request=request, action=lambda o: services.order_cod_choose(
                order=o.pk, actor=self.principal.actor))
            order.refresh_from_db(fields=["version"])
            return _etag(Response(PaymentStartOut(ProviderStart(payment=payment)).data, status=201), order)
        openid, buyer_id = v.get("openid", ""), v.get("buyer_id", "")
        # Starting a payment leaves the order's version as it is: the locked row's is the answer's ETag.
        # The service starts from the row order_guarded locked (not locking and reading it again).
        version, payment = order_guarded(order_id=order.pk, request=request,
                                         action=lambda o: (o.version, services.order_payment_start(
            order=o, locked=True, tender=v["tender"], actor=self.principal.actor, method=v["method"],
            openid=openid, buyer_id=buyer_id)))
        # A networked provider opens the payment now, after the payment row committed.
        start = payment_provider_open(payment=payment.pk, payer=(openid or buyer_id).strip())
        order.version = version
        return _etag(Response(PaymentStartOut(start).data, status=201), order)


class OrderShipmentCreate(OrderAction):
    serializer_class = ShipmentCreateIn

    @api_doc(summary="Start a shipment of an order", tags=ORDER_TAGS, request=ShipmentCreateIn,
             idempotent=True,
             if_match=True, responses={201: ShipmentOut}, errors=(*WRITE_ERRORS, 404, 412),
             description="Picks (part of) what is left to ship from one warehouse. A store's stockroom ships "
                         "only by that store's staff.",
             parameters=[ETAG_HEADER],
             error_examples={409: [("invalid_order_state", "The order cannot do this in its current state.")],
                             422: [("unknown_order_line", "The line does not belong to this order.")],
                             403: [("wrong_store",
                                    "Only staff of the shipping store can handle this shipment.")]},
             examples=[ex.request("everything", {}),
                       ex.request("some lines", {"lines": [{"order_line": 510, "qty": 1}]}),
                       ex.ok("picking", {**ex.SHIPMENT, "status": "picking", "carrier": "",
                                         "tracking_number": "",
                                         "shipped_at": None}, 201)])
    @idempotent
    def post(self, request, pk: int):
        order = self.get_object()
        v = self.parse(ShipmentCreateIn)
        principal = self.principal

        def create(o):
            lines = [(line["order_line"], line["qty"]) for line in v["lines"]] if v.get("lines") else None
            shipment = services.shipment_create(order=o.pk, lines=lines, warehouse_id=v.get("warehouse"),
                                                actor=principal.actor)
            _check_warehouse(principal, shipment.warehouse_id)
            return shipment

        shipment = order_guarded(order_id=order.pk, request=request, action=create)
        order.refresh_from_db(fields=["version"])
        return _etag(Response(ShipmentOut(_shipment(shipment.pk)).data, status=201), order)


class OrderReturnCreate(OrderAction):
    serializer_class = ReturnCreateIn

    @api_doc(summary="Return goods of an order", tags=ORDER_TAGS, request=ReturnCreateIn, idempotent=True,
             if_match=True, responses={201: ReturnOut}, errors=(*WRITE_ERRORS, 404, 412),
             description="Takes back handed-over goods at a store, restocks them there and refunds exactly "
                         "to the original tenders. After the channel's return window a manager must "
                         "approve at the store (not over the API). Each unit refunds what it cost after its "
                         "promotions. 买赠: goods returned while the gift is kept have the gift's value "
                         "withheld; the gift returned later refunds that value (on its line's "
                         "`refund_amount`). Capped promotions get back the returned units' share of their "
                         "budget, and their use when the whole order is back.",
             parameters=[ETAG_HEADER],
             error_examples={409: [("return_window_closed",
                                    "The return window of this order has passed; a manager must approve."),
                                   ("order_not_returnable", "This order has nothing that can be returned.")],
                             422: [("return_exceeds_purchase",
                                    "You cannot return more than was bought and handed over.")]},
             examples=[ex.request("one unit", {"store": 3, "reason": "wrong size",
                                               "lines": [{"order_line": 501, "qty": 1,
                                                          "condition": "sellable"}]}),
                       ex.ok("return", ex.RETURN, 201)])
    @idempotent
    def post(self, request, pk: int):
        order = self.get_object()
        v = self.parse(ReturnCreateIn)
        principal = self.principal
        store = _store_for(principal, v["store"])
        ret = order_guarded(order_id=order.pk, request=request, action=lambda o: services.return_create(
            order=o.pk, store=store, actor=principal.actor, reason=v["reason"], client_uuid=v["client_uuid"],
            lines=[ReturnLineIn(order_line_id=line["order_line"], qty=line["qty"],
                                condition=line["condition"])
                   for line in v["lines"]]))
        order.refresh_from_db(fields=["version"])
        return _etag(Response(ReturnOut(_return(ret.pk)).data, status=201), order)


# --- shipments --------------------------------------------------------------------------------------


def _shipment(pk: int) -> Shipment:
    return Shipment.objects.select_related("order").prefetch_related("lines").get(pk=pk)


def _return(pk: int) -> Return:
    return Return.objects.select_related("order").prefetch_related("lines").get(pk=pk)


class ShipmentViewMixin(PrincipalMixin):
    def get_queryset(self):
        return (Shipment.objects.filter(order__in=orders_visible(self.principal))
                .select_related("order").prefetch_related("lines"))


class ShipmentList(ShipmentViewMixin, generics.ListAPIView):
    required_scopes = READ
    serializer_class = ShipmentOut
    filterset_class = ShipmentFilter
    ordering = ("updated_at", "id")

    @api_doc(summary="List shipments", tags=ORDER_TAGS, responses={200: ShipmentOut(many=True)},
             errors=LIST_ERRORS, examples=[ex.ok("shipment", ex.SHIPMENT)],
             description="Shipments of your orders in (updated_at, id) order: packing and shipping move "
                         "updated_at, so `updated_since` plus the cursor is an incremental sync.")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ShipmentDetail(ShipmentViewMixin, generics.RetrieveAPIView):
    required_scopes = READ
    serializer_class = ShipmentOut

    @api_doc(summary="Read a shipment", tags=ORDER_TAGS, responses={200: ShipmentOut}, errors=READ_ERRORS,
             examples=[ex.ok("shipment", ex.SHIPMENT)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ShipmentPack(ShipmentViewMixin, generics.GenericAPIView):
    required_scopes = WRITE
    serializer_class = serializers.Serializer

    @api_doc(summary="Mark a shipment packed", tags=ORDER_TAGS, request=None, idempotent=True, if_match=True,
             responses={200: ShipmentOut}, errors=(*WRITE_ERRORS, 404, 412), parameters=[ETAG_HEADER],
             error_examples={409: [("invalid_order_state",
                                    "The order cannot do this in its current state.")]},
             examples=[ex.ok("packed", {**ex.SHIPMENT, "status": "packed", "carrier": "",
                                        "tracking_number": "",
                                        "shipped_at": None})])
    @idempotent
    def post(self, request, pk: int):
        shipment = self.get_object()
        principal = self.principal
        _check_warehouse(principal, shipment.warehouse_id)
        order_guarded(order_id=shipment.order_id, request=request,
                      action=lambda o: services.shipment_pack(shipment=shipment.pk, actor=principal.actor))
        return _etag(Response(ShipmentOut(_shipment(shipment.pk)).data),
                     Order.objects.get(pk=shipment.order_id))


class ShipmentShip(ShipmentViewMixin, generics.GenericAPIView):
    required_scopes = WRITE
    serializer_class = ShipmentShipIn

    @api_doc(summary="Hand a shipment to the carrier", tags=ORDER_TAGS, request=ShipmentShipIn,
             idempotent=True,
             if_match=True, responses={200: ShipmentOut}, errors=(*WRITE_ERRORS, 404, 412),
             parameters=[ETAG_HEADER],
             error_examples={409: [("invalid_order_state",
                                    "The order cannot do this in its current state.")]},
             examples=[ex.request("ship", {"carrier": "SF Express", "tracking_number": "SF1234567890"}),
                       ex.ok("shipped", ex.SHIPMENT)])
    @idempotent
    def post(self, request, pk: int):
        shipment = self.get_object()
        data = ShipmentShipIn(data=request.data)
        data.is_valid(raise_exception=True)
        principal = self.principal
        _check_warehouse(principal, shipment.warehouse_id)
        order_guarded(order_id=shipment.order_id, request=request, action=lambda o: services.shipment_ship(
            shipment=shipment.pk, actor=principal.actor, **data.validated_data))
        return _etag(Response(ShipmentOut(_shipment(shipment.pk)).data),
                     Order.objects.get(pk=shipment.order_id))


# --- pickup (store staff) ---------------------------------------------------------------------------


class PickupLookup(PrincipalMixin, generics.GenericAPIView):
    """Check a pickup code at the counter (audited: who, where, when)."""

    required_scopes = {"POST": ORDERS_READ}
    principal_kinds = {STAFF}
    serializer_class = PickupIn

    @api_doc(summary="Look up a pickup code", tags=["pickup"], request=PickupIn,
             responses={200: OrderOut}, errors=(400, 401, 403, 413, 415, 422, 429),
             description="Store staff only. Reads the order for a pickup code at your store; refused "
                         "(and audited) when it is picked up elsewhere. Changes nothing, so no "
                         "Idempotency-Key.",
             error_examples={422: [("pickup_code_invalid", "Unknown pickup code.")],
                             403: [("wrong_store", "This order is not picked up at your store.")]},
             examples=[ex.request("code", {"code": "04711893", "store": 2}),
                       ex.ok("order", {**ex.ORDER, "status": "ready_for_pickup", "pickup_code": None})])
    def post(self, request):
        data = PickupIn(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        principal = self.principal
        store = _store_for(principal, data.validated_data["store"])
        order = services.pickup_lookup(code=data.validated_data["code"], store=store, actor=principal.actor)
        order = (orders_visible(principal).select_related("store").prefetch_related("lines", "lines__promotions")
                 .get(pk=order.pk))
        return Response(OrderOut(order, context={"request": request}).data)


class PickupHandover(PrincipalMixin, generics.GenericAPIView):
    required_scopes = {"POST": ORDERS_WRITE}
    principal_kinds = {STAFF}
    serializer_class = PickupIn

    @api_doc(summary="Hand a pickup order to the customer", tags=["pickup"], request=PickupIn,
             idempotent=True, if_match=True,
             responses={200: OrderDetailOut}, errors=(*WRITE_ERRORS, 412), parameters=[ETAG_HEADER],
             description="Store staff only: verifies the code at your store, takes the units out of the "
                         "stockroom and marks the order picked up.",
             error_examples={422: [("pickup_code_invalid", "Unknown pickup code.")],
                             403: [("wrong_store", "This order is not picked up at your store.")],
                             409: [("invalid_order_state",
                                    "The order cannot do this in its current state.")]},
             examples=[ex.request("code", {"code": "04711893", "store": 2}),
                       ex.ok("picked up", {**ex.ORDER_DETAIL, "status": "picked_up", "pickup_code": None})])
    @idempotent
    def post(self, request):
        data = PickupIn(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        principal = self.principal
        store = _store_for(principal, data.validated_data["store"])
        code = data.validated_data["code"]
        found = services._pickup_order(code, orders_visible(principal)) if request.headers.get("If-Match") else None
        if found is not None:
            # The optional If-Match is checked under the order's lock, in the handover's transaction.
            order = order_guarded(order_id=found.pk, request=request, action=lambda o: services.pickup_handover(
                code=code, store=store, actor=principal.actor))
        else:
            order = services.pickup_handover(code=code, store=store, actor=principal.actor)
        order = order_fresh(principal, order.pk)
        return _etag(Response(OrderDetailOut(order, context={"request": request}).data), order)


# --- returns ----------------------------------------------------------------------------------------


class ReturnViewMixin(PrincipalMixin):
    def get_queryset(self):
        principal = self.principal
        visible = Q(order__in=orders_visible(principal))
        if principal is not None and not principal.is_partner and principal.store_ids is not None:
            visible |= Q(store_id__in=principal.store_ids)
        return Return.objects.filter(visible).select_related("order").prefetch_related("lines")


class ReturnList(ReturnViewMixin, generics.ListAPIView):
    required_scopes = READ
    serializer_class = ReturnOut
    filterset_class = ReturnFilter
    ordering = ("updated_at", "id")

    @api_doc(summary="List returns", tags=ORDER_TAGS, responses={200: ReturnOut(many=True)},
             errors=LIST_ERRORS, examples=[ex.ok("return", ex.RETURN)],
             description="Returns of your orders in (updated_at, id) order; `updated_since` plus the cursor "
                         "is an incremental sync. Their refunds: /api/v1/refunds/.")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ReturnDetail(ReturnViewMixin, generics.RetrieveAPIView):
    required_scopes = READ
    serializer_class = ReturnOut

    @api_doc(summary="Read a return", tags=ORDER_TAGS, responses={200: ReturnOut}, errors=READ_ERRORS,
             examples=[ex.ok("return", ex.RETURN)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# --- availability -----------------------------------------------------------------------------------


class AvailabilityQuery(serializers.Serializer):
    sku = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), min_length=1,
                                max_length=100)
    store = serializers.PrimaryKeyRelatedField(queryset=Store.objects.filter(is_active=True), required=False,
                                               allow_null=True, default=None)
    channel = serializers.ChoiceField(choices=[Channel.WEB, Channel.MINI_PROGRAM, Channel.MARKETPLACE],
                                      required=False)


class Availability(PrincipalMixin, generics.GenericAPIView):
    required_scopes = {"GET": STOCK_READ}
    queryset = Store.objects.none()  # not a model list; named for the schema generator
    serializer_class = AvailabilityOut
    pagination_class = None

    @api_doc(
        summary="Available to promise per SKU", tags=["stock"], responses={200: AvailabilityOut(many=True)},
        errors=LIST_ERRORS,
        description="How many units one order of your channel can take: shipped, and (with store) picked "
                    "up at that store. Staff may name the channel (default web).",
        parameters=[OpenApiParameter("sku", int, many=True, required=True,
                                     description="SKU id; repeat (≤100)."),
                    OpenApiParameter("store", int, required=False, description="Pickup store id."),
                    OpenApiParameter("channel", str, required=False,
                                     enum=["web", "mini_program", "marketplace"],
                                     description="Staff only; a partner key always uses its own channel.")],
        examples=[ex.ok("availability", [ex.AVAILABILITY])])
    def get(self, request):
        query = AvailabilityQuery(data={"sku": request.query_params.getlist("sku"),
                                        "store": request.query_params.get("store"),
                                        **({"channel": request.query_params["channel"]}
                                           if "channel" in request.query_params else {})})
        query.is_valid(raise_exception=True)
        v = query.validated_data
        principal = self.principal
        store = v["store"]
        if store is not None and not principal.may_use_store(store.pk):
            raise serializers.ValidationError({"store": [_("Unknown store.")]})
        channel = principal.channel if principal.is_partner else v.get("channel", Channel.WEB)
        rows = availability(channel=channel, sku_ids=list(dict.fromkeys(v["sku"])), store=store)
        return Response(AvailabilityOut(rows, many=True).data)
