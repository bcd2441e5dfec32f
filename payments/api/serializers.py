"""Payment output and the provider-notification documentation serializers."""

from django.conf import settings
from rest_framework import serializers

from o2o.api import ModelFieldsOnce, StrictInput
from payments.models import Payment
from payments.providers import provider_named
from payments.tenders import tender_for, tenders_registered


def provider_configured(provider: str) -> bool:
    """Whether a provider's settings are present, so its tender can be offered to API clients."""
    if provider == "sandbox":
        return bool(getattr(settings, "SANDBOX_PAY_ENABLED", True))
    if provider in ("wechat_pay", "alipay"):
        return provider_named(provider).configured()
    return False


def payment_tenders() -> list[str]:
    """Tenders a client may start a payment with: provider-backed ones whose provider is configured."""
    return [t for t in tenders_registered()
            if tender_for(t).provider_backed and provider_configured(tender_for(t).provider)]


PAY_METHODS = ["qr", "jsapi", "mini_program"]


class PaymentStartIn(StrictInput, serializers.Serializer):
    tender = serializers.ChoiceField(choices=[],
                                     help_text="A provider tender: the customer pays at the provider.")
    method = serializers.ChoiceField(
        choices=PAY_METHODS, default="qr",
        help_text="qr: a QR code / payment URL (WeChat Native, Alipay precreate; every provider). "
                  "jsapi: inside WeChat (official account), needs openid. mini_program: a WeChat mini-program "
                  "(needs openid) or an Alipay mini-program (needs buyer_id). Another method than the tender's "
                  "provider offers: 400 payment_method_unsupported.")
    openid = serializers.CharField(required=False, max_length=128, trim_whitespace=True,
                                   help_text="The payer's WeChat openid under the paying AppID (jsapi, "
                                             "mini_program with wechat_pay).")
    buyer_id = serializers.CharField(required=False, max_length=32, trim_whitespace=True,
                                     help_text="The payer's Alipay user id, 2088 and 12 digits (mini_program "
                                               "with alipay).")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tender"].choices = payment_tenders()


class PaymentOut(ModelFieldsOnce, serializers.ModelSerializer):
    payment_code = serializers.SerializerMethodField(
        help_text="What the customer scans or opens to pay (QR payload / URL) while the payment is pending.")

    class Meta:
        model = Payment
        fields = ["id", "number", "tender", "amount", "currency", "status", "payment_code", "created_at",
                  "captured_at"]
        read_only_fields = fields

    def get_payment_code(self, obj) -> str | None:
        return obj.payment_code or None if obj.status == Payment.Status.PENDING else None


class WeChatPayParamsOut(serializers.Serializer):
    """Exactly what ``wx.requestPayment`` (mini-program) / ``WeixinJSBridge getBrandWCPayRequest`` takes."""

    appId = serializers.CharField()
    timeStamp = serializers.CharField()
    nonceStr = serializers.CharField()
    package = serializers.CharField(help_text="prepay_id=…")
    signType = serializers.CharField(help_text="RSA")
    paySign = serializers.CharField()


class PaymentStartOut(PaymentOut):
    method = serializers.CharField(read_only=True, help_text="qr, jsapi or mini_program.")
    pay_params = WeChatPayParamsOut(read_only=True, allow_null=True,
                                    help_text="WeChat jsapi / mini_program: pass to wx.requestPayment; else null.")
    trade_no = serializers.CharField(read_only=True, allow_null=True,
                                     help_text="Alipay mini_program: pass to my.tradePay; else null.")

    class Meta(PaymentOut.Meta):
        fields = PaymentOut.Meta.fields + ["method", "pay_params", "trade_no"]
        read_only_fields = fields

    def __init__(self, start=None, **kwargs):
        self.start = start
        super().__init__(start.payment if start is not None else None, **kwargs)

    def to_representation(self, instance):
        # The declared extra fields document the shape; their values come from the start.
        data = PaymentOut(instance).data
        data["method"] = instance.method or "qr"
        data["pay_params"] = dict(self.start.pay_params) if self.start and self.start.pay_params else None
        data["trade_no"] = (self.start.trade_no or None) if self.start else None
        return data


class AckOut(serializers.Serializer):
    """The acknowledgement WeChat Pay and the sandbox expect (Alipay expects the text "success")."""

    code = serializers.CharField(help_text="SUCCESS, or FAIL (WeChat Pay) / an error code (sandbox).")
    message = serializers.CharField()


class SandboxNotificationIn(serializers.Serializer):
    """The sandbox provider's notification body, signed in the X-Sandbox-* headers."""

    out_trade_no = serializers.CharField(help_text="Our payment number.")
    transaction_id = serializers.CharField()
    trade_state = serializers.ChoiceField(choices=["SUCCESS", "CLOSED"])
    amount_fen = serializers.IntegerField(min_value=1)
