"""Alipay (支付宝) asynchronous notifications (异步通知).

Alipay POSTs a form: out_trade_no, trade_no, trade_status, total_amount (yuan,
two decimals), app_id, charset, …, sign and sign_type=RSA2.  The signed
content is every parameter except sign and sign_type, sorted by name, joined
as "k=v" with "&" (values decoded); the signature is base64 RSA-SHA256
(PKCS#1 v1.5) made with Alipay's key, checked with Alipay's public key.

Settings (unset = the adapter raises ProviderNotConfigured):
``ALIPAY_PUBLIC_KEY`` (Alipay's public key: PEM or the bare base64 from the
console) and optionally ``ALIPAY_APP_ID``, checked against the notification.

Outgoing calls (precreate, payment-code charge, refund, query) need requests signed with the
merchant private key; they are not implemented yet and raise
ProviderUnavailable.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import parse_qsl

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


def alipay_sign_content(params: Mapping[str, str]) -> str:
    """The string Alipay signs for a notification."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type"))


def alipay_params(body: bytes) -> dict[str, str]:
    """Decode the form body in its declared charset; refuses repeated keys."""
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


class AlipayProvider(ProviderAdapter):
    name = "alipay"
    logged_headers = ("content-type",)

    def _public_key(self) -> crypto.RsaPublicKey:
        text = getattr(settings, "ALIPAY_PUBLIC_KEY", "") or ""
        if not text:
            raise ProviderNotConfigured(params={"provider": self.name})
        try:
            return crypto.rsa_public_key_load(text)
        except crypto.CryptoError:
            raise ProviderNotConfigured(params={"provider": self.name}) from None

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        public_key = self._public_key()
        params = alipay_params(body)
        if params.get("sign_type") != "RSA2" or not params.get("sign"):
            raise reject("missing_signature")
        try:
            signature = base64.b64decode(params["sign"], validate=True)
        except (binascii.Error, ValueError):
            raise reject("bad_signature") from None
        charset = params.get("charset") or "utf-8"
        if not crypto.rsa_sha256_verify(public_key, alipay_sign_content(params).encode(charset), signature):
            raise reject("bad_signature")
        app_id = getattr(settings, "ALIPAY_APP_ID", "") or ""
        if app_id and params.get("app_id") != app_id:
            raise reject("wrong_app_id")
        txn_id, reference = params.get("trade_no", ""), params.get("out_trade_no", "")
        if not txn_id or not reference or "trade_status" not in params:
            raise reject("bad_payload")
        return Notification(provider_txn_id=txn_id, reference=reference,
                            amount=yuan_to_amount(params.get("total_amount")),
                            status=_STATES.get(params["trade_status"], NotificationStatus.PENDING),
                            raw={k: v for k, v in params.items() if k != "sign"})

    def _outgoing(self) -> None:
        self._public_key()
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
