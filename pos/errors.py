"""Domain errors as the clerk reads them: in their language, with what the error is about.

Services raise errors with stable codes; some carry developer-facing English
text.  The counter shows its own wording for the codes a clerk meets, and
the service's (translated) message otherwise.
"""

from __future__ import annotations

from collections import defaultdict

from django.utils.translation import gettext_lazy as _

from o2o.errors import DomainError

CODE_MESSAGES = {
    "unknown_sku": _("Unknown barcode or SKU code “%(barcode)s”."),
    "invalid_barcode": _("“%(barcode)s” is neither a valid barcode nor a SKU code."),
    "inactive_sku": _("This item is no longer sold."),
    "insufficient_stock": _("Not enough stock in this store for %(skus)s."),
    "out_of_stock": _("Only %(available)s of %(sku)s in stock here."),
    "no_lines": _("Scan at least one item first."),
    "invalid_quantity": _("Quantity must be a whole number from 1 to 999."),
    "payment_mismatch": _("The payments do not add up to the amount due (%(due)s)."),
    "tenders_exceed_due": _("The card and other payments add up to more than is due (%(due)s)."),
    "cash_tendered_too_low": _("The cash handed over is less than the cash due (%(due)s)."),
    "cash_not_in_unit": _("This store hands out cash in units of ¥%(unit)s: type a multiple of it, or take "
                          "the amount by card."),
    "duplicate_transaction": _("This card slip reference was already used for another payment."),
    "duplicate_different_payload": _("This sale was already completed with different items. Start a new sale."),
    "invalid_discount": _("The discount cannot be more than the amount of the sale (%(subtotal)s)."),
    "shift_not_open": _("No shift is open. Open a shift before selling or refunding."),
    "wrong_store": _("This order belongs to another store."),
    "invalid_order_state": _("The order cannot do this now (it is “%(from)s”)."),
    "order_not_returnable": _("This order has not been handed over yet, so it cannot be returned."),
    "return_exceeds_purchase": _("You cannot return more than was bought and handed over."),
    "tracking_required": _("Type the carrier and the tracking number."),
    "invalid_shipment": _("Nothing is left to ship from this store."),
    "ship_exceeds_order": _("More than is left to ship."),
    "over_refund": _("The refund is more than is left to refund on this order."),
    "invalid_phone": _("Not a valid mobile number."),
    "approval_rate_limited": _("Too many wrong attempts. Wait a few minutes, then try again."),
    "invalid_payment_code": _("This is not a WeChat Pay or Alipay payment code. Ask the customer to show "
                              "the payment code again and scan it."),
    "payment_code_mismatch": _("This payment code is not from the wallet app chosen."),
    "payment_declined": _("Payment declined: %(reason_text)s. Nothing was charged; ask for another "
                          "payment method."),
    "payment_code_pending": _("The customer has not confirmed the payment on their phone yet. Once they "
                              "have, press Complete sale again."),
    "payment_code_required": _("Scan the customer's payment code."),
    "no_code_due": _("Nothing is left to pay with the payment code."),
    "provider_not_configured": _("WeChat Pay / Alipay is not set up for this store. Take another payment "
                                 "method."),
    "provider_unavailable": _("WeChat Pay / Alipay cannot take payments right now. Nothing was charged; "
                              "take another payment method."),
}

# Why a provider declined a payment code, as the clerk reads it.
DECLINE_REASONS = {
    "insufficient_balance": _("the customer's balance is too low"),
    "code_expired": _("the payment code has expired, ask for a new one"),
    "code_used": _("the payment code was already used, ask for a new one"),
    "invalid_code": _("the wallet does not accept this payment code"),
    "payment_timeout": _("the customer did not confirm in time, so the payment was cancelled at the provider"),
    "risk_declined": _("the wallet refused this payment, ask for another payment method"),
}


class _Blank(defaultdict):
    def __missing__(self, key):
        return ""


def _params(exc: DomainError) -> dict:
    out = _Blank(str)
    for key, value in (exc.params or {}).items():
        out[key] = ", ".join(str(v) for v in value) if isinstance(value, (list, tuple, set)) else value
    if "reason" in out:
        out["reason_text"] = DECLINE_REASONS.get(out["reason"]) or _("refused by the provider")
    return out


def error_message(exc: DomainError) -> str:
    template = CODE_MESSAGES.get(exc.code)
    if template is None:
        return str(exc.message)
    try:
        return str(template) % _params(exc)
    except (TypeError, ValueError):
        return str(template)
