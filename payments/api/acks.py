"""How each payment provider wants its notification answered.

WeChat Pay: JSON ``{"code": "SUCCESS"}`` with 200 (or ``FAIL`` with a 4xx, so it
retries); Alipay: the text ``success`` (anything else makes it retry); the
sandbox: JSON like WeChat Pay's, with our error codes when refused.
"""

from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext

from payments.models import PaymentNotification

PROVIDERS = ["sandbox", "wechat_pay", "alipay"]
ACKNOWLEDGED = {PaymentNotification.Outcome.APPLIED, PaymentNotification.Outcome.DUPLICATE,
                PaymentNotification.Outcome.OUT_OF_ORDER}


def provider_answer(provider: str, note: PaymentNotification | None):
    ok = note is not None and note.outcome in ACKNOWLEDGED
    if provider == "alipay":
        return HttpResponse("success" if ok else "fail", content_type="text/plain", status=200 if ok else 400)
    if ok:
        return JsonResponse({"code": "SUCCESS", "message": "OK"})
    outcome = note.outcome if note is not None else PaymentNotification.Outcome.REJECTED_SIGNATURE
    status = 401 if outcome == PaymentNotification.Outcome.REJECTED_SIGNATURE else 400
    if provider == "wechat_pay":
        return JsonResponse({"code": "FAIL", "message": outcome}, status=status)
    code = "invalid_signature" if status == 401 else f"notification_{outcome}"
    message = gettext("The notification signature is not valid.") if status == 401 else \
        gettext("The notification was not applied: %(outcome)s.") % {"outcome": outcome}
    return JsonResponse({"code": code, "message": message}, status=status)
