"""Refunds over the API: every refund of a visible order, with its status and the tender it went to.

A refund belongs to a payment, and a payment to an order by its number (``Payment.reference``), so
the caller sees the refunds of the orders it sees (``orders_visible``) and nothing else: another
partner's refund is a 404.  Refunds are written by the order's own actions (cancel, return, an
overpayment given back); this resource only reads them.
"""

from __future__ import annotations

from django.db.models import BigIntegerField, OuterRef, Subquery
from django.shortcuts import get_object_or_404
from rest_framework import generics, serializers

from o2o.api import LIST_ERRORS, READ_ERRORS, api_doc
from o2o.apiauth import ORDERS_READ
from orders.api import examples as ex
from orders.api.filters import RefundFilter
from orders.api.views import PrincipalMixin, orders_visible
from orders.models import Order
from payments.models import Refund, Tender

REFUND_TAGS = ["refunds"]
READ = {"GET": ORDERS_READ}

REFUND_EXAMPLE = {
    "id": 31, "number": "RF2611230001", "order": 1042, "order_number": "MP2611230001", "payment": 77,
    "payment_number": "PY2611230003", "tender": "wechat_pay", "amount": "99.00", "currency": "CNY",
    "status": "succeeded", "method": "original", "overpayment": False, "reason": "return RT2611240001",
    "policy_note": "wechat_pay: refunded to the original account at store HZ001", "store": 3,
    "created_at": "2026-11-24T10:00:00+08:00", "completed_at": "2026-11-24T10:00:05+08:00",
    "updated_at": "2026-11-24T10:00:05+08:00"}


class RefundOut(serializers.ModelSerializer):
    order = serializers.IntegerField(source="order_id", read_only=True, allow_null=True,
                                     help_text="The order the refunded payment belongs to.")
    order_number = serializers.CharField(source="payment.reference", read_only=True)
    payment_number = serializers.CharField(source="payment.number", read_only=True)
    tender = serializers.ChoiceField(source="payment.tender", choices=Tender.choices, read_only=True,
                                     help_text="The tender the money went back to (that of the payment).")

    class Meta:
        model = Refund
        fields = ["id", "number", "order", "order_number", "payment", "payment_number", "tender", "amount",
                  "currency", "status", "method", "overpayment", "reason", "policy_note", "store", "created_at",
                  "completed_at", "updated_at"]
        read_only_fields = fields


def refunds_visible(principal):
    """Refunds of the caller's orders, each with its order's id."""
    numbers = orders_visible(principal).values("number")
    order_id = Order.objects.filter(number=OuterRef("payment__reference")).values("pk")[:1]
    return (Refund.objects.filter(payment__reference__in=numbers).select_related("payment")
            .annotate(order_id=Subquery(order_id, output_field=BigIntegerField())))


class RefundList(PrincipalMixin, generics.ListAPIView):
    required_scopes = READ
    serializer_class = RefundOut
    filterset_class = RefundFilter
    ordering = ("updated_at", "id")

    def get_queryset(self):
        return refunds_visible(self.principal)

    @api_doc(summary="List refunds", tags=REFUND_TAGS, responses={200: RefundOut(many=True)}, errors=LIST_ERRORS,
             description="Refunds of your orders in (updated_at, id) order: a refund asked of a provider is "
                         "pending until the provider confirms it (succeeded or failed), which moves its "
                         "updated_at, so `updated_since` plus the cursor is an incremental sync.",
             operation_id="refunds_list", examples=[ex.ok("refund", REFUND_EXAMPLE)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RefundDetail(PrincipalMixin, generics.RetrieveAPIView):
    required_scopes = READ
    serializer_class = RefundOut

    def get_queryset(self):
        return refunds_visible(self.principal)

    @api_doc(summary="Read a refund", tags=REFUND_TAGS, responses={200: RefundOut}, errors=READ_ERRORS,
             operation_id="refunds_retrieve", examples=[ex.ok("refund", REFUND_EXAMPLE)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class OrderRefundList(PrincipalMixin, generics.ListAPIView):
    required_scopes = READ
    serializer_class = RefundOut
    queryset = Refund.objects.none()  # named for the schema generator; the real one needs the order
    ordering = ("updated_at", "id")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Refund.objects.none()
        order = get_object_or_404(orders_visible(self.principal), pk=self.kwargs["pk"])
        return refunds_visible(self.principal).filter(payment__reference=order.number)

    @api_doc(summary="List the refunds of an order", tags=REFUND_TAGS, responses={200: RefundOut(many=True)},
             errors=(*LIST_ERRORS, 404), operation_id="orders_refunds_list",
             examples=[ex.ok("refund", REFUND_EXAMPLE)],
             description="Every refund of the order's payments: returns, cancellation, and money given "
                         "back that never counted towards the order (`overpayment`).")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
