"""Payment provider notifications: POST /api/v1/payments/notify/<provider>/.

The provider's signature is the authentication (verified by the payments
service); a partner key may also relay notifications, if it holds
``payments:notify``.  Signed notifications are not anonymous traffic: they never
count against the per-address limit for unauthenticated calls
(``SignedNotificationRateLimit``).  The notification goes to ``order_payment_notify``, which
applies it exactly once and marks the order paid; the answer is the
acknowledgement the provider expects (``payments.api.acks``).

It lives with the orders API because marking the order paid is an orders
service (payments never imports orders).
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework.views import APIView

from o2o.api import api_doc
from o2o.apiauth import (
    PAYMENTS_NOTIFY,
    InsufficientScope,
    PartnerKeyAuthentication,
    principal_of,
    scope_message,
)
from o2o.errors import NotFound
from o2o.ratelimit import RateLimit
from orders import services
from payments.api.acks import PROVIDERS, provider_answer
from payments.api.serializers import AckOut, SandboxNotificationIn
from payments.services import notification_signed

ACK_EXAMPLES = [
    OpenApiExample("acknowledged", value={"code": "SUCCESS", "message": "OK"}, response_only=True,
                   status_codes=["200"]),
    OpenApiExample("signed sandbox notification", request_only=True, value={
        "out_trade_no": "PY2611230000077", "transaction_id": "SBXPY2611230000077", "trade_state": "SUCCESS",
        "amount_fen": 25800}),
]


class SignedNotificationRateLimit(RateLimit):
    """A notification with a valid provider signature is the provider, authenticated: it is never counted
    against the anonymous per-address limit (a provider sends from a few addresses, for every paid order).
    Unsigned or forged notifications are anonymous traffic and limited as such; a relaying key by its own limit.
    """

    def anonymous_exempt(self, request, view) -> bool:
        return notification_signed(provider=view.kwargs.get("provider", ""), headers=dict(request.headers.items()),
                                   body=request._request.body)


class ProviderNotify(APIView):
    required_scopes = None
    authentication_classes = [PartnerKeyAuthentication]
    throttle_classes = [SignedNotificationRateLimit]
    parser_classes: list = []

    @api_doc(
        summary="Receive a payment provider notification", tags=["payments"],
        description="The provider's signed notification (sandbox: X-Sandbox-Timestamp, X-Sandbox-Nonce and "
                    "X-Sandbox-Signature headers; WeChat Pay: Wechatpay-* headers; Alipay: a signed form). "
                    "Applied exactly once. Answers what the provider expects: WeChat Pay and the sandbox "
                    'JSON {"code": "SUCCESS"} (or an error with 4xx so the provider retries), Alipay the '
                    'text "success" / "fail". No API key needed; a key that sends one must hold '
                    "payments:notify.",
        auth=[{"bearerAuth": []}, {}],
        parameters=[OpenApiParameter("provider", str, OpenApiParameter.PATH, enum=PROVIDERS)],
        request={"application/json": SandboxNotificationIn,
                 "application/x-www-form-urlencoded": OpenApiTypes.OBJECT},
        responses={(200, "application/json"): OpenApiResponse(AckOut,
                                                              description="Applied, or already applied."),
                   (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description='Alipay: "success".'),
                   (400, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description='Alipay: "fail".')},
        errors=(400, 401, 403, 404, 413, 429),
        error_examples={401: [("invalid_signature", "The notification signature is not valid."),
                              ("FAIL", "rejected_signature")],
                        400: [("notification_unknown_payment",
                               "The notification was not applied: unknown_payment."),
                              ("notification_rejected_amount",
                               "The notification was not applied: rejected_amount.")],
                        404: [("unknown_provider", "Unknown payment provider.")]},
        examples=ACK_EXAMPLES)
    def post(self, request, provider: str):
        principal = principal_of(request)
        if principal is not None and PAYMENTS_NOTIFY not in principal.scopes:
            raise InsufficientScope(scope_message(PAYMENTS_NOTIFY))
        body = request._request.body
        note = None
        # No provider sends NUL bytes, and the notification log cannot store them: refused unlogged.
        if b"\x00" not in body:
            # Logged (as rejected) even for an unknown provider: every notification leaves a trace.
            note = services.order_payment_notification(provider=provider, headers=dict(request.headers.items()),
                                                       body=body)[1]
        if provider not in PROVIDERS:
            raise NotFound(_("Unknown payment provider."), code="unknown_provider")
        return provider_answer(provider, note)
