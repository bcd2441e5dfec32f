"""Payment output and the provider-notification documentation serializers."""

from django.conf import settings
from rest_framework import serializers

from o2o.api import StrictInput
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


class PaymentStartIn(StrictInput, serializers.Serializer):
    tender = serializers.ChoiceField(choices=[],
                                     help_text="A provider tender: the customer pays at the provider.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tender"].choices = payment_tenders()


class PaymentOut(serializers.ModelSerializer):
    payment_code = serializers.SerializerMethodField(
        help_text="What the customer scans or opens to pay (QR payload / URL) while the payment is pending.")

    class Meta:
        model = Payment
        fields = ["id", "number", "tender", "amount", "currency", "status", "payment_code", "created_at",
                  "captured_at"]
        read_only_fields = fields

    def get_payment_code(self, obj) -> str | None:
        return obj.payment_code or None if obj.status == Payment.Status.PENDING else None


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
