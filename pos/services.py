"""What the counter does, each as one call: sell, void, take a return, exchange.

These wrap the order services the API uses (``pos_sale_create``,
``return_create``, ``exchange_create``) with what only the counter needs:
the open shift (held FOR SHARE, so the shift cannot close under a sale), the
split of the tenders with change for cash, and manager approvals, checked
before the transaction opens and recorded inside it with the action.
"""

from __future__ import annotations

import logging
import uuid as uuid_module
from dataclasses import dataclass, replace
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members import selectors as member_read
from members.models import GuideBinding
from members.services import guides
from members.services import members as member_services
from o2o.db import service
from o2o.errors import Conflict, InvalidInput
from o2o.money import FEN, ZERO, money, money_parse, round_to_unit
from orders import services as order_services
from orders.exceptions import OrderNotFound
from orders.models import Channel, Order, Return, ReturnLine
from orders.pricing import sale_round_cash
from pos import selectors
from pos.basket import Basket, OutOfStock, PricedBasket, basket_price
from pos.parking import basket_open_save
from orders.services import ReturnLineIn, TenderIn, return_window_end
from payments import approvals, micropay, shifts
from payments.models import ApprovalLog, Payment, Tender
from stores import selectors as store_read
from stores.models import Role, Store

Action = ApprovalLog.Action
log = logging.getLogger(__name__)


class BasketEmpty(InvalidInput):
    code = "basket_empty"
    default_message = _("Scan at least one item first.")


class TendersExceedDue(InvalidInput):
    code = "tenders_exceed_due"
    default_message = _("The card and other payments add up to more than is due.")


class CashTooLow(InvalidInput):
    code = "cash_tendered_too_low"
    default_message = _("The cash handed over is less than the cash due.")


class NoCashDue(InvalidInput):
    code = "no_cash_due"
    default_message = _("Nothing is left to pay in cash.")


class InvalidTenderAmount(InvalidInput):
    code = "invalid_tender_amount"
    default_message = _("Type an amount of zero or more with at most two decimals.")


class NotVoidable(Conflict):
    code = "not_voidable"
    default_message = _("Only a sale of the current shift with nothing returned yet can be voided.")


class ExchangeNoDiscount(InvalidInput):
    code = "exchange_no_discount"
    default_message = _("Discounts and price overrides are not possible in an exchange.")


@dataclass(frozen=True)
class ApprovalIn:
    """The manager's credentials typed into the approval dialog."""

    pin: str = ""
    username: str = ""
    password: str = ""
    reason: str = ""

    def __bool__(self) -> bool:
        return bool(self.pin or (self.username and self.password))


@dataclass(frozen=True)
class PaymentIn:
    cash_tendered: Decimal = ZERO
    card_amount: Decimal = ZERO
    card_reference: str = ""
    wallet_amount: Decimal = ZERO
    points: int = 0
    # The customer's WeChat Pay / Alipay payment code (付款码) as scanned, the amount it pays
    # (zero: whatever the other tenders leave), the clerk's choice of wallet ("" = from the code),
    # and, once charged, the captured payment (pos_sale_complete fills it in).
    payment_code: str = ""
    code_amount: Decimal = ZERO
    code_tender: str = ""
    code_payment_id: int | None = None


class PaymentCodeRequired(InvalidInput):
    code = "payment_code_required"
    default_message = _("Scan the customer's payment code.")


class NoCodeDue(InvalidInput):
    code = "no_code_due"
    default_message = _("Nothing is left to pay with the payment code.")


class PaymentCodeNotCharged(InvalidInput):
    code = "payment_code_not_charged"
    default_message = _("The payment code has not been charged yet.")


class MemberRequired(InvalidInput):
    code = "member_required"
    default_message = _("Look up the member first: wallet and points belong to a member.")


class MemberProofRequired(InvalidInput):
    code = "member_proof_required"
    default_message = _("Points and wallet pay only when the customer shows their dynamic member code "
                        "(in the member app). A phone number or the static member code only earns points.")


def _member_proof_check(basket: Basket, payment: PaymentIn) -> None:
    """Spending the member's points or wallet needs the customer's proof (members.codes)."""
    if basket.member_proved:
        return
    if payment.points:
        raise MemberProofRequired(field="points")
    if _amount(payment.wallet_amount, "wallet_amount"):
        raise MemberProofRequired(field="wallet_amount")


class InvalidPointsInput(InvalidInput):
    code = "invalid_points"
    default_message = _("Points must be a whole number.")


@dataclass(frozen=True)
class TenderPlan:
    tenders: list[TenderIn]
    cash_due: Decimal
    tendered: Decimal
    change: Decimal
    # 抹零: what the store's cash rounding dropped from the cash due (a discount on the sale).
    rounding: Decimal = ZERO


@dataclass
class CheckoutResult:
    order: Order
    created: bool
    change: Decimal = ZERO
    ret: Return | None = None


def _amount(value, field: str) -> Decimal:
    if value is None or value == "":
        return ZERO
    try:
        return money_parse(value)
    except ValueError:
        raise InvalidTenderAmount(field=field) from None


def tender_plan(*, due: Decimal, payment: PaymentIn, unit: Decimal = FEN) -> TenderPlan:
    """Split what is due: points, wallet, card and payment code first, the rest in cash.

    The cash part is rounded down to the store's cash ``unit`` (抹零); what it drops is the
    plan's ``rounding``, which the checkout takes off the sale as a discount.

    The cash payment recorded is the cash part; the customer may hand over
    more, and the difference is the change.  Points are typed as points and
    pay their value.  A payment code without an amount pays what the other
    non-cash tenders leave.  Raises TendersExceedDue, CashTooLow, NoCashDue,
    InvalidTenderAmount, InvalidPointsInput, PaymentCodeRequired, NoCodeDue,
    InvalidPaymentCode, PaymentCodeMismatch.
    """
    card = _amount(payment.card_amount, "card_amount")
    wallet = _amount(payment.wallet_amount, "wallet_amount")
    code = _amount(payment.code_amount, "code_amount")
    tendered = _amount(payment.cash_tendered, "cash_tendered")
    if isinstance(payment.points, bool) or not isinstance(payment.points, int) or payment.points < 0:
        raise InvalidPointsInput(field="points")
    by_points = member_read.points_value(payment.points) if payment.points else ZERO
    code_tender = ""
    if payment.payment_code or code:
        if not payment.payment_code:
            raise PaymentCodeRequired(field="payment_code")
        _, code_tender = micropay.payment_code_tender(payment.payment_code, payment.code_tender)
        rest = money(due - by_points - wallet - card)
        if code == 0 and rest == 0:
            raise NoCodeDue(field="payment_code")
        code = code or max(rest, ZERO)
    tenders = []
    for tender, amount, reference in ((Tender.POINTS, by_points, ""), (Tender.WALLET, wallet, ""),
                                      (Tender.UNIONPAY_CARD, card, payment.card_reference)):
        if amount > 0:
            tenders.append(TenderIn(tender, amount, reference))
    if code > 0:
        tenders.append(TenderIn(code_tender, code, payment_id=payment.code_payment_id))
    non_cash = money(by_points + wallet + card + code)
    if non_cash > due:
        field = ("code_amount" if payment.code_amount else "card_amount" if card
                 else "wallet_amount" if wallet else "points" if by_points else "code_amount")
        raise TendersExceedDue(field=field, params={"due": str(due)})
    owed = money(due - non_cash)
    cash_due = round_to_unit(owed, unit, down=True)
    if cash_due > 0:
        if tendered < cash_due:
            raise CashTooLow(field="cash_tendered", params={"due": str(cash_due)})
        tenders.insert(0, TenderIn(Tender.CASH, cash_due))
    elif tendered > 0:
        raise NoCashDue(field="cash_tendered")
    return TenderPlan(tenders=tenders, cash_due=cash_due, tendered=tendered,
                      change=money(tendered - cash_due) if cash_due > 0 else ZERO, rounding=money(owed - cash_due))


# --- approvals -------------------------------------------------------------------------------


def _approved(log: ApprovalLog | None, **data) -> bool:
    return log is not None and all(str(log.data.get(k)) == str(v) for k, v in data.items())


def basket_approvals_check(*, basket: Basket, priced: PricedBasket, store: Store, actor) -> None:
    """Every price override, and a discount beyond the clerk's limit, needs its recorded approval."""
    for line in priced.lines:
        if not line.overridden:
            continue
        log = approvals.approval_covers(approval_id=basket.lines[line.index].approval_id,
                                        action=Action.PRICE_OVERRIDE, store=store, clerk=actor,
                                        reference=basket.uuid)
        if not _approved(log, sku_id=line.sku.pk, price=line.unit_price):
            raise approvals.ApprovalRequired(field="price", params={"action": Action.PRICE_OVERRIDE})
    discount = basket.discount
    if discount and approvals.discount_needs_approval(user=actor, store=store,
                                                      subtotal=money(priced.subtotal - priced.override_discount),
                                                      discount=priced.manual_discount):
        log = approvals.approval_covers(approval_id=discount.approval_id, action=Action.DISCOUNT, store=store,
                                        clerk=actor, reference=basket.uuid)
        if not _approved(log, discount=discount.label()):
            raise approvals.ApprovalRequired(field="discount", params={"action": Action.DISCOUNT})


def return_approvals_needed(order: Order, *, by_receipt: bool) -> list[str]:
    """Approvals a counter return of ``order`` needs: no receipt shown; past the return window."""
    needed = []
    if not by_receipt:
        needed.append(Action.REFUND_WITHOUT_RECEIPT)
    if return_window_end(order) < timezone.now():
        needed.append(Action.LATE_RETURN)
    return needed


def approval_grant(*, action: str, store: Store, actor, approval: ApprovalIn, reference: str,
                   amount: Decimal | None = None, data: dict | None = None) -> ApprovalLog:
    """Ask a manager now for an approval the sale will check later (discount, price override)."""
    return approvals.approval_grant(action=action, store=store, clerk=actor, pin=approval.pin,
                                    username=approval.username, password=approval.password,
                                    reason=approval.reason, reference=reference, amount=amount, data=data)


def _verify(store: Store, actor, approval: ApprovalIn | None, needed: list[str]):
    if not needed:
        return None, ""
    if not approval:
        raise approvals.ApprovalRequired(params={"actions": needed})
    return approvals.approval_verify(store=store, clerk=actor, pin=approval.pin, username=approval.username,
                                     password=approval.password)


# --- sale --------------------------------------------------------------------------------------


def _sale_uuid(client_uuid) -> uuid_module.UUID:
    try:
        return uuid_module.UUID(str(client_uuid))
    except ValueError:
        raise InvalidInput(_("This sale screen is out of date; open a new sale."), code="invalid_sale_id",
                           field="client_uuid") from None


def sale_already_made(*, store: Store, client_uuid) -> Order | None:
    """The sale this client id already made at the store (a double click, a retry after a timeout)."""
    try:
        key = uuid_module.UUID(str(client_uuid))
    except ValueError:
        return None
    return Order.objects.filter(client_uuid=key, store=store).first()


@service
def pos_checkout(*, store: Store, actor, client_uuid, basket: Basket, payment: PaymentIn,
                 priced: PricedBasket | None = None, known_new: bool = False,
                 basket_clear: bool = False) -> CheckoutResult:
    """Complete the basket as a sale (or, with a basket exchange, as an exchange).

    Idempotent on ``client_uuid``: a sale already made with it is returned
    as is.  Holds the open shift FOR SHARE.  Raises ShiftNotOpen, BasketEmpty,
    InvalidDiscount, ApprovalRequired, the tender errors of ``tender_plan`` and
    whatever ``pos_sale_create`` / ``exchange_create`` raise (unknown or
    inactive SKU, insufficient stock, a card slip already used…).  ``priced``: the basket as
    ``basket_checked`` priced it in this request (the sale takes it as it is); priced here without.
    ``known_new``: the caller has just looked for a sale with ``client_uuid`` and found none (it is
    not read again; a twin submit is still caught by the sale's insert).  ``basket_clear``: the
    clerk's open basket on the server (``pos.parking``) is emptied with the sale, in its transaction.
    The member is locked once, before the sale is priced, and passed down.
    """
    key = _sale_uuid(client_uuid)
    if not known_new:
        done = sale_already_made(store=store, client_uuid=key)
        if done is not None:
            return CheckoutResult(order=done, created=False, change=selectors.sale_change(done))
    shift = shifts.shift_hold(store)
    locked = None
    if priced is None:
        locked = member_services.member_lock(basket.member_id) if basket.member_id and not basket.exchange else None
        # No stock figures: the sale's conditional update of the levels decides.
        priced = basket_checked(basket=basket, store=store, actor=actor, member=locked, stock=False)
    _member_proof_check(basket, payment)
    if basket.exchange:
        return _exchange(store=store, actor=actor, key=key, basket=basket, priced=priced, payment=payment)
    priced.sale.raise_errors()
    plan = tender_plan(due=priced.total, payment=payment, unit=shift.cash_unit)
    _code_charged_check(plan)
    member = priced.sale.member
    if member is None and (payment.points or _amount(payment.wallet_amount, "wallet_amount")):
        raise MemberRequired(field="member")

    def with_the_sale(order: Order, payments: list[Payment]) -> None:
        if member is not None and basket.guide_id:
            _member_guide_bind(member=member, guide_id=basket.guide_id)
        _cash_record(payments, plan)
        if basket_clear:
            basket_open_save(store=store, clerk=actor, basket=None)

    result = order_services.pos_sale_create(
        store=store, client_uuid=key, actor=actor, priced=sale_round_cash(priced.sale, plan.rounding),
        tenders=plan.tenders, known_new=True, member_locked=locked is not None and member is locked,
        customer_phone=member.phone if member else "", guide_id=basket.guide_id, before_stock=with_the_sale)
    return CheckoutResult(order=result.order, created=result.created, change=plan.change)


def _member_guide_bind(*, member, guide_id: int) -> None:
    """The guide who served a member at the counter binds them (under the region's rule), so the
    member's later orders in any channel are attributed to that guide."""
    guide = guides.guide_active(guide_id)
    guides.guide_bind(member=member, guide_code=guide.guide_code, source=GuideBinding.Source.POS)


@service
def pos_member_register(*, store: Store, phone: str, name: str = "", actor=None, guide_id: int | None = None):
    """Register a member at the counter (or find the one with this number) and bind them to the
    guide: the one chosen for the sale, else the clerk at the till when they are a guide.

    Locks the member row.  Queues member.registered, members.guide_bound.
    Raises invalid_phone, not_a_guide (a chosen guide who is not an active guide).
    """
    member = member_services.member_register(phone=phone, channel="pos", store_id=store.pk, name=name)
    if guide_id is None:
        profile = store_read.staff_profile(actor) if actor is not None else None
        if profile is not None and profile.role == Role.GUIDE and profile.guide_code:
            guide_id = profile.pk
    if guide_id is not None:
        _member_guide_bind(member=member, guide_id=guide_id)
    return member


def basket_checked(*, basket: Basket, store: Store, actor, member=None, stock: bool = True) -> PricedBasket:
    """The basket priced (once: the sale takes this pricing as it is), refused when empty,
    mispriced or short of a manager's approval.  ``member``: the basket's member as the caller
    loaded it (read here otherwise); ``stock=False``: no stock figures (``basket_price``)."""
    if not basket.lines:
        raise BasketEmpty(field="scan")
    if member is None and basket.member_id:
        member = member_read.member_get(basket.member_id)
    priced = basket_price(basket, store, member=member, stock=stock)
    if priced.discount_error:
        raise priced.discount_error
    basket_approvals_check(basket=basket, priced=priced, store=store, actor=actor)
    return priced


def _code_charged_check(plan: TenderPlan) -> None:
    if any(t.tender in micropay.CODE_TENDERS and t.payment_id is None for t in plan.tenders):
        raise PaymentCodeNotCharged(field="payment_code")


def checkout_precheck(*, store: Store, actor, basket: Basket, payment: PaymentIn,
                      priced: PricedBasket) -> TenderPlan:
    """What ``pos_checkout`` would refuse, checked before a payment code is charged.

    Reads only, takes no locks: the customer should not be charged for a sale
    that cannot complete as typed.  The sale checks everything again in its
    transaction (stock may still run out in between; then the charge is
    refunded).  Raises ShiftNotOpen, BasketEmpty, OutOfStock, MemberRequired,
    ExchangeNoDiscount, OrderNotFound, ApprovalRequired, the pricing and
    coupon errors and those of ``tender_plan``.
    """
    if shifts.shift_current(store) is None:
        raise shifts.ShiftNotOpen()
    due = priced.total
    if basket.exchange:
        if priced.discount_total > 0 or basket.coupon:
            raise ExchangeNoDiscount(field="discount")
        order = selectors.returnable_orders(store).filter(pk=basket.exchange.order_id).first()
        if order is None:
            raise OrderNotFound()
        due = money(max(ZERO, priced.total - selectors.exchange_credit(order, basket.exchange.lines)))
        member = order_services.exchange_member(order, priced.sale.member)
    else:
        priced.sale.raise_errors()
        member = priced.sale.member
    plan = tender_plan(due=due, payment=payment, unit=shifts.cash_unit(store))
    if member is None and (payment.points or _amount(payment.wallet_amount, "wallet_amount")):
        raise MemberRequired(field="member")
    _member_proof_check(basket, payment)
    for line in priced.lines:
        if basket.qty_of(line.sku.pk) > line.available:
            raise OutOfStock(field="scan", params={"available": max(line.available, 0), "sku": line.sku.code})
    return plan


def pos_sale_complete(*, store: Store, actor, client_uuid, basket: Basket,
                      payment: PaymentIn, known_new: bool = False, basket_clear: bool = False) -> CheckoutResult:
    """Complete the basket at the counter; with a payment code, charge it first, then make the sale.

    Not a service: the code is charged outside any transaction
    (``payments.micropay``) and the sale (``pos_checkout``) then takes the
    captured payment as one of its tenders.  Nothing is left half done: if
    the sale fails after the charge, the charge is refunded in full to the
    customer's account and the error raised carries the refund as
    ``micropay_refund``.  A double submit or a retry with the same
    ``client_uuid`` charges once and makes one sale.  ``known_new`` and ``basket_clear`` as for
    ``pos_checkout``.  Raises what ``checkout_precheck``, ``micropay_charge`` and ``pos_checkout`` raise.
    """
    if not (payment.payment_code or _amount(payment.code_amount, "code_amount")):
        return pos_checkout(store=store, actor=actor, client_uuid=client_uuid, basket=basket, payment=payment,
                            known_new=known_new, basket_clear=basket_clear)
    key = _sale_uuid(client_uuid)
    if not known_new:
        done = sale_already_made(store=store, client_uuid=key)
        if done is not None:
            return CheckoutResult(order=done, created=False, change=selectors.sale_change(done))
    priced = basket_checked(basket=basket, store=store, actor=actor)
    plan = checkout_precheck(store=store, actor=actor, basket=basket, payment=payment, priced=priced)
    code = next(t for t in plan.tenders if t.tender in micropay.CODE_TENDERS)
    captured = micropay.micropay_charge(store=store, client_uuid=key, tender=code.tender, amount=code.amount,
                                        code=payment.payment_code, actor=actor)
    try:
        result = pos_checkout(store=store, actor=actor, client_uuid=key, basket=basket,
                              payment=replace(payment, code_payment_id=captured.pk), priced=priced,
                              known_new=True, basket_clear=basket_clear)
    except Exception as exc:
        cause = getattr(exc, "code", type(exc).__name__)
        exc.micropay_refund = _release(captured, store=store, actor=actor, reason=f"sale not completed: {cause}")
        raise
    if not result.created:  # a twin submit made the sale; a charge it did not take goes back
        _release(captured, store=store, actor=actor, reason="sale already made")
    return result


def _release(payment: Payment, *, store: Store, actor, reason: str):
    try:
        return micropay.micropay_release(payment=payment.pk, store=store, actor=actor, reason=reason)
    except Exception:  # the beat sweeper (micropay_orphans_release) refunds it later
        log.exception("could not release payment %s; the orphan sweeper will refund it", payment.number)
        return None


def _cash_record(payments: list[Payment], plan: TenderPlan) -> None:
    cash = next((p for p in payments if p.tender == Tender.CASH), None)
    if cash is not None:
        shifts.cash_tendered_record(payment=cash, tendered=plan.tendered)


def exchange_member_check(*, store: Store, basket: Basket, member) -> None:
    """Refuse attaching to an exchange basket another member than the original order's
    (ExchangeMemberMismatch): the new goods go to the customer who brought the old ones back."""
    if basket.exchange:
        order = selectors.returnable_orders(store).filter(pk=basket.exchange.order_id).first()
        if order is not None:
            order_services.exchange_member(order, member)


def _exchange(*, store: Store, actor, key, basket: Basket, priced: PricedBasket,
              payment: PaymentIn) -> CheckoutResult:
    exchange = basket.exchange
    if priced.discount_total > 0 or basket.coupon:
        raise ExchangeNoDiscount(field="discount")
    order = selectors.returnable_orders(store).filter(pk=exchange.order_id).first()
    if order is None:
        raise OrderNotFound()
    credit = selectors.exchange_credit(order, exchange.lines)
    manager = None
    if exchange.approval_id:
        log = ApprovalLog.objects.filter(pk=exchange.approval_id, store=store, clerk=actor,
                                         reference=basket.uuid).first()
        manager = log.manager if log else None
    needed = return_approvals_needed(order, by_receipt=exchange.by_receipt)
    if needed and manager is None:
        raise approvals.ApprovalRequired(params={"actions": needed})
    member = order_services.exchange_member(order, priced.sale.member)
    plan = tender_plan(due=money(max(ZERO, priced.total - credit)), payment=payment, unit=shifts.cash_unit(store))
    _code_charged_check(plan)
    if member is None and (payment.points or _amount(payment.wallet_amount, "wallet_amount")):
        raise MemberRequired(field="member")
    result = order_services.exchange_create(
        order=order, store=store, client_uuid=key, actor=actor, reason=exchange.reason or "exchange",
        return_lines=[ReturnLineIn(x.order_line_id, x.qty, x.condition) for x in exchange.lines],
        priced=sale_round_cash(priced.sale.raise_errors(), plan.rounding), tenders=plan.tenders,
        approved_by=manager if Action.LATE_RETURN in needed else None, member=member, guide_id=basket.guide_id)
    payments = list(Payment.objects.filter(reference=result.order.number, tender=Tender.CASH))
    _cash_record(payments, plan)
    return CheckoutResult(order=result.order, created=True, change=plan.change, ret=result.ret)


# --- void ---------------------------------------------------------------------------------------


def pos_void(*, order: Order | int, store: Store, actor, approval: ApprovalIn | None, reason: str = "") -> Return:
    """Cancel a sale of the current shift: take every line back and refund every tender.

    Needs a manager (checked before the transaction, recorded with the void).
    Raises OrderNotFound (not this store's sale), NotVoidable, ShiftNotOpen,
    ApprovalRequired, ApprovalDenied, ApprovalRateLimited.
    """
    found = selectors.store_sales(store).filter(pk=getattr(order, "pk", order)).first()
    if found is None:
        raise OrderNotFound()
    manager, method = _verify(store, actor, approval, [Action.VOID])
    return _void(order=found, store=store, actor=actor, manager=manager, method=method,
                 reason=(approval.reason if approval else "") or reason)


@service
def _void(*, order: Order, store: Store, actor, manager, method: str, reason: str) -> Return:
    shift = shifts.shift_hold(store)
    order = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
    lines = list(order.lines.all())
    if (order.channel != Channel.POS or order.created_at < shift.opened_at or order.refunded_total > 0
            or any(ln.qty_returned for ln in lines)):
        raise NotVoidable()
    ret = order_services.return_create(
        order=order, store=store, actor=actor, reason=f"void: {reason}".strip()[:300], approved_by=manager,
        lines=[ReturnLineIn(ln.pk, ln.qty, ReturnLine.Condition.SELLABLE) for ln in lines])
    approvals.approval_record(action=Action.VOID, store=store, clerk=actor, manager=manager, method=method,
                              reason=reason, reference=order.number, amount=order.total,
                              data={"return": ret.number})
    return ret


# --- returns ------------------------------------------------------------------------------------


def pos_return(*, order: Order | int, store: Store, actor, lines: list[ReturnLineIn], by_receipt: bool,
               client_uuid, reason: str = "", approval: ApprovalIn | None = None) -> Return:
    """Take goods back at the counter and refund them as the policy allows (``return_create``).

    Without the receipt (the order found by the member's phone) or after the
    return window, a manager must approve.  Idempotent on ``client_uuid``.
    Raises OrderNotFound (not an online order nor one of this store), the
    approval errors, ShiftNotOpen and what ``return_create`` raises.
    """
    key = _sale_uuid(client_uuid)
    done = Return.objects.filter(client_uuid=key, store=store).first()
    if done is not None:
        return done
    found = selectors.returnable_orders(store).filter(pk=getattr(order, "pk", order)).first()
    if found is None:
        raise OrderNotFound()
    order_services.return_store_check(found, store)  # before asking a manager for an approval in vain
    needed = return_approvals_needed(found, by_receipt=by_receipt)
    manager, method = _verify(store, actor, approval, needed)
    return _return(order=found, store=store, actor=actor, lines=lines, key=key, reason=reason, needed=needed,
                   manager=manager, method=method, approval_reason=approval.reason if approval else "")


@service
def _return(*, order: Order, store: Store, actor, lines, key, reason: str, needed: list[str], manager,
            method: str, approval_reason: str) -> Return:
    shifts.shift_hold(store)
    ret = order_services.return_create(order=order, store=store, actor=actor, lines=lines, reason=reason,
                                       client_uuid=key,
                                       approved_by=manager if Action.LATE_RETURN in needed else None)
    for action in needed:
        approvals.approval_record(action=action, store=store, clerk=actor, manager=manager, method=method,
                                  reason=approval_reason or reason, reference=ret.number, amount=ret.refund_total,
                                  data={"order": order.number})
    return ret


def exchange_approve(*, order: Order, store: Store, actor, by_receipt: bool, reference: str,
                     approval: ApprovalIn | None) -> ApprovalLog | None:
    """Approvals an exchange needs, granted before the clerk scans the new goods (recorded now)."""
    needed = return_approvals_needed(order, by_receipt=by_receipt)
    if not needed:
        return None
    manager, method = _verify(store, actor, approval, needed)
    return _exchange_approvals_record(store=store, actor=actor, manager=manager, method=method, needed=needed,
                                      reference=reference, order=order,
                                      reason=approval.reason if approval else "")


@service
def _exchange_approvals_record(*, store, actor, manager, method, needed, reference, order, reason) -> ApprovalLog:
    logs = [approvals.approval_record(action=action, store=store, clerk=actor, manager=manager, method=method,
                                      reason=reason, reference=reference, data={"order": order.number,
                                                                                "exchange": True})
            for action in needed]
    return logs[0]
