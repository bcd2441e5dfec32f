"""Wallet recharges over the API: ``POST /api/v1/members/{id}/wallet/recharges/``.

The customer pays at a provider (WeChat Pay, Alipay; the sandbox in development):
the answer is a pending payment with its payment code, and the wallet is credited
when the provider's notification captures it (``payments.recharges``).
"""

from __future__ import annotations

import uuid

from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.response import Response

from members.models import WalletRecharge
from o2o.api import MAX_ID, WRITE_ERRORS, StrictInput, api_doc
from o2o.apiauth import MEMBERS_WRITE, PARTNER, principal_of
from o2o.idempotency import idempotent
from payments import recharges
from payments.api.serializers import PaymentOut, payment_tenders
from payments.services import payment_provider_start


@extend_schema_field(OpenApiTypes.STR)
class ProviderTenderField(serializers.ChoiceField):
    """The provider tenders configured here; documented as text so the schema keeps one tender
    enum per choice set (the order payment start has the same set)."""


class RechargeStartIn(StrictInput, serializers.Serializer):
    tender = ProviderTenderField(choices=[], help_text="A provider tender the customer pays with at the "
                                                       "provider: wechat_pay, alipay (sandbox in development).")
    package = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True,
                                       default=None, help_text="A recharge package (pay X, get a bonus).")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=1, max_value=50000,
                                      required=False, allow_null=True, default=None,
                                      help_text="Or an amount in CNY, without bonus.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tender"].choices = payment_tenders()

    def validate(self, attrs):
        if (attrs["package"] is None) == (attrs["amount"] is None):
            raise serializers.ValidationError({"amount": [_("Give a package or an amount, not both.")]},
                                              code="invalid")
        return attrs


class WalletRechargeOut(serializers.ModelSerializer):
    class Meta:
        model = WalletRecharge
        fields = ["id", "member", "principal", "bonus", "reference", "created_at"]
        read_only_fields = fields


class RechargeStartOut(serializers.Serializer):
    payment = PaymentOut(help_text="Pay it at the provider with its payment_code.")
    recharge = WalletRechargeOut(allow_null=True, help_text="The credit, once the payment is captured.")


PAYMENT = {"id": 90, "number": "PY2612040000090", "tender": "sandbox", "amount": "500.00", "currency": "CNY",
           "status": "pending", "payment_code": "o2o-sandbox://pay?out_trade_no=PY2612040000090&total_fen=50000",
           "created_at": "2026-12-04T15:10:00+08:00", "captured_at": None}


class MemberRechargeStart(generics.GenericAPIView):
    required_scopes = {"POST": MEMBERS_WRITE}
    principal_kinds = {"POST": {PARTNER}}
    serializer_class = RechargeStartIn

    @api_doc(summary="Recharge a member's wallet (储值充值) online", tags=["members"], request=RechargeStartIn,
             idempotent=True, responses={201: RechargeStartOut}, errors=(*WRITE_ERRORS, 404, 503),
             description="Opens a pending provider payment for the package's price (or the amount) and returns "
                         "its payment_code. When the provider's notification captures the payment, the wallet is "
                         "credited (principal, plus the package's bonus); GET the member to see the balance. "
                         "The payment is in the day's settlement like any other.",
             error_examples={404: [("member_not_found", "No such member.")],
                             422: [("recharge_package_inactive", "This recharge package is not on sale.")]},
             examples=[OpenApiExample("package", request_only=True, value={"tender": "sandbox", "package": 2}),
                       OpenApiExample("started", response_only=True, status_codes=["201"],
                                      value={"payment": PAYMENT, "recharge": None})])
    # The provider is asked for its payment code after the payment row committed (network).
    @idempotent(atomic=False)
    def post(self, request, pk: int):
        data = RechargeStartIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        result = recharges.recharge_start(member=int(pk), tender=v["tender"], client_uuid=uuid.uuid4(),
                                          actor=principal_of(request).actor, package=v["package"],
                                          amount=v["amount"])
        payment = result.payment
        if not payment.payment_code:
            payment = payment_provider_start(payment=payment.pk)
        return Response(RechargeStartOut({"payment": payment, "recharge": result.recharge}).data, status=201)


urlpatterns = [
    path("members/<int:pk>/wallet/recharges/", MemberRechargeStart.as_view(), name="member-wallet-recharge"),
]
