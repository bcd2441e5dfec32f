"""Wallet recharges at the counter (储值充值): sell for cash, card or a payment code; refund the
unspent principal with a manager's approval.  The writes are ``payments.recharges``; a payment
code is charged first, outside any transaction, and refunded if the recharge then fails."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from members.models import Member, RechargePackage
from o2o.errors import DomainError
from payments import micropay
from payments import recharges
from payments.models import Payment
from stores.models import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RechargeIn:
    tender: str
    package: RechargePackage | None = None
    amount: Decimal | None = None
    card_reference: str = ""
    payment_code: str = ""


def pos_recharge(*, store: Store, member: Member, client_uuid, actor, data: RechargeIn) -> recharges.RechargeResult:
    """Sell a recharge; with a payment code, charge it first (once per ``client_uuid``), then credit.

    Not a service: the code's charge calls the provider outside any transaction.  Raises what
    ``micropay_charge`` and ``recharges.recharge_sell`` raise.
    """
    if not data.payment_code:
        return recharges.recharge_sell(member=member, store=store, tender=data.tender, client_uuid=client_uuid,
                                       actor=actor, package=data.package, amount=data.amount,
                                       card_reference=data.card_reference)
    amount = data.package.pay_amount if data.package is not None else data.amount
    if data.package is not None and data.amount is not None:
        raise recharges.RechargeAmountRequired(field="amount")
    captured = micropay.micropay_charge(store=store, client_uuid=client_uuid, tender="", amount=amount,
                                        code=data.payment_code, actor=actor)
    try:
        return recharges.recharge_sell(member=member, store=store, tender=captured.tender, client_uuid=client_uuid,
                                       actor=actor, package=data.package, amount=data.amount,
                                       payment_id=captured.pk)
    except DomainError:
        _release(captured, store=store, actor=actor)
        raise


def _release(payment: Payment, *, store: Store, actor) -> None:
    try:
        micropay.micropay_release(payment=payment.pk, store=store, actor=actor, reason="recharge not completed")
    except Exception:  # the beat sweeper (micropay_orphans_release) refunds it later
        log.exception("could not release payment %s; the orphan sweeper will refund it", payment.number)
