"""WeChat Pay API v3 (微信支付 APIv3) notifications.

A notification is an HTTPS POST whose headers carry ``Wechatpay-Timestamp``,
``Wechatpay-Nonce``, ``Wechatpay-Signature`` (base64 RSA-SHA256, PKCS#1 v1.5,
over "timestamp\\nnonce\\nbody\\n") and ``Wechatpay-Serial`` (which platform
certificate or platform public key signed it).  The JSON body carries the
payment in ``resource``, encrypted with AEAD_AES_256_GCM under the merchant's
APIv3 key; decrypted it has out_trade_no, transaction_id, trade_state and
amount.total in fen.

Settings (unset = the adapter raises ProviderNotConfigured):
``WECHAT_PAY_APIV3_KEY`` (the 32-character APIv3 key),
``WECHAT_PAY_PLATFORM_KEYS`` ({serial: PEM certificate or PEM public key}; more
than one while WeChat rotates its certificate), and optionally
``WECHAT_PAY_MCHID`` / ``WECHAT_PAY_APPID``, checked against the payload.

Outgoing calls (Native order, payment-code charge, refund, query) need requests signed with the
merchant private key; they are not implemented yet and raise
ProviderUnavailable.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any, Mapping

from django.conf import settings

from payments.exceptions import ProviderNotConfigured, ProviderUnavailable
from payments.providers import crypto
from payments.providers.base import (
    MicropayResult,
    MicropayStatus,
    Notification,
    NotificationStatus,
    ProviderAdapter,
    RefundResult,
    fen_to_amount,
    headers_lower,
    reject,
    timestamp_check,
)

if TYPE_CHECKING:
    from payments.models import Payment, Refund

_STATES = {
    "SUCCESS": NotificationStatus.SUCCESS,
    "CLOSED": NotificationStatus.FAILED,
    "PAYERROR": NotificationStatus.FAILED,
    "REVOKED": NotificationStatus.FAILED,
}


def wechat_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The string WeChat Pay signs: each part followed by a newline."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


class WeChatPayProvider(ProviderAdapter):
    name = "wechat_pay"
    logged_headers = ("content-type", "wechatpay-timestamp", "wechatpay-nonce", "wechatpay-serial",
                      "wechatpay-signature", "wechatpay-signature-type")

    def _config(self) -> tuple[bytes, dict[str, str]]:
        key = getattr(settings, "WECHAT_PAY_APIV3_KEY", "") or ""
        platform_keys = getattr(settings, "WECHAT_PAY_PLATFORM_KEYS", None) or {}
        if len(key.encode()) != 32 or not platform_keys:
            raise ProviderNotConfigured(params={"provider": self.name})
        return key.encode(), dict(platform_keys)

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        apiv3_key, platform_keys = self._config()
        h = headers_lower(headers)
        timestamp, nonce = h.get("wechatpay-timestamp", ""), h.get("wechatpay-nonce", "")
        signature, serial = h.get("wechatpay-signature", ""), h.get("wechatpay-serial", "")
        if not (timestamp and nonce and signature and serial):
            raise reject("missing_signature_headers")
        if h.get("wechatpay-signature-type", "WECHATPAY2-SHA256-RSA2048") != "WECHATPAY2-SHA256-RSA2048":
            raise reject("unsupported_signature_type")
        pem = platform_keys.get(serial)
        if pem is None:
            raise reject("unknown_serial")
        try:
            public_key = crypto.rsa_public_key_load(pem)
        except crypto.CryptoError:
            raise ProviderNotConfigured(params={"provider": self.name, "serial": serial}) from None
        try:
            raw_signature = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise reject("bad_signature") from None
        if not crypto.rsa_sha256_verify(public_key, wechat_message(timestamp, nonce, body), raw_signature):
            raise reject("bad_signature")
        timestamp_check(timestamp)
        resource = self._decrypt(apiv3_key, body)
        return self._notification(resource)

    def _decrypt(self, apiv3_key: bytes, body: bytes) -> dict[str, Any]:
        try:
            envelope = json.loads(body)
            resource = envelope["resource"]
            if resource["algorithm"] != "AEAD_AES_256_GCM":
                raise reject("unsupported_algorithm")
            ciphertext = base64.b64decode(resource["ciphertext"], validate=True)
            nonce = str(resource["nonce"]).encode()
            aad = str(resource.get("associated_data") or "").encode()
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise reject("bad_payload") from None
        try:
            plain = crypto.aes_256_gcm_decrypt(apiv3_key, nonce, ciphertext, aad)
        except crypto.CryptoError:
            raise reject("decrypt_failed") from None
        try:
            data = json.loads(plain)
        except ValueError:
            raise reject("bad_payload") from None
        if not isinstance(data, dict):
            raise reject("bad_payload")
        return data

    def _notification(self, data: dict[str, Any]) -> Notification:
        for setting, field in (("WECHAT_PAY_MCHID", "mchid"), ("WECHAT_PAY_APPID", "appid")):
            expected = getattr(settings, setting, "") or ""
            if expected and data.get(field) != expected:
                raise reject(f"wrong_{field}")
        try:
            amount = data["amount"]
            fen = amount["total"]
            currency = amount.get("currency", "CNY")
            txn_id, reference = str(data["transaction_id"]), str(data["out_trade_no"])
            state = str(data["trade_state"])
        except (KeyError, TypeError, AttributeError):
            raise reject("bad_payload") from None
        if currency != "CNY" or not txn_id or not reference:
            raise reject("bad_payload")
        return Notification(provider_txn_id=txn_id, reference=reference, amount=fen_to_amount(fen),
                            status=_STATES.get(state, NotificationStatus.PENDING), raw=data)

    def _outgoing(self) -> None:
        self._config()
        raise ProviderUnavailable(params={"provider": self.name, "reason": "outgoing_api_not_implemented"})

    def create_payment(self, payment: Payment) -> dict[str, Any]:
        self._outgoing()
        return {}

    def refund(self, refund: Refund) -> RefundResult:
        self._outgoing()
        return RefundResult(status="pending")

    def query(self, payment: Payment) -> dict[str, Any]:
        self._outgoing()
        return {}

    def micropay(self, payment: Payment, auth_code: str) -> MicropayResult:
        # Payment-code charges are outgoing signed calls too: refused before anything is sent.
        self._outgoing()
        return MicropayResult(status=MicropayStatus.PENDING)
