"""Alipay (支付宝) through the ``python-alipay-sdk`` SDK.

The SDK signs requests (RSA2) with the app private key, verifies the signature of every
synchronous answer with Alipay's public key, and verifies notifications.  This adapter adds what
the SDK leaves to its user:

* a business failure comes back as a dict (``code`` 40004 with a ``sub_code``, 10003 while the
  buyer confirms): every answer's ``code`` is read here;
* the request timestamp is Beijing time (the SDK would stamp the host's local time);
* notifications are decoded in their declared charset, repeated keys refused, ``sign`` and
  ``sign_type`` taken out before the SDK verifies;
* the gateway comes from ``ALIPAY_GATEWAY_URL`` (the SDK keeps it in ``_gateway``);
* bar-code pay (当面付) answering 10003 is queried, then cancelled on timeout; a repeated refund
  (``fund_change`` N) is confirmed by the refund query rather than taken as a failure;
* the bill (a zip with GBK-encoded member names) is downloaded and its detail file returned.

Settings: ``ALIPAY_APP_ID``, ``ALIPAY_APP_PRIVATE_KEY`` and ``ALIPAY_PUBLIC_KEY`` (PEM, the bare
base64 the console shows, or a path), ``ALIPAY_NOTIFY_URL``.
"""

from __future__ import annotations

import codecs
import io
import zipfile
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import parse_qsl

import requests
from alipay import AliPay
from alipay.utils import AliPayConfig
from django.conf import settings

from payments.exceptions import ProviderNotConfigured, ProviderUnavailable
from payments.providers import config
from payments.providers.base import (
    Bill,
    MicropayResult,
    MicropayStatus,
    Notification,
    NotificationStatus,
    ProviderAdapter,
    RefundResult,
    RefundStatus,
    code_settle,
    reject,
    yuan_to_amount,
)

if TYPE_CHECKING:
    from payments.models import Payment, Refund

_STATES = {
    "TRADE_SUCCESS": NotificationStatus.SUCCESS,
    "TRADE_FINISHED": NotificationStatus.SUCCESS,
    "TRADE_CLOSED": NotificationStatus.FAILED,
}
OK, WAITING = "10000", "10003"
_NOT_EXIST = {"ACQ.TRADE_NOT_EXIST"}
_CODE_DECLINES = {
    "ACQ.BUYER_BALANCE_NOT_ENOUGH": "insufficient_balance",
    "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH": "insufficient_balance",
    "ACQ.PAYMENT_AUTH_CODE_INVALID": "code_expired",
    "ACQ.AUTH_CODE_INVALID": "invalid_code",
    "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR": "risk_declined",
    "ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR": "risk_declined",
    "ACQ.PAYMENT_FAIL": "declined",
    "ACQ.BUYER_ENABLE_STATUS_FORBID": "risk_declined",
    "ACQ.ERROR_BUYER_CERTIFY_LEVEL_LIMIT": "risk_declined",
    "ACQ.TRADE_HAS_CLOSE": "declined",
}
REQUIRED = ("ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY", "ALIPAY_NOTIFY_URL")


def gateway_url() -> str:
    return config.setting("ALIPAY_GATEWAY_URL") or config.ALIPAY_DEFAULT_GATEWAY_URL


def alipay_params(body: bytes) -> dict[str, str]:
    """Decode the form body in its declared charset; refuses repeated keys (the SDK takes a dict)."""
    try:
        charset = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True)).get("charset") or "utf-8"
        codecs.lookup(charset)
        pairs = parse_qsl(body.decode("ascii", errors="strict") if body.isascii() else body.decode(charset),
                          keep_blank_values=True, encoding=charset, errors="strict")
    except (LookupError, UnicodeError, ValueError):
        raise reject("bad_payload") from None
    params = dict(pairs)
    if len(params) != len(pairs):
        raise reject("bad_payload")
    return params


def bill_member_name(info: zipfile.ZipInfo) -> str:
    """Alipay stores the zip's member names in GBK without the UTF-8 flag: Python reads them as cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def yuan(amount) -> str:
    return f"{amount:.2f}"


class AlipayProvider(ProviderAdapter):
    name = "alipay"
    methods = {"qr": "", "mini_program": "buyer_id"}
    logged_headers = ("content-type",)

    # --- configuration --------------------------------------------------------------------------

    def missing_settings(self) -> list[str]:
        return [name for name in REQUIRED if not config.setting(name)]

    def configured(self) -> bool:
        return not self.missing_settings()

    def _client(self, *, for_notification: bool = False) -> AliPay:
        missing = self.missing_settings()
        if for_notification:  # the notify URL is needed to send, not to verify
            missing = [m for m in missing if m != "ALIPAY_NOTIFY_URL"]
        if missing:
            raise ProviderNotConfigured(params={"provider": self.name})
        try:
            client = AliPay(appid=config.setting("ALIPAY_APP_ID"), app_notify_url=config.setting("ALIPAY_NOTIFY_URL"),
                            app_private_key_string=config.der_or_pem(config.key_material("ALIPAY_APP_PRIVATE_KEY")),
                            alipay_public_key_string=config.der_or_pem(config.key_material("ALIPAY_PUBLIC_KEY")),
                            sign_type="RSA2", config=AliPayConfig(timeout=config.timeout_seconds()))
        except Exception:  # a key the SDK cannot read
            raise ProviderNotConfigured(params={"provider": self.name}) from None
        client._gateway = gateway_url()  # no public option; tests/test_payment_sdks.py guards it
        return client

    def _call(self, method: str, reference: str, biz: dict[str, Any], *, attempts: int = 1,
              client: AliPay | None = None, **extra: Any) -> dict[str, Any]:
        """One signed call; returns the verified answer (its ``code`` still to read).

        Raises ProviderUnavailable for a transport failure after ``attempts`` tries and for an
        answer that is unsigned, refused at the gateway or whose signature fails.
        """
        client = client or self._client()
        for attempt in range(1, attempts + 1):
            try:
                with config.logged_call(self.name, method, reference, biz) as record:
                    answer = client.server_api(method, dict(biz), timestamp=config.beijing_now(), **extra)
                    record.update(status=answer.get("code"), answer=answer)
                return answer
            except OSError:  # urllib: refused, reset, timed out
                if attempt == attempts:
                    raise ProviderUnavailable(params={"provider": self.name, "reason": "transport"}) from None
            except Exception as exc:  # AliPayException (unsigned / gateway error), AliPayValidationError
                raise ProviderUnavailable(params={"provider": self.name, "reason": "bad_answer",
                                                  "detail": type(exc).__name__}) from None
        raise AssertionError("unreachable")

    # --- notifications --------------------------------------------------------------------------

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        client = self._client(for_notification=True)
        params = alipay_params(body)
        signature = params.pop("sign", "")
        if params.get("sign_type") != "RSA2" or not signature:
            raise reject("missing_signature")
        try:
            good = client.verify(dict(params), signature)
        except Exception:  # a signature that is not base64, a sign type the SDK refuses
            good = False
        if not good:
            raise reject("bad_signature")
        params.pop("sign_type", None)
        if params.get("app_id") != config.setting("ALIPAY_APP_ID"):
            raise reject("wrong_app_id")
        txn_id, reference = params.get("trade_no", ""), params.get("out_trade_no", "")
        if not txn_id or not reference or "trade_status" not in params:
            raise reject("bad_payload")
        if params.get("out_biz_no") and params.get("refund_fee"):
            # A refund's notification (部分退款 keeps the trade TRADE_SUCCESS): our refund number.
            # ``refund_fee`` is what the trade has refunded in all, not this refund's amount.
            return Notification(provider_txn_id=txn_id, reference=reference,
                                amount=yuan_to_amount(params.get("refund_fee")), status=NotificationStatus.SUCCESS,
                                raw=params, refund_reference=params["out_biz_no"],
                                provider_refund_id=f"{txn_id}-{params['out_biz_no']}"[:64], refund_total=True)
        return Notification(provider_txn_id=txn_id, reference=reference,
                            amount=yuan_to_amount(params.get("total_amount")),
                            status=_STATES.get(params["trade_status"], NotificationStatus.PENDING), raw=params)

    # --- payments ------------------------------------------------------------------------------

    @staticmethod
    def _subject(payment: Payment) -> str:
        return f"订单 {payment.reference}"[:256]

    def payment_open(self, payment: Payment, *, method: str = "qr", payer: str = "") -> dict[str, Any]:
        return self.create_payment(payment, channel="mini" if method == "mini_program" else "qr", buyer_id=payer)

    def create_payment(self, payment: Payment, *, channel: str = "qr", buyer_id: str = "") -> dict[str, Any]:
        """``qr``: precreate, the QR ``code_url`` (当面付 扫码); ``app``: the signed order string the
        app SDK takes; ``wap``: the URL to open in a mobile browser; ``mini``: alipay.trade.create
        for a mini-program buyer (``buyer_id``), its ``trade_no`` for my.tradePay."""
        biz = {"out_trade_no": payment.number, "total_amount": yuan(payment.amount),
               "subject": self._subject(payment)}
        client = self._client()
        if channel == "app":
            return {"order_string": client.client_api("alipay.trade.app.pay", biz, timestamp=config.beijing_now())}
        if channel == "wap":
            query = client.client_api("alipay.trade.wap.pay", {**biz, "product_code": "QUICK_WAP_WAY"},
                                      timestamp=config.beijing_now())
            return {"code_url": f"{gateway_url()}?{query}"}
        if channel == "mini":
            answer = self._call("alipay.trade.create", payment.number, {**biz, "buyer_id": buyer_id}, client=client)
            if answer.get("code") != OK or not answer.get("trade_no"):
                raise self._unavailable(answer)
            return {"trade_no": str(answer["trade_no"])}
        answer = self._call("alipay.trade.precreate", payment.number, biz, client=client)
        if answer.get("code") != OK or not answer.get("qr_code"):
            raise self._unavailable(answer)
        return {"code_url": str(answer["qr_code"])}

    def _unavailable(self, answer: dict[str, Any]) -> ProviderUnavailable:
        return ProviderUnavailable(params={"provider": self.name,
                                           "reason": str(answer.get("sub_code") or answer.get("code") or "error")})

    def query(self, payment: Payment) -> dict[str, Any]:
        answer = self._call("alipay.trade.query", payment.number, {"out_trade_no": payment.number},
                            attempts=config.query_attempts())
        if answer.get("sub_code") in _NOT_EXIST:  # a QR nobody scanned is not a trade yet
            return {"status": "not_found"}
        if answer.get("code") != OK:
            raise self._unavailable(answer)
        state = str(answer.get("trade_status", ""))
        return {"status": _STATES.get(state, NotificationStatus.PENDING), "trade_state": state,
                "provider_txn_id": str(answer.get("trade_no") or ""),
                "amount": yuan_to_amount(answer["total_amount"]) if answer.get("total_amount") else None}

    # --- payment codes (当面付 条码支付) -------------------------------------------------------

    def micropay(self, payment: Payment, auth_code: str) -> MicropayResult:
        client = self._client()  # ProviderNotConfigured before anything is sent
        biz = {"out_trade_no": payment.number, "scene": "bar_code", "auth_code": auth_code,
               "subject": self._subject(payment), "total_amount": yuan(payment.amount)}
        try:
            first = self._code_answer(self._call("alipay.trade.pay", payment.number, biz, client=client))
        except ProviderUnavailable:  # the request may have left: the query says what happened
            first = MicropayResult(status=MicropayStatus.PENDING, message="no answer to the charge")
        return code_settle(first=first, query=lambda: self._code_state(client, payment),
                           reverse=lambda: self._code_cancel(client, payment),
                           wait_seconds=float(getattr(settings, "PAYMENTS_CODE_WAIT_SECONDS", 45)),
                           poll_seconds=float(getattr(settings, "PAYMENTS_CODE_POLL_SECONDS", 3)))

    def micropay_resolve(self, payment: Payment) -> MicropayResult:
        client = self._client()
        # A trade Alipay never received answers the cancel with TRADE_NOT_EXIST: nothing was taken.
        return code_settle(first=self._code_state(client, payment), query=lambda: self._code_state(client, payment),
                           reverse=lambda: self._code_cancel(client, payment), wait_seconds=0, poll_seconds=0)

    @staticmethod
    def _code_answer(answer: dict[str, Any]) -> MicropayResult:
        code, sub_code = str(answer.get("code", "")), str(answer.get("sub_code", ""))
        if code == OK and answer.get("trade_no"):
            return MicropayResult(status=MicropayStatus.SUCCESS, provider_txn_id=str(answer["trade_no"]))
        if sub_code in _CODE_DECLINES:
            return MicropayResult(status=MicropayStatus.FAILED, reason=_CODE_DECLINES[sub_code],
                                  message=str(answer.get("sub_msg", ""))[:200])
        # 10003 (the buyer confirms on the phone), 20000 (unknown), ACQ.TRADE_HAS_SUCCESS: query.
        return MicropayResult(status=MicropayStatus.PENDING, message=sub_code or code)

    def _code_state(self, client: AliPay, payment: Payment) -> MicropayResult:
        try:
            answer = self._call("alipay.trade.query", payment.number, {"out_trade_no": payment.number},
                                client=client)
        except ProviderUnavailable:
            return MicropayResult(status=MicropayStatus.PENDING)
        state = str(answer.get("trade_status", ""))
        if answer.get("code") == OK and state in ("TRADE_SUCCESS", "TRADE_FINISHED") and answer.get("trade_no"):
            return MicropayResult(status=MicropayStatus.SUCCESS, provider_txn_id=str(answer["trade_no"]))
        if answer.get("code") == OK and state == "TRADE_CLOSED":
            return MicropayResult(status=MicropayStatus.FAILED, reason="declined", message=state)
        return MicropayResult(status=MicropayStatus.PENDING, message=state or str(answer.get("sub_code", "")))

    def _code_cancel(self, client: AliPay, payment: Payment) -> bool:
        for _attempt in range(3):  # Alipay says retry_flag Y: cancel again
            try:
                answer = self._call("alipay.trade.cancel", payment.number, {"out_trade_no": payment.number},
                                    client=client)
            except ProviderUnavailable:
                continue
            if answer.get("code") == OK and answer.get("retry_flag", "N") != "Y":
                return True
            if answer.get("sub_code") in _NOT_EXIST:  # never became a trade: nothing to give back
                return True
        return False

    # --- refunds -------------------------------------------------------------------------------

    def refund(self, refund: Refund) -> RefundResult:
        payment = refund.payment
        answer = self._call("alipay.trade.refund", refund.number, {
            "out_trade_no": payment.number, "refund_amount": yuan(refund.amount),
            "out_request_no": refund.number, "refund_reason": (refund.reason or "")[:256]})
        if answer.get("code") == OK:
            if answer.get("fund_change") == "Y":
                return RefundResult(status=RefundStatus.SUCCEEDED,
                                    provider_refund_id=self._refund_id(answer, refund))
            # N: this refund was already made (a resend), or is not settled yet: the query says which.
            return self.refund_query(refund) or RefundResult(status=RefundStatus.PENDING)
        if str(answer.get("code")) in ("20000", "40004") and answer.get("sub_code") in (
                "ACQ.SYSTEM_ERROR", "ACQ.REASON_TRADE_REFUND_FEE_ERR_NOT_SETTLED", "aop.ACQ.SYSTEM_ERROR"):
            raise self._unavailable(answer)
        if str(answer.get("code")) == "20000":
            raise self._unavailable(answer)
        return RefundResult(status=RefundStatus.FAILED,
                            message=f"{answer.get('sub_code', '')}: {answer.get('sub_msg', '')}"[:300])

    @staticmethod
    def _refund_id(answer: dict[str, Any], refund: Refund) -> str:
        # Alipay has no refund id of its own: the trade and our request number name the refund.
        return f"{answer.get('trade_no', '')}-{refund.number}"[:64]

    def refund_query(self, refund: Refund) -> RefundResult | None:
        answer = self._call("alipay.trade.fastpay.refund.query", refund.number, {
            "out_trade_no": refund.payment.number, "out_request_no": refund.number,
            "query_options": ["gmt_refund_pay"]}, attempts=config.query_attempts())
        if answer.get("sub_code") in _NOT_EXIST:
            return None
        if answer.get("code") != OK:
            raise self._unavailable(answer)
        if answer.get("refund_status") == "REFUND_SUCCESS" or (
                "refund_status" not in answer and answer.get("refund_amount")):
            return RefundResult(status=RefundStatus.SUCCEEDED, provider_refund_id=self._refund_id(answer, refund))
        if not answer.get("out_request_no") and not answer.get("refund_amount"):
            return None  # code 10000 with nothing: Alipay never received this refund
        return RefundResult(status=RefundStatus.PENDING)

    # --- bills ---------------------------------------------------------------------------------

    def bills(self, day: str) -> list[Bill]:
        """The day's business detail (业务明细, bill_type trade) from the bill download URL."""
        answer = self._call("alipay.data.dataservice.bill.downloadurl.query", day,
                            {"bill_type": "trade", "bill_date": day}, attempts=config.query_attempts())
        if answer.get("sub_code") == "isp.bill_not_exist":
            return []
        if answer.get("code") != OK or not answer.get("bill_download_url"):
            raise self._unavailable(answer)
        url = str(answer["bill_download_url"])
        with config.logged_call(self.name, "bill_download", day, {"bill_date": day}) as record:
            try:
                response = requests.get(url, timeout=config.timeout_seconds())
            except requests.RequestException:
                raise ProviderUnavailable(params={"provider": self.name, "reason": "transport"}) from None
            record.update(status=response.status_code, answer=f"<{len(response.content)} bytes>")
        if response.status_code != 200:
            raise ProviderUnavailable(params={"provider": self.name, "reason": f"bill_download_{response.status_code}"})
        return [Bill(provider=self.name, day=day, kind="trade", file_name=f"alipay-trade-{day}.csv",
                     data=self._bill_detail(response.content))]

    def _bill_detail(self, data: bytes) -> bytes:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    name = bill_member_name(info)
                    if name.endswith(".csv") and "汇总" not in name:
                        return archive.read(info)
        except zipfile.BadZipFile:
            pass
        raise ProviderUnavailable(params={"provider": self.name, "reason": "bill_not_zip"})
