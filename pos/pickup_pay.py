"""Pay at pickup: an online pickup order left unpaid is paid at the counter, then handed over.

The customer shows the pickup code; the clerk takes cash or a card for what is
due (``orders.services.order_pay`` with the store, so the cash is in this
shift's drawer), the order becomes paid and ready, and the usual handover gives
the goods.  One transaction per step, holding the open shift like a sale.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from o2o.db import service
from o2o.errors import InvalidInput
from o2o.money import money
from orders import locks
from orders import services as order_services
from orders.exceptions import OrderNotPayable, PickupCodeInvalid, WrongStore
from orders.models import Fulfillment, Order, Status
from orders.services import TenderIn
from payments import shifts
from payments.models import Payment, Tender

COUNTER_TENDERS = (Tender.CASH, Tender.UNIONPAY_CARD)


class CashNotEnough(InvalidInput):
    code = "cash_too_low"
    default_message = _("The cash handed over does not cover what is due.")


class PickupTenderNotAllowed(InvalidInput):
    code = "pickup_tender_not_allowed"
    default_message = _("At pickup the order is paid in cash or by card.")


@service
def pickup_pay(*, code: str, store, actor, tender: str, cash_tendered: Decimal | None = None,
               card_reference: str = "") -> tuple[Order, Decimal]:
    """Pay what is due on the unpaid pickup order with this code, at ``store``; (order, change).
    Holds the open shift FOR SHARE; locks the order.  Raises pickup_code_invalid, wrong_store,
    order_not_payable, pickup_tender_not_allowed, cash_too_low, card_reference_required,
    cash_not_in_unit (cash for an amount the store's cash rounding cannot hand over)."""
    if tender not in COUNTER_TENDERS:
        raise PickupTenderNotAllowed(field="tender")
    order = Order.objects.filter(pickup_code=(code or "").strip(), fulfillment=Fulfillment.PICKUP).first()
    if order is None:
        raise PickupCodeInvalid(field="code")
    if order.store_id != store.pk:
        raise WrongStore(field="code")
    shifts.shift_hold(store)
    order = locks.order_for_update(order)
    if order.status != Status.PENDING_PAYMENT:
        raise OrderNotPayable(params={"status": order.status})
    due = money(order.total - order.paid_total)
    change = money(0)
    if tender == Tender.CASH:
        # The order was priced online, to the fen: its total cannot take a 抹零 discount now, so
        # a store rounding cash takes such an amount by card (the drawer stays countable).
        unit = shifts.cash_unit(store)
        if due % unit:
            raise shifts.CashNotInUnit(field="tender", params={"unit": str(unit)})
        tendered = money(cash_tendered if cash_tendered is not None else due)
        if tendered < due:
            raise CashNotEnough(field="cash_tendered", params={"due": str(due)})
        change = money(tendered - due)
    order = order_services.order_pay(order=order, tenders=[TenderIn(tender, due, card_reference=card_reference)],
                                     actor=actor, store=store)
    if tender == Tender.CASH:
        payment = Payment.objects.filter(reference=order.number, tender=Tender.CASH).order_by("-id").first()
        shifts.cash_tendered_record(payment=payment, tendered=money(due + change))
    return order, change
