"""Wallet recharges (储值充值) sold for money: a captured payment stands behind every recharge.

A recharge is a sale of stored value.  Its money is a payment like any other
(cash in the drawer, a card slip, a payment code, a provider payment online),
so it is in the shift's expected cash and Z report (both aggregate the store's
captured payments) and in the day's settlement; the wallet credit
(``members.services.wallet.wallet_recharge``) takes the payment's number as its
reference, which makes the credit idempotent and ties the two together.

* At the counter (``recharge_sell``): cash, UnionPay card, or a payment code
  already charged outside the transaction (``payments.micropay``), captured and
  credited in one transaction, holding the open shift like a sale.
* Online (``recharge_start``): a pending provider payment; its notification
  captures it, and the ``payment.captured`` consumer credits the wallet
  (``recharge_credit``), once.
* Refund of the unspent principal at the counter (``recharge_refund``), with a
  manager's approval: the bonus is forfeited, the principal goes back to the
  tender it was paid with (cash from the drawer).

Payments of a recharge carry the reference ``WR-<client id>``; the package (or
the bonus-free amount) and the member are on the payment's row and reference.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from members import selectors as member_read
from members.exceptions import InactivePackage, RechargeNotFound
from members.models import Member, RechargePackage, WalletRecharge
from members.services import wallet
from o2o.db import service
from o2o.errors import Conflict, InvalidInput
from o2o.money import ZERO, money
from o2o.outbox import consumer
from payments import approvals, micropay, shifts
from payments import services as pay
from payments.models import ApprovalLog, Payment, Refund, Tender
from payments.tenders import tender_for
from stores.models import Store

REFERENCE_PREFIX = "WR-"
COUNTER_TENDERS = (Tender.CASH, Tender.UNIONPAY_CARD)


class RechargeTenderNotAllowed(InvalidInput):
    code = "recharge_tender_not_allowed"
    default_message = _("A recharge is paid in cash, by card or with a payment code at the counter, or with "
                        "WeChat Pay / Alipay online.")


class RechargeAmountRequired(InvalidInput):
    code = "recharge_amount_required"
    default_message = _("Choose a recharge package or type an amount, not both.")


class RechargeReferenceConflict(Conflict):
    code = "recharge_reference_conflict"
    default_message = _("This recharge id was already used for another recharge.")


@dataclass(frozen=True)
class RechargeResult:
    payment: Payment
    recharge: WalletRecharge | None
    created: bool


def recharge_reference(client_uuid) -> str:
    try:
        key = uuid.UUID(str(client_uuid))
    except ValueError:
        raise InvalidInput(code="invalid_client_uuid", field="client_uuid") from None
    return f"{REFERENCE_PREFIX}{key.hex}"


def _terms(package: RechargePackage | int | None, amount) -> tuple[RechargePackage | None, Decimal, Decimal]:
    """(package, what the customer pays, the bonus credited on top)."""
    if (package is None) == (amount in (None, "")):
        raise RechargeAmountRequired(field="amount")
    if package is not None:
        package_id = getattr(package, "pk", package)
        found = RechargePackage.objects.filter(pk=package_id, is_active=True).first() \
            if isinstance(package_id, int) and not isinstance(package_id, bool) else None
        if found is None:
            raise InactivePackage(field="package", params={"package": str(package_id)})
        return found, found.pay_amount, found.bonus_amount
    return None, pay.amount_check(amount), ZERO


def _existing(reference: str, member: Member, paid: Decimal) -> RechargeResult | None:
    payment = Payment.objects.filter(reference=reference).exclude(status=Payment.Status.CANCELLED).first()
    if payment is None:
        return None
    if payment.member_id != member.pk or payment.amount != paid:
        raise RechargeReferenceConflict(field="client_uuid")
    return RechargeResult(payment, WalletRecharge.objects.filter(reference=payment.number).first(), False)


def _credit(payment: Payment, package: RechargePackage | None, bonus: Decimal, actor) -> WalletRecharge:
    if package is not None:
        return wallet.wallet_recharge(member=payment.member_id, reference=payment.number, package=package,
                                      store_id=payment.store_id, actor=actor)
    return wallet.wallet_recharge(member=payment.member_id, reference=payment.number, principal=payment.amount,
                                  bonus=bonus, store_id=payment.store_id, actor=actor)


@service
def recharge_sell(*, member: Member | int, store: Store, tender: str, client_uuid, actor,
                  package: RechargePackage | int | None = None, amount=None, card_reference: str = "",
                  payment_id: int | None = None) -> RechargeResult:
    """Sell a recharge at the counter: the payment is captured and the wallet credited at once.

    ``payment_id``: a payment-code payment charged for this recharge (``micropay``), taken as its
    tender.  Idempotent on ``client_uuid``.  Holds the open shift FOR SHARE; locks the member.
    Queues ``payment.captured``, ``member.wallet_changed``.  Raises shift_not_open,
    recharge_tender_not_allowed, recharge_amount_required, recharge_package_inactive, invalid_amount,
    card_reference_required, payment_not_held, recharge_reference_conflict, member_not_found.
    """
    member = member_read.member_get(member)
    package, paid, bonus = _terms(package, amount)
    reference = recharge_reference(client_uuid)
    done = _existing(reference, member, paid)
    if done is not None:
        return done
    shifts.shift_hold(store)
    if payment_id is not None:
        payment = micropay.micropay_attach(payment=payment_id, client_uuid=client_uuid, reference=reference,
                                           tender=tender, amount=paid, store=store)
        Payment.objects.filter(pk=payment.pk).update(member_id=member.pk)
        payment.member_id = member.pk
    elif tender in COUNTER_TENDERS:
        payment = pay.payment_create(reference=reference, tender=tender, amount=paid, store=store, actor=actor,
                                     card_reference=card_reference, member=member.pk)
    else:
        raise RechargeTenderNotAllowed(field="tender", params={"tender": str(tender)})
    return RechargeResult(payment, _credit(payment, package, bonus, actor), True)


@service
def recharge_start(*, member: Member | int, tender: str, client_uuid, actor=None,
                   package: RechargePackage | int | None = None, amount=None) -> RechargeResult:
    """Start an online recharge: a pending provider payment the customer pays at the provider.
    The wallet is credited when the payment is captured (``recharge_credit``).  Idempotent on
    ``client_uuid``.  Raises recharge_tender_not_allowed, recharge_amount_required,
    recharge_package_inactive, invalid_amount, recharge_reference_conflict, member_not_found."""
    member = member_read.member_get(member)
    package, paid, bonus = _terms(package, amount)
    if not tender_for(tender).provider_backed:
        raise RechargeTenderNotAllowed(field="tender", params={"tender": str(tender)})
    reference = recharge_reference(client_uuid)
    done = _existing(reference, member, paid)
    if done is not None:
        return done
    if package is not None:
        # The package is looked up again when the money arrives; keep its id on the reference.
        reference = f"{reference}-P{package.pk}"
        done = _existing(reference, member, paid)
        if done is not None:
            return done
    payment = pay.payment_create(reference=reference, tender=tender, amount=paid, actor=actor, member=member.pk)
    return RechargeResult(payment, None, True)


def _package_of(reference: str) -> RechargePackage | None:
    _, _, tail = reference[len(REFERENCE_PREFIX):].partition("-P")
    return RechargePackage.objects.filter(pk=int(tail)).first() if tail.isdigit() else None


@service
def recharge_credit(*, payment: Payment | int) -> WalletRecharge | None:
    """Credit the wallet for a captured online recharge payment (idempotent on the payment number).
    A package switched off meanwhile still gives the bonus it promised when it was bought."""
    payment = Payment.objects.filter(pk=getattr(payment, "pk", payment)).first()
    if payment is None or payment.status != Payment.Status.CAPTURED \
            or not payment.reference.startswith(REFERENCE_PREFIX) or payment.member_id is None:
        return None
    package = _package_of(payment.reference)
    bonus = package.bonus_amount if package is not None and package.pay_amount == payment.amount else ZERO
    return wallet.wallet_recharge(member=payment.member_id, reference=payment.number, principal=payment.amount,
                                  bonus=bonus, store_id=payment.store_id)


@consumer("payment.captured", name="payments.recharges.credit")
def _on_payment_captured(message) -> None:
    if str(message.payload.get("reference", "")).startswith(REFERENCE_PREFIX):
        recharge_credit(payment=message.payload["payment_id"])


@service
def recharge_refund(*, recharge: WalletRecharge | int, store: Store, actor, approval_id: int | None) -> Refund:
    """Refund a recharge's unspent principal at the counter, with a manager's approval
    (``ApprovalLog.Action.RECHARGE_REFUND`` for this recharge).  The bonus left is forfeited.
    The money goes back to the recharge's payment: cash from this store's drawer, a card or a
    provider account to where it came from.  Holds the open shift FOR SHARE; locks the member,
    then the payment.  Raises approval_required, recharge_not_found, wallet_nothing_to_refund."""
    recharge_id = getattr(recharge, "pk", recharge)
    lot = WalletRecharge.objects.filter(pk=recharge_id).first() \
        if isinstance(recharge_id, int) and not isinstance(recharge_id, bool) else None
    if lot is None:
        raise RechargeNotFound(field="recharge")
    payment = Payment.objects.filter(number=lot.reference).first()
    if payment is None:
        raise RechargeNotFound(field="recharge", params={"recharge_id": lot.pk})
    if approvals.approval_covers(approval_id=approval_id, action=ApprovalLog.Action.RECHARGE_REFUND, store=store,
                                 clerk=actor, reference=payment.number) is None:
        raise approvals.ApprovalRequired(params={"action": ApprovalLog.Action.RECHARGE_REFUND})
    shifts.shift_hold(store)
    entry = wallet.wallet_recharge_refund(member=lot.member_id, recharge=lot, actor=actor)
    principal = money(-entry.principal_delta)
    cash = payment.tender == Tender.CASH
    return pay.refund_create(payment=payment, amount=principal, reason="recharge refund", actor=actor, store=store,
                             method=Refund.Method.CASH if cash else Refund.Method.ORIGINAL,
                             policy=f"{payment.tender}: unspent principal refunded, bonus forfeited")
