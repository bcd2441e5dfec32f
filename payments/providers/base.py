"""The interface every payment provider adapter implements.

Adapters turn a provider's wire format into plain values and back; they never
touch the database.  ``verify_notification`` is pure (no network, no locks),
so a service can run it first, inside its transaction; ``create_payment``,
``refund``, ``query`` and ``micropay`` of an adapter with ``calls_network`` may talk to the
provider and are therefore only ever called outside any transaction.
Amounts cross the edge as integer fen (or the provider's own decimal string)
and come back as Decimal yuan.
"""

from __future__ import annotations

import abc
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from o2o.money import FEN, money_parse
from payments.exceptions import InvalidSignature, ProviderUnavailable

if TYPE_CHECKING:
    from payments.models import Payment, Refund

MAX_NOTIFICATION_AGE_SECONDS = 300


class NotificationStatus:
    SUCCESS = "success"  # the money is taken
    FAILED = "failed"  # the provider closed the payment without taking money
    PENDING = "pending"  # anything else (still waiting, refund-related states…)


@dataclass(frozen=True)
class Notification:
    """A verified provider notification.  ``reference`` is the out_trade_no: our payment number.

    A refund notification also names the refund: ``refund_reference`` is the out_refund_no (our
    refund number) and ``provider_refund_id`` the provider's id; ``amount`` is then the refund's,
    or, with ``refund_total`` (Alipay's ``refund_fee``), all the trade has refunded so far.
    """

    provider_txn_id: str
    reference: str
    amount: Decimal
    status: str
    raw: dict[str, Any] = field(default_factory=dict)
    refund_reference: str = ""
    provider_refund_id: str = ""
    refund_total: bool = False

    @property
    def is_refund(self) -> bool:
        return bool(self.refund_reference)


class RefundStatus:
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PENDING = "pending"  # accepted by the provider, result later


@dataclass(frozen=True)
class RefundResult:
    status: str
    provider_refund_id: str = ""
    message: str = ""


@dataclass(frozen=True)
class PaymentState:
    """The provider's answer to a payment query.  ``status`` is a NotificationStatus or ``not_found``."""

    status: str
    provider_txn_id: str = ""
    amount: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    NOT_FOUND: ClassVar[str] = "not_found"


@dataclass(frozen=True)
class Bill:
    """One statement file the provider gave for a day: ``kind`` "trade" or "fund"."""

    provider: str
    day: str
    kind: str
    file_name: str
    data: bytes


class MicropayStatus:
    SUCCESS = "success"  # the money is taken
    FAILED = "failed"  # declined: nothing was taken (insufficient balance, expired code…)
    PENDING = "pending"  # the customer still has to confirm on their phone, or the answer is unknown


@dataclass(frozen=True)
class MicropayResult:
    """The provider's answer to a payment-code charge (付款码支付).

    ``reason`` is a stable code for a decline (``insufficient_balance``,
    ``code_expired``, ``code_used``, ``risk_declined``…); ``message`` the
    provider's own words, kept for the log.
    """

    status: str
    provider_txn_id: str = ""
    reason: str = ""
    message: str = ""


class ProviderAdapter(abc.ABC):
    name: ClassVar[str]
    # False: every method runs locally (the sandbox); payment_create may then
    # ask for the payment code inside its transaction.
    calls_network: ClassVar[bool] = True
    # Lower-cased header names worth keeping in the notification log.
    logged_headers: ClassVar[tuple[str, ...]] = ("content-type",)
    # How a customer can pay online (``payment_open``): method → the payer id it needs ("" none,
    # "openid" a WeChat openid, "buyer_id" an Alipay buyer id).  "qr" is a QR code / payment URL.
    methods: ClassVar[dict[str, str]] = {"qr": ""}

    @abc.abstractmethod
    def create_payment(self, payment: Payment) -> dict[str, Any]:
        """Ask the provider to open the payment; returns e.g. {"code_url": ...} for a QR code."""

    def payment_open(self, payment: Payment, *, method: str = "qr", payer: str = "") -> dict[str, Any]:
        """Open the payment for ``method`` (one of ``methods``); ``payer`` is the id it needs.
        Returns ``code_url`` for a QR code, or what the front end passes to the wallet:
        ``pay_params`` (WeChat ``wx.requestPayment``) or ``trade_no`` (Alipay ``my.tradePay``)."""
        return self.create_payment(payment)

    @abc.abstractmethod
    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Check the signature and decode the notification.  Raises InvalidSignature."""

    @abc.abstractmethod
    def refund(self, refund: Refund) -> RefundResult:
        """Ask the provider to refund; resending the same refund must be harmless (out_refund_no)."""

    @abc.abstractmethod
    def query(self, payment: Payment) -> dict[str, Any]:
        """The provider's view of the payment."""

    def micropay(self, payment: Payment, auth_code: str) -> MicropayResult:
        """Charge the code the customer shows (the payment's number is the out_trade_no).

        Asking again for the same payment must be harmless: providers answer a
        repeated out_trade_no with the same transaction.  Raises
        ProviderNotConfigured / ProviderUnavailable only when nothing was sent;
        once the request left, a transport failure is a PENDING answer.
        """
        raise ProviderUnavailable(params={"provider": self.name, "reason": "micropay_not_supported"})

    @abc.abstractmethod
    def micropay_resolve(self, payment: Payment) -> MicropayResult:
        """Settle a payment-code charge whose answer was lost (the server died while it waited, a
        timeout): ask the provider once; a charge still waiting is reversed (撤销), and one the
        provider never received is declined.  PENDING only when the provider cannot say."""

    def refund_query(self, refund: Refund) -> RefundResult | None:
        """The provider's view of a refund already sent, or None when it never received it."""
        return None

    def configured(self) -> bool:
        """Whether the settings this adapter needs are present (no network)."""
        return True

    def missing_settings(self) -> list[str]:
        """The names of the settings still missing to go live (never their values)."""
        return []

    def bills(self, day: str) -> list[Bill]:
        """Download the day's statement files (``day`` as YYYY-MM-DD).  Outside any transaction."""
        return []


# --- helpers for adapters ---------------------------------------------------------------------

# The payment codes (付款码) the wallets show: WeChat Pay 18 digits starting 10–15, Alipay 16–24
# digits starting 25–30.  The ranges do not overlap, so the code alone says which wallet it is.
_PAYMENT_CODES = (("wechat_pay", re.compile(r"1[0-5]\d{16}")),
                  ("alipay", re.compile(r"(2[5-9]|30)\d{14,22}")))


def payment_code_wallet(code: str) -> str | None:
    """``"wechat_pay"`` or ``"alipay"`` for a well-formed payment code, else None."""
    return next((name for name, pattern in _PAYMENT_CODES if pattern.fullmatch(code or "")), None)



def headers_lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def fen_to_amount(fen: object) -> Decimal:
    if isinstance(fen, bool) or not isinstance(fen, int) or fen <= 0:
        raise InvalidSignature(params={"reason": "bad_amount"})
    return (Decimal(fen) * FEN).quantize(FEN)


def amount_to_fen(amount: Decimal) -> int:
    fen = amount / FEN
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of fen")
    return int(fen)


def yuan_to_amount(text: object) -> Decimal:
    """A provider's decimal yuan string ("12.30") as money; anything else is a bad payload."""
    try:
        return money_parse(text if isinstance(text, str) else str(text), positive=True)
    except ValueError:
        raise InvalidSignature(params={"reason": "bad_amount"}) from None


def reject(reason: str) -> InvalidSignature:
    return InvalidSignature(params={"reason": reason})


def timestamp_check(timestamp: str) -> None:
    """Refuse a notification signed more than five minutes from now (either way): replays go stale."""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_NOTIFICATION_AGE_SECONDS:
        raise reject("stale_timestamp")


def code_settle(*, first: MicropayResult, query, reverse, wait_seconds: float, poll_seconds: float,
                sleep=time.sleep, clock=time.monotonic) -> MicropayResult:
    """Settle a payment-code charge the customer still has to confirm (USERPAYING / 10003).

    Neither provider notifies a payment-code charge, so the order is queried every
    ``poll_seconds`` until it succeeds or fails, for at most ``wait_seconds``; then it is
    reversed (撤销), which also gives back money taken at the last moment, and the charge is
    declined with reason ``payment_timeout``.  ``query()`` answers a MicropayResult (PENDING
    when the answer is unknown); ``reverse()`` answers True once the provider confirmed the
    reversal.  A reversal that cannot be confirmed leaves the charge PENDING: nothing is
    claimed that the provider did not say, and completing the sale again asks again.
    """
    result = first
    deadline = clock() + wait_seconds
    while result.status == MicropayStatus.PENDING and clock() < deadline:
        sleep(poll_seconds)
        result = query()
    if result.status != MicropayStatus.PENDING:
        return result
    if reverse():
        return MicropayResult(status=MicropayStatus.FAILED, reason="payment_timeout",
                              message="the customer did not confirm in time; the charge was reversed")
    return result
