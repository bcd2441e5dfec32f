"""Domain errors of payments, each with a stable machine code (see o2o/errors.py)."""

from django.utils.translation import gettext_lazy as _

from o2o.errors import Conflict, DomainError, InvalidInput, NotFound


class InvalidAmount(InvalidInput):
    code = "invalid_amount"
    default_message = _("The amount must be positive and have at most two decimal places.")


class InvalidPaymentInput(InvalidInput):
    """Missing or malformed non-money input (reference, reason, card reference…); the code says which."""

    code = "invalid_input"


class UnknownTender(DomainError):
    code = "unknown_tender"
    default_message = _("Unknown tender.")


class UnknownProvider(DomainError):
    code = "unknown_provider"
    default_message = _("Unknown payment provider.")


class PaymentNotFound(NotFound):
    code = "payment_not_found"
    default_message = _("Payment not found.")


class RefundNotFound(NotFound):
    code = "refund_not_found"
    default_message = _("Refund not found.")


class PaymentNotPending(Conflict):
    code = "payment_not_pending"
    default_message = _("The payment is no longer pending.")


class PaymentNotCaptured(Conflict):
    code = "payment_not_captured"
    default_message = _("Only a captured payment can be refunded.")


class RefundNotPending(Conflict):
    code = "refund_not_pending"
    default_message = _("The refund is already completed with another result.")


class AmountMismatch(Conflict):
    code = "amount_mismatch"
    default_message = _("The amount does not match the payment.")


class OverRefund(Conflict):
    code = "over_refund"
    default_message = _("The refund exceeds the amount still refundable.")


class DuplicateTransaction(Conflict):
    code = "duplicate_transaction"
    default_message = _("This provider transaction is already recorded on another payment or refund.")


class InvalidSignature(DomainError):
    """A notification failed verification: bad or missing signature, stale timestamp, bad payload."""

    status = 401
    code = "invalid_signature"
    default_message = _("The notification signature is not valid.")


class ProviderNotConfigured(DomainError):
    status = 503
    code = "provider_not_configured"
    default_message = _("This payment provider is not configured.")


class ProviderUnavailable(DomainError):
    status = 503
    code = "provider_unavailable"
    default_message = _("This payment provider cannot take the request now.")


class InvalidPaymentCode(InvalidInput):
    code = "invalid_payment_code"
    default_message = _("This is not a WeChat Pay or Alipay payment code.")


class PaymentCodeMismatch(InvalidInput):
    """The code belongs to the other wallet than the one chosen."""

    code = "payment_code_mismatch"
    default_message = _("This payment code belongs to another wallet than the one chosen.")


class PaymentDeclined(Conflict):
    """The provider refused to charge the payment code; ``params["reason"]`` says why."""

    code = "payment_declined"
    default_message = _("The payment was declined.")


class PaymentCodePending(Conflict):
    code = "payment_code_pending"
    default_message = _("The customer has not confirmed the payment yet.")


class PaymentNotHeld(Conflict):
    """A payment-code payment can pay only the sale it was taken for, once."""

    code = "payment_not_held"
    default_message = _("This payment does not belong to this sale or is already used.")
