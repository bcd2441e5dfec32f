"""WeChat Pay API v3 (微信支付 APIv3) through the ``wechatpayv3`` SDK.

The SDK signs every request with the merchant private key, verifies every 2xx answer with the
platform certificate or platform public key, and verifies and decrypts notifications.  This
adapter adds what the SDK leaves to its user:

* errors come back from the SDK as ``(status, text)``: they are read here and mapped to
  stable results and domain errors;
* the SDK does not check a notification's timestamp, so stale ones (and replays) are refused
  here; a notification signed with a serial we do not hold is refused before the SDK would
  fetch certificates (no network call inside the notification's transaction);
* the gateway comes from ``WECHATPAY_API_URL`` (the SDK keeps it in ``_core._gate_way``);
* the payment-code charge (v3 ``codepay``) settles USERPAYING by querying, then reversing;
* bills are downloaded, unzipped and checked against the hash the bill API gave.

Settings (see payments_check and docs/payments.md): ``WECHAT_PAY_MCHID``, ``WECHAT_PAY_APPID``,
``WECHAT_PAY_APIV3_KEY`` (32 characters), ``WECHAT_PAY_PRIVATE_KEY`` (PEM or a path),
``WECHAT_PAY_CERT_SERIAL`` (of the merchant API certificate), the platform's verification key:
``WECHAT_PAY_PUBLIC_KEY`` + ``WECHAT_PAY_PUBLIC_KEY_ID`` (public-key mode) and/or
``WECHAT_PAY_CERT_DIR`` (a directory of platform certificates), ``WECHAT_PAY_NOTIFY_URL``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import secrets
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

import requests
from cryptography import x509
from django.conf import settings
from wechatpayv3 import WeChatPay, WeChatPayType

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
    amount_to_fen,
    code_settle,
    fen_to_amount,
    headers_lower,
    reject,
    timestamp_check,
)

if TYPE_CHECKING:
    from payments.models import Payment, Refund

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
_STATES = {
    "SUCCESS": NotificationStatus.SUCCESS,
    "CLOSED": NotificationStatus.FAILED,
    "PAYERROR": NotificationStatus.FAILED,
    "REVOKED": NotificationStatus.FAILED,
}
_REFUND_STATES = {"SUCCESS": RefundStatus.SUCCEEDED, "CLOSED": RefundStatus.FAILED,
                  "ABNORMAL": RefundStatus.FAILED, "PROCESSING": RefundStatus.PENDING}
# Payment-code declines: nothing was taken.  Anything not listed (SYSTEM_ERROR, BANKERROR…) is an
# unknown outcome, settled by querying.
_CODE_DECLINES = {
    "NOTENOUGH": "insufficient_balance",
    "AUTH_CODE_EXPIRE": "code_expired", "AUTHCODEEXPIRE": "code_expired",
    "AUTH_CODE_INVALID": "invalid_code", "AUTH_CODE_ERROR": "invalid_code", "PARAM_ERROR": "invalid_code",
    "CODE_USED": "code_used", "ORDERREVERSED": "code_used",
    "BUYER_MISMATCH": "risk_declined", "TRADE_ERROR": "risk_declined", "RULE_LIMIT": "risk_declined",
    "ORDERCLOSED": "declined", "NO_AUTH": "risk_declined",
}
_TRANSIENT = {"SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED", "BANKERROR", "INTERNAL_ERROR"}
REQUIRED = ("WECHAT_PAY_MCHID", "WECHAT_PAY_APPID", "WECHAT_PAY_APIV3_KEY", "WECHAT_PAY_PRIVATE_KEY",
            "WECHAT_PAY_CERT_SERIAL")


def api_url() -> str:
    return (config.setting("WECHATPAY_API_URL") or config.WECHATPAY_DEFAULT_API_URL).rstrip("/")


def cert_serials(cert_dir: str) -> set[int]:
    """Serial numbers of the platform certificates in ``cert_dir`` (what the SDK would load)."""
    serials: set[int] = set()
    if not cert_dir or not os.path.isdir(cert_dir):
        return serials
    for name in os.listdir(cert_dir):
        if name.lower().endswith(".pem"):
            try:
                with open(os.path.join(cert_dir, name), "rb") as handle:
                    serials.add(x509.load_pem_x509_certificate(handle.read()).serial_number)
            except (OSError, ValueError):
                continue
    return serials


def _answer(body: Any) -> dict[str, Any]:
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class WeChatPayProvider(ProviderAdapter):
    name = "wechat_pay"
    methods = {"qr": "", "jsapi": "openid", "mini_program": "openid"}
    logged_headers = ("content-type", "wechatpay-timestamp", "wechatpay-nonce", "wechatpay-serial",
                      "wechatpay-signature", "wechatpay-signature-type")

    # --- configuration --------------------------------------------------------------------------

    def missing_settings(self) -> list[str]:
        missing = [name for name in REQUIRED if not config.setting(name)]
        key = config.setting("WECHAT_PAY_APIV3_KEY")
        if key and len(key.encode()) != 32:
            missing.append("WECHAT_PAY_APIV3_KEY (must be 32 characters)")
        has_public_key = bool(config.setting("WECHAT_PAY_PUBLIC_KEY") and config.setting("WECHAT_PAY_PUBLIC_KEY_ID"))
        if not has_public_key and not cert_serials(config.setting("WECHAT_PAY_CERT_DIR")):
            missing.append("WECHAT_PAY_PUBLIC_KEY + WECHAT_PAY_PUBLIC_KEY_ID, or WECHAT_PAY_CERT_DIR")
        if not config.setting("WECHAT_PAY_NOTIFY_URL"):
            missing.append("WECHAT_PAY_NOTIFY_URL")
        return missing

    def configured(self) -> bool:
        return not self.missing_settings()

    def _client(self, *, serial: str | None = None) -> WeChatPay:
        """An SDK client pointed at ``WECHATPAY_API_URL``.

        Public-key mode when a platform public key is set (and the serial to verify is its id),
        else certificate mode from ``WECHAT_PAY_CERT_DIR``.  Raises ProviderNotConfigured.
        """
        if self.missing_settings():
            raise ProviderNotConfigured(params={"provider": self.name})
        public_key, public_key_id = config.key_material("WECHAT_PAY_PUBLIC_KEY"), config.setting(
            "WECHAT_PAY_PUBLIC_KEY_ID")
        use_public_key = bool(public_key and public_key_id) and (serial is None or serial == public_key_id)
        read = config.timeout_seconds()
        try:
            client = WeChatPay(
                wechatpay_type=WeChatPayType.NATIVE, mchid=config.setting("WECHAT_PAY_MCHID"),
                private_key=config.key_material("WECHAT_PAY_PRIVATE_KEY"),
                cert_serial_no=config.setting("WECHAT_PAY_CERT_SERIAL"), appid=config.setting("WECHAT_PAY_APPID"),
                apiv3_key=config.setting("WECHAT_PAY_APIV3_KEY"), notify_url=config.setting("WECHAT_PAY_NOTIFY_URL"),
                cert_dir=None if use_public_key else config.setting("WECHAT_PAY_CERT_DIR"),
                timeout=(min(5.0, read), read),
                public_key=public_key if use_public_key else None,
                public_key_id=public_key_id if use_public_key else None)
        except Exception:  # a malformed key, or no usable platform certificate
            raise ProviderNotConfigured(params={"provider": self.name}) from None
        client._core._gate_way = api_url()  # no public option; tests/test_payment_sdks.py guards it
        return client

    def _request(self, operation: str, reference: str, send: Callable[[], tuple[int, Any]],
                 request: Any = None, *, attempts: int = 1) -> tuple[int, Any]:
        """Send through the SDK and log it.  Returns (status, answer); raises ProviderUnavailable
        for a transport failure (after ``attempts`` tries) and for an answer whose signature fails."""
        for attempt in range(1, attempts + 1):
            try:
                with config.logged_call(self.name, operation, reference, request) as record:
                    status, body = send()
                    data = _answer(body) if not isinstance(body, bytes) or body[:1] == b"{" else None
                    record.update(status=status, answer=data if data is not None else f"<{len(body)} bytes>")
                return status, data if data is not None else body
            except requests.RequestException:
                if attempt == attempts:
                    raise ProviderUnavailable(params={"provider": self.name, "reason": "transport"}) from None
            except Exception as exc:  # the SDK raises a bare Exception when an answer's signature fails
                raise ProviderUnavailable(params={"provider": self.name, "reason": "bad_answer",
                                                  "detail": str(exc)[:100]}) from None
        raise AssertionError("unreachable")

    # --- notifications --------------------------------------------------------------------------

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        if self.missing_settings():  # refused as unconfigured before the notification is read
            raise ProviderNotConfigured(params={"provider": self.name})
        h = headers_lower(headers)
        timestamp, nonce = h.get("wechatpay-timestamp", ""), h.get("wechatpay-nonce", "")
        signature, serial = h.get("wechatpay-signature", ""), h.get("wechatpay-serial", "")
        if not (timestamp and nonce and signature and serial):
            raise reject("missing_signature_headers")
        h.setdefault("wechatpay-signature-type", SIGNATURE_TYPE)
        if h["wechatpay-signature-type"] != SIGNATURE_TYPE:
            raise reject("unsupported_signature_type")
        if not self._serial_known(serial):
            raise reject("unknown_serial")
        client = self._client(serial=serial)
        try:
            data = client.callback(h, body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
            raise reject("bad_payload") from None
        except Exception:  # the SDK's own refusals (algorithm, format)
            raise reject("bad_payload") from None
        if data is None:  # the SDK's answer to a bad signature or a resource it cannot open
            raise reject("bad_signature")
        timestamp_check(timestamp)
        resource = data.get("resource")
        if not isinstance(resource, dict):
            raise reject("bad_payload")
        return self._notification(str(data.get("event_type", "")), resource)

    def _serial_known(self, serial: str) -> bool:
        if serial == config.setting("WECHAT_PAY_PUBLIC_KEY_ID") and config.setting("WECHAT_PAY_PUBLIC_KEY"):
            return True
        try:
            number = int(serial, 16)
        except ValueError:
            return False
        return number in cert_serials(config.setting("WECHAT_PAY_CERT_DIR"))

    def _notification(self, event_type: str, data: dict[str, Any]) -> Notification:
        expected = config.setting("WECHAT_PAY_MCHID")
        if expected and "mchid" in data and data.get("mchid") != expected:
            raise reject("wrong_mchid")
        appids = {config.setting("WECHAT_PAY_APPID"), config.setting("WECHAT_PAY_MINI_APPID")} - {""}
        if appids and "appid" in data and data.get("appid") not in appids:
            raise reject("wrong_appid")
        if config.setting("WECHAT_PAY_MCHID") and "mchid" not in data:
            raise reject("wrong_mchid")
        try:
            amount = data["amount"]
            currency = amount.get("currency", "CNY")
            txn_id, reference = str(data["transaction_id"]), str(data["out_trade_no"])
            if event_type.startswith("REFUND.") or "out_refund_no" in data:
                fen, state = amount["refund"], str(data["refund_status"])
                refund_no, refund_id = str(data["out_refund_no"]), str(data["refund_id"])
            else:
                fen, state = amount["total"], str(data["trade_state"])
                refund_no = refund_id = ""
        except (KeyError, TypeError, AttributeError):
            raise reject("bad_payload") from None
        if currency != "CNY" or not txn_id or not reference:
            raise reject("bad_payload")
        if refund_no:
            status = {"SUCCESS": NotificationStatus.SUCCESS, "CLOSED": NotificationStatus.FAILED,
                      "ABNORMAL": NotificationStatus.FAILED}.get(state, NotificationStatus.PENDING)
        else:
            status = _STATES.get(state, NotificationStatus.PENDING)
        return Notification(provider_txn_id=txn_id, reference=reference, amount=fen_to_amount(fen),
                            status=status, raw=data, refund_reference=refund_no, provider_refund_id=refund_id)

    # --- payments ------------------------------------------------------------------------------

    @staticmethod
    def _description(payment: Payment) -> str:
        return f"订单 {payment.reference}"[:127]

    def payment_open(self, payment: Payment, *, method: str = "qr", payer: str = "") -> dict[str, Any]:
        if method == "qr":
            return self.create_payment(payment)
        return self.create_payment(payment, openid=payer, mini_program=method == "mini_program")

    def create_payment(self, payment: Payment, *, openid: str = "", mini_program: bool = False) -> dict[str, Any]:
        """Native (a QR ``code_url``) or, with the payer's ``openid``, JSAPI / mini-program: the
        ``prepay_id`` and the signed parameters ``wx.requestPayment`` takes.  A mini-program pays
        under its own AppID (``WECHAT_PAY_MINI_APPID``) when it has one."""
        client = self._client()
        amount = {"total": amount_to_fen(payment.amount), "currency": "CNY"}
        kind = WeChatPayType.JSAPI if openid else WeChatPayType.NATIVE
        appid = (mini_program and config.setting("WECHAT_PAY_MINI_APPID")) or config.setting("WECHAT_PAY_APPID")
        request = {"out_trade_no": payment.number, "amount": amount, "type": kind.name, "appid": appid}
        status, data = self._request("pay", payment.number, lambda: client.pay(
            description=self._description(payment), out_trade_no=payment.number, amount=amount,
            payer={"openid": openid} if openid else None, pay_type=kind, appid=appid), request)
        if status != 200 or not isinstance(data, dict):
            raise self._unavailable(status, data)
        if not openid:
            if not data.get("code_url"):
                raise self._unavailable(status, data)
            return {"code_url": str(data["code_url"])}
        prepay_id = str(data.get("prepay_id") or "")
        if not prepay_id:
            raise self._unavailable(status, data)
        stamp, nonce = str(int(time.time())), secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        return {"prepay_id": prepay_id, "pay_params": {
            "appId": appid, "timeStamp": stamp, "nonceStr": nonce, "package": package, "signType": "RSA",
            "paySign": client.sign([appid, stamp, nonce, package])}}

    def _unavailable(self, status: int, data: Any) -> ProviderUnavailable:
        code = str(data.get("code", "")) if isinstance(data, dict) else ""
        return ProviderUnavailable(params={"provider": self.name, "reason": code or f"http_{status}"})

    def query(self, payment: Payment) -> dict[str, Any]:
        """The order as WeChat Pay sees it: ``status`` success / failed / pending / not_found."""
        client = self._client()
        status, data = self._request("query", payment.number, lambda: client.query(out_trade_no=payment.number),
                                     attempts=config.query_attempts())
        if status == 404 or (isinstance(data, dict) and data.get("code") == "ORDER_NOT_EXIST"):
            return {"status": "not_found"}
        if status != 200 or not isinstance(data, dict):
            raise self._unavailable(status, data)
        state = str(data.get("trade_state", ""))
        total = (data.get("amount") or {}).get("total")
        return {"status": _STATES.get(state, NotificationStatus.PENDING), "trade_state": state,
                "provider_txn_id": str(data.get("transaction_id") or ""),
                "amount": fen_to_amount(total) if isinstance(total, int) and total > 0 else None}

    # --- payment codes -----------------------------------------------------------------------

    def micropay(self, payment: Payment, auth_code: str) -> MicropayResult:
        client = self._client()  # ProviderNotConfigured before anything is sent
        amount = {"total": amount_to_fen(payment.amount), "currency": "CNY"}
        store = getattr(payment, "store", None)
        scene = {"store_info": {"out_id": str(getattr(store, "code", "") or getattr(store, "pk", "") or "0")}}
        request = {"out_trade_no": payment.number, "amount": amount, "auth_code": auth_code}
        try:
            status, data = self._request("codepay", payment.number, lambda: client.pay(
                description=self._description(payment), out_trade_no=payment.number, amount=amount,
                payer={"auth_code": auth_code}, scene_info=scene, pay_type=WeChatPayType.CODEPAY), request)
            first = self._code_answer(status, data)
        except ProviderUnavailable:  # the request may have left: the query says what happened
            first = MicropayResult(status=MicropayStatus.PENDING, message="no answer to the charge")
        return code_settle(first=first, query=lambda: self._code_state(client, payment),
                           reverse=lambda: self._code_reverse(client, payment),
                           wait_seconds=float(getattr(settings, "PAYMENTS_CODE_WAIT_SECONDS", 45)),
                           poll_seconds=float(getattr(settings, "PAYMENTS_CODE_POLL_SECONDS", 3)))

    def micropay_resolve(self, payment: Payment) -> MicropayResult:
        client = self._client()
        state = self._code_state(client, payment)
        if state.status == MicropayStatus.PENDING and state.message == "ORDER_NOT_EXIST":
            return MicropayResult(status=MicropayStatus.FAILED, reason="not_charged",
                                  message="the provider never received the charge")
        return code_settle(first=state, query=lambda: self._code_state(client, payment),
                           reverse=lambda: self._code_reverse(client, payment), wait_seconds=0, poll_seconds=0)

    def _code_answer(self, status: int, data: Any) -> MicropayResult:
        data = data if isinstance(data, dict) else {}
        code, state = str(data.get("code", "")), str(data.get("trade_state", ""))
        if status == 200 and state == "SUCCESS" and data.get("transaction_id"):
            return MicropayResult(status=MicropayStatus.SUCCESS, provider_txn_id=str(data["transaction_id"]))
        if code in _CODE_DECLINES:
            return MicropayResult(status=MicropayStatus.FAILED, reason=_CODE_DECLINES[code],
                                  message=str(data.get("message", ""))[:200])
        # USERPAYING, ORDERPAID (asked again), a system error: the query settles it.
        return MicropayResult(status=MicropayStatus.PENDING, message=code or state)

    def _code_state(self, client: WeChatPay, payment: Payment) -> MicropayResult:
        try:
            status, data = self._request("query", payment.number,
                                         lambda: client.query(out_trade_no=payment.number))
        except ProviderUnavailable:
            return MicropayResult(status=MicropayStatus.PENDING)
        data = data if isinstance(data, dict) else {}
        state = str(data.get("trade_state", ""))
        if status == 200 and state == "SUCCESS" and data.get("transaction_id"):
            return MicropayResult(status=MicropayStatus.SUCCESS, provider_txn_id=str(data["transaction_id"]))
        if status == 200 and state in ("PAYERROR", "CLOSED", "REVOKED"):
            return MicropayResult(status=MicropayStatus.FAILED, reason="declined",
                                  message=str(data.get("trade_state_desc", state))[:200])
        return MicropayResult(status=MicropayStatus.PENDING, message=state or str(data.get("code", "")))

    def _code_reverse(self, client: WeChatPay, payment: Payment) -> bool:
        for _attempt in range(2):  # WeChat asks to retry a reversal that answered a system error
            try:
                status, _data = self._request("reverse", payment.number,
                                              lambda: client.codepay_reverse(out_trade_no=payment.number))
            except ProviderUnavailable:
                continue
            if status in (200, 204):
                return True
        return False

    # --- refunds -------------------------------------------------------------------------------

    def refund(self, refund: Refund) -> RefundResult:
        client = self._client()
        payment = refund.payment
        amount = {"refund": amount_to_fen(refund.amount), "total": amount_to_fen(payment.amount), "currency": "CNY"}
        request = {"out_refund_no": refund.number, "out_trade_no": payment.number, "amount": amount}
        status, data = self._request("refund", refund.number, lambda: client.refund(
            out_refund_no=refund.number, amount=amount, out_trade_no=payment.number,
            reason=(refund.reason or "")[:80] or None, notify_url=config.setting("WECHAT_PAY_NOTIFY_URL")), request)
        return self._refund_answer(status, data)

    def refund_query(self, refund: Refund) -> RefundResult | None:
        client = self._client()
        status, data = self._request("refund_query", refund.number,
                                     lambda: client.query_refund(out_refund_no=refund.number),
                                     attempts=config.query_attempts())
        if status == 404 or (isinstance(data, dict) and data.get("code") == "RESOURCE_NOT_EXISTS"):
            return None
        return self._refund_answer(status, data)

    def _refund_answer(self, status: int, data: Any) -> RefundResult:
        data = data if isinstance(data, dict) else {}
        if status == 200:
            state = str(data.get("status", ""))
            result = _REFUND_STATES.get(state, RefundStatus.PENDING)
            return RefundResult(status=result, provider_refund_id=str(data.get("refund_id") or ""),
                                message=state if result == RefundStatus.FAILED else "")
        code = str(data.get("code", ""))
        if status >= 500 or code in _TRANSIENT:
            raise ProviderUnavailable(params={"provider": self.name, "reason": code or f"http_{status}"})
        return RefundResult(status=RefundStatus.FAILED, message=f"{code}: {data.get('message', '')}"[:300])

    # --- bills ---------------------------------------------------------------------------------

    def bills(self, day: str) -> list[Bill]:
        """The day's trade bill (交易账单, ALL) and fund bill (资金账单, BASIC), unzipped and checked."""
        client = self._client()
        found = []
        for kind, ask in (("trade", lambda: client.trade_bill(bill_date=day, bill_type="ALL", tar_type="GZIP")),
                          ("fund", lambda: client.fundflow_bill(bill_date=day, account_type="BASIC",
                                                                tar_type="GZIP"))):
            status, data = self._request(f"{kind}_bill", day, ask, attempts=config.query_attempts())
            if isinstance(data, dict) and data.get("code") == "NO_STATEMENT_EXIST":
                continue
            if status != 200 or not isinstance(data, dict) or not data.get("download_url"):
                raise self._unavailable(status, data)
            found.append(Bill(provider=self.name, day=day, kind=kind, file_name=f"wechat_pay-{kind}-{day}.csv",
                              data=self._bill_file(client, data, kind, day)))
        return found

    def _bill_file(self, client: WeChatPay, info: dict[str, Any], kind: str, day: str) -> bytes:
        status, body = self._request(f"{kind}_bill_download", day, lambda: client.download_bill(info["download_url"]),
                                     attempts=config.query_attempts())
        if status != 200 or not isinstance(body, (bytes, bytearray)):
            raise ProviderUnavailable(params={"provider": self.name, "reason": f"bill_download_{status}"})
        try:
            data = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else bytes(body)
        except (OSError, EOFError):
            raise ProviderUnavailable(params={"provider": self.name, "reason": "bill_not_gzip"}) from None
        algorithm = str(info.get("hash_type", "SHA1")).lower().replace("-", "")
        if algorithm not in ("sha1", "sha256", "sm3") or algorithm == "sm3":
            raise ProviderUnavailable(params={"provider": self.name, "reason": "bill_hash_type"})
        if hashlib.new(algorithm, data).hexdigest().lower() != str(info.get("hash_value", "")).lower():
            raise ProviderUnavailable(params={"provider": self.name, "reason": "bill_hash_mismatch"})
        return data

