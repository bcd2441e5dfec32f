"""A built-in provider that works offline, for development, tests and the demo.

It signs notifications the way the real providers do, only with a shared
secret: ``X-Sandbox-Signature`` = hex HMAC-SHA256(SANDBOX_PAY_SECRET,
"timestamp\\nnonce\\nbody\\n"), and refuses notifications older (or newer) than
five minutes, so a captured notification cannot be replayed later.

Payment codes (付款码, ``micropay``) are answered from the code alone, so tests
and demos can script every outcome:

* the code must be well-formed for the payment's wallet (WeChat Pay: 18 digits
  starting 10–15; Alipay: 16–24 digits starting 25–30; a sandbox-tender
  payment takes either), else it is declined with reason ``invalid_code``;
* a code ending in ``0001`` is declined for ``insufficient_balance``;
* a code ending in ``0002`` is declined as ``code_expired``;
* a code ending in ``0003`` stays ``pending`` (the customer has to confirm on
  the phone; a sandbox notification can capture it later);
* any other code succeeds with the transaction id ``SBX<payment number>``,
  the same every time the same payment is asked again.

Settings: ``SANDBOX_PAY_SECRET`` (a development default) and
``SANDBOX_PAY_ENABLED`` (default True; set False in production so nobody who
knows the secret can pay a sandbox payment).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlencode

from django.conf import settings

from payments.exceptions import ProviderNotConfigured
from payments.providers.base import (
    MicropayResult,
    MicropayStatus,
    Notification,
    NotificationStatus,
    ProviderAdapter,
    RefundResult,
    RefundStatus,
    amount_to_fen,
    fen_to_amount,
    headers_lower,
    payment_code_wallet,
    reject,
    timestamp_check,
)

if TYPE_CHECKING:
    from decimal import Decimal

    from payments.models import Payment, Refund

DEFAULT_SECRET = "o2o-sandbox-development-secret"
HEADER_TIMESTAMP = "X-Sandbox-Timestamp"
HEADER_NONCE = "X-Sandbox-Nonce"
HEADER_SIGNATURE = "X-Sandbox-Signature"
_STATES = {"SUCCESS": NotificationStatus.SUCCESS, "CLOSED": NotificationStatus.FAILED}


def _secret() -> bytes:
    if not getattr(settings, "SANDBOX_PAY_ENABLED", True):
        raise ProviderNotConfigured(params={"provider": SandboxProvider.name})
    return str(getattr(settings, "SANDBOX_PAY_SECRET", DEFAULT_SECRET)).encode()


def sandbox_sign(timestamp: str, nonce: str, body: bytes) -> str:
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    return hmac.new(_secret(), message, hashlib.sha256).hexdigest()


def sandbox_txn_id(payment: Payment) -> str:
    """The transaction id the sandbox gives a payment: one per payment, like a real provider."""
    return f"SBX{payment.number}"


def sandbox_notification(payment: Payment, *, state: str = "SUCCESS", amount: Decimal | None = None,
                         txn_id: str | None = None, timestamp: int | None = None,
                         nonce: str | None = None) -> tuple[dict[str, str], bytes]:
    """Build the signed notification the sandbox would send for ``payment`` (tests, demo page).

    ``state`` is SUCCESS or CLOSED; ``amount`` defaults to the payment's amount.
    """
    body = json.dumps({
        "out_trade_no": payment.number,
        "transaction_id": txn_id or sandbox_txn_id(payment),
        "trade_state": state,
        "amount_fen": amount_to_fen(payment.amount if amount is None else amount),
    }, separators=(",", ":")).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    headers = {HEADER_TIMESTAMP: ts, HEADER_NONCE: nonce, HEADER_SIGNATURE: sandbox_sign(ts, nonce, body),
               "Content-Type": "application/json"}
    return headers, body


class SandboxProvider(ProviderAdapter):
    name = "sandbox"
    calls_network = False
    logged_headers = ("content-type", HEADER_TIMESTAMP.lower(), HEADER_NONCE.lower(),
                      HEADER_SIGNATURE.lower())

    def create_payment(self, payment: Payment) -> dict[str, Any]:
        _secret()
        query = urlencode({"out_trade_no": payment.number, "total_fen": amount_to_fen(payment.amount)})
        return {"code_url": f"o2o-sandbox://pay?{query}"}

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        h = headers_lower(headers)
        timestamp, nonce, signature = (h.get(HEADER_TIMESTAMP.lower()), h.get(HEADER_NONCE.lower()),
                                       h.get(HEADER_SIGNATURE.lower()))
        if not (timestamp and nonce and signature):
            raise reject("missing_signature_headers")
        if not hmac.compare_digest(sandbox_sign(timestamp, nonce, body), signature.strip().lower()):
            raise reject("bad_signature")
        # Checked after the signature, so a forged timestamp cannot pass as merely stale.
        timestamp_check(timestamp)
        try:
            data = json.loads(body)
            txn_id, reference = str(data["transaction_id"]), str(data["out_trade_no"])
            fen, state = data["amount_fen"], str(data["trade_state"])
        except (ValueError, KeyError, TypeError):
            raise reject("bad_payload") from None
        if not txn_id or not reference:
            raise reject("bad_payload")
        return Notification(provider_txn_id=txn_id, reference=reference, amount=fen_to_amount(fen),
                            status=_STATES.get(state, NotificationStatus.PENDING), raw=data)

    def refund(self, refund: Refund) -> RefundResult:
        _secret()
        # Deterministic, like a provider answering a resent out_refund_no with the same refund.
        return RefundResult(status=RefundStatus.SUCCEEDED, provider_refund_id=f"SBXR{refund.number}")

    def query(self, payment: Payment) -> dict[str, Any]:
        _secret()
        return {"out_trade_no": payment.number, "transaction_id": payment.provider_txn_id or "",
                "status": payment.status}

    def micropay(self, payment: Payment, auth_code: str) -> MicropayResult:
        _secret()
        wallet = payment_code_wallet(auth_code)
        if wallet is None or payment.tender not in (wallet, self.name):
            return MicropayResult(status=MicropayStatus.FAILED, reason="invalid_code",
                                  message="sandbox: not a payment code of this wallet")
        outcome = _MICROPAY_OUTCOMES.get(auth_code[-4:])
        if outcome is not None:
            return outcome
        return MicropayResult(status=MicropayStatus.SUCCESS, provider_txn_id=sandbox_txn_id(payment))


    def micropay_resolve(self, payment: Payment) -> MicropayResult:
        _secret()
        # A sandbox charge is decided when it is made; one still pending was never confirmed (a code
        # ending 0003): like a provider's reversal, nothing was taken.
        return MicropayResult(status=MicropayStatus.FAILED, reason="payment_timeout",
                              message="sandbox: the charge was never confirmed; reversed")


_MICROPAY_OUTCOMES = {
    "0001": MicropayResult(status=MicropayStatus.FAILED, reason="insufficient_balance",
                           message="sandbox: insufficient balance"),
    "0002": MicropayResult(status=MicropayStatus.FAILED, reason="code_expired",
                           message="sandbox: the payment code has expired"),
    "0003": MicropayResult(status=MicropayStatus.PENDING, message="sandbox: waiting for the customer"),
}
