"""The wallet (储值): recharge, spend, refund of a spend, refund of a recharge, merge.

Two balances
    A member's wallet holds PRINCIPAL (money they paid) and BONUS (money a
    package gave, e.g. "pay 1000, get 1100" = 1000 principal + 100 bonus),
    each the sum of one column of ``WalletEntry``.  Every recharge is a lot
    (``WalletRecharge``) with its own remaining principal and bonus; their sums
    are the member's balances.

The spend ratio
    A spend takes principal and bonus in proportion to the member's current
    principal and bonus balances: ``bonus part = round_half_up(amount × bonus /
    (principal + bonus))`` to the fen, and the remainder of the amount is
    principal.  Within each part, recharge lots are used oldest first.  Every
    lot touched is recorded in ``WalletSpendAllocation`` with the store that
    sold the recharge and the store where it was spent, so settlement can pay
    the selling store for wallet money spent elsewhere.

Refunds
    ``wallet_refund_spend`` puts money back with the SAME split as the spend:
    in proportion to what that reference took from each lot as principal and
    as bonus (net of earlier refunds), to the fen, into the same lots.
    ``wallet_recharge_refund`` pays out only the recharge's UNSPENT PRINCIPAL
    and forfeits its unspent bonus; what a later spend refund puts back into
    that lot can be refunded again.

Nesting and locks
    Each function is a ``@service``: called by the payments app inside its own
    service it joins that transaction, so a failure there rolls the wallet
    back too.  Each locks the member row first (``member_lock``) and changes
    that member's lots only under the lock; balances are moved with ``F()``
    updates that the CHECK constraints keep non-negative.  Each queues one
    ``member.wallet_changed`` outbox message per member changed.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from members.exceptions import (
    InactivePackage,
    InvalidAmount,
    InvalidReference,
    RechargeNotFound,
    WalletInsufficient,
    WalletNothingToRefund,
    WalletReferenceConflict,
    WalletRefundExceeded,
)
from members.models import Member, RechargePackage, WalletEntry, WalletEntryKind, WalletRecharge, WalletSpendAllocation
from members.selectors import member_family_ids
from members.services.members import member_lock, merge_hook, store_id_check
from o2o.db import service
from o2o.money import ZERO, allocate, money, money_parse
from o2o.outbox import outbox_emit
from stores.exceptions import NotLaunched
from stores.models import Capability, Store
from stores.selectors import capability_enabled


def _check_amount(value: object, *, field: str = "amount", allow_zero: bool = False) -> Decimal:
    if isinstance(value, str):  # services take numbers; text is parsed at the face
        raise InvalidAmount(field=field, params={"amount": value})
    try:
        return money_parse(value, positive=not allow_zero)
    except ValueError:
        raise InvalidAmount(field=field, params={"amount": str(value)}) from None


def _check_reference(reference: object, *, field: str = "reference") -> str:
    if not isinstance(reference, str) or not reference.strip() or len(reference.strip()) > 64:
        raise InvalidReference(field=field)
    return reference.strip()


def _actor(actor):
    return actor if actor is not None and getattr(actor, "pk", None) else None


def _post(member: Member, kind: str, principal: Decimal, bonus: Decimal, **fields) -> WalletEntry:
    """Write one entry and move the (locked) member's cached balances by the same amounts."""
    entry = WalletEntry.objects.create(member=member, kind=kind, principal_delta=principal, bonus_delta=bonus,
                                       **fields)
    Member.objects.filter(pk=member.pk).update(wallet_principal=F("wallet_principal") + principal,
                                               wallet_bonus=F("wallet_bonus") + bonus, updated_at=timezone.now())
    member.wallet_principal += principal
    member.wallet_bonus += bonus
    return entry


def _changed(member: Member) -> None:
    outbox_emit(topic="member.wallet_changed", key=f"member:{member.pk}",
                payload={"member_id": member.pk, "principal": member.wallet_principal, "bonus": member.wallet_bonus,
                         "balance": member.wallet_principal + member.wallet_bonus})


# --- recharge ------------------------------------------------------------------------------------


@service
def wallet_recharge(*, member: Member | int, reference: str, package: RechargePackage | int | None = None,
                    principal: Decimal | None = None, bonus: Decimal | None = None, store_id: int | None = None,
                    actor=None) -> WalletRecharge:
    """Credit a recharge: a ``package`` or an explicit ``principal`` (+ optional ``bonus``).

    ``reference`` is the payment (or order) reference of the money received and
    makes the call idempotent: the same reference again returns the first
    recharge if it matches, else raises wallet_reference_conflict.  Locks the
    member; queues ``member.wallet_changed``.  Raises invalid_amount,
    invalid_reference, recharge_package_inactive, store_not_found, member_not_found.
    """
    reference = _check_reference(reference)
    if package is not None:
        if principal is not None or bonus is not None:
            raise InvalidAmount(message="Give a package or amounts, not both.", field="package")
        package_id = package.pk if isinstance(package, RechargePackage) else package
        found = RechargePackage.objects.filter(pk=package_id, is_active=True).first() \
            if isinstance(package_id, int) and not isinstance(package_id, bool) else None
        if found is None:
            raise InactivePackage(field="package", params={"package": str(package_id)})
        package, principal, bonus = found, found.pay_amount, found.bonus_amount
    else:
        principal = _check_amount(principal, field="principal")
        bonus = _check_amount(bonus if bonus is not None else ZERO, field="bonus", allow_zero=True)
    store_id = store_id_check(store_id)
    member = member_lock(member)
    existing = WalletRecharge.objects.filter(reference=reference).first()
    if existing is not None:
        return _same_recharge(existing, member, principal, bonus)
    try:
        with transaction.atomic():
            recharge = WalletRecharge.objects.create(
                member=member, package=package, principal=principal, bonus=bonus, principal_remaining=principal,
                bonus_remaining=bonus, store_id=store_id, reference=reference, actor=_actor(actor))
    except IntegrityError:  # the same reference, committed meanwhile for another member
        existing = WalletRecharge.objects.filter(reference=reference).first()
        if existing is None:
            raise
        return _same_recharge(existing, member, principal, bonus)
    _post(member, WalletEntryKind.RECHARGE, principal, bonus, recharge=recharge, reference=reference,
          store_id=store_id, actor=_actor(actor))
    _changed(member)
    return recharge


def _same_recharge(existing: WalletRecharge, member: Member, principal: Decimal, bonus: Decimal) -> WalletRecharge:
    if existing.member_id != member.pk or existing.principal != principal or existing.bonus != bonus:
        raise WalletReferenceConflict(field="reference", params={"reference": existing.reference})
    return existing


# --- spend and refund of a spend -------------------------------------------------------------------


def _split(amount: Decimal, principal: Decimal, bonus: Decimal) -> tuple[Decimal, Decimal]:
    """(principal part, bonus part) of a spend, in proportion to the balances; the rounding is on principal."""
    bonus_part = money(amount * bonus / (principal + bonus))
    return amount - bonus_part, bonus_part


def _take_oldest_first(lots: list[WalletRecharge], field: str, amount: Decimal) -> dict[int, Decimal]:
    taken: dict[int, Decimal] = {}
    for lot in lots:
        if amount == 0:
            break
        n = min(amount, getattr(lot, field))
        if n > 0:
            setattr(lot, field, getattr(lot, field) - n)
            taken[lot.pk] = n
            amount -= n
    if amount:
        raise AssertionError("recharge lots hold less than the wallet balance")
    return taken


def _own_lots(lots: list[WalletRecharge], store_id: int, principal: Decimal, bonus: Decimal) -> list[WalletRecharge]:
    """Where cross-store wallet spending is not launched, a spend draws only on the store's own
    recharges; raises wallet_cross_store_not_launched (nothing changed) when they hold too little."""
    own = [lot for lot in lots if lot.store_id == store_id]
    if sum((lot.principal_remaining for lot in own), ZERO) < principal \
            or sum((lot.bonus_remaining for lot in own), ZERO) < bonus:
        raise NotLaunched(capability=Capability.WALLET_CROSS_STORE, store=Store.objects.get(pk=store_id),
                          field="amount")
    return own


@service
def wallet_spend(*, member: Member | int, amount: Decimal, reference: str, store_id: int | None = None
                 ) -> WalletEntry:
    """Pay ``amount`` from the wallet (principal and bonus in the documented ratio).  Returns the entry.

    Several spends may share a reference (e.g. one order paid in two steps);
    refunds are against their total; a reference another member spent under
    raises wallet_reference_conflict.  Locks the member; queues
    ``member.wallet_changed``.  Raises invalid_amount, invalid_reference,
    store_not_found, member_not_found, wallet_reference_conflict, wallet_insufficient,
    wallet_cross_store_not_launched (the money is in recharges other stores sold, and cross-store
    spending is not switched on at ``store_id``).
    """
    amount = _check_amount(amount)
    reference = _check_reference(reference)
    store_id = store_id_check(store_id)
    member = member_lock(member)
    if WalletEntry.objects.filter(reference=reference, kind=WalletEntryKind.SPEND) \
            .exclude(member_id__in=member_family_ids(member)).exists():
        raise WalletReferenceConflict(field="reference", params={"reference": reference})
    principal, bonus = member.wallet_principal, member.wallet_bonus
    if amount > principal + bonus:
        raise WalletInsufficient(field="amount", params={"balance": principal + bonus, "amount": amount})
    principal_part, bonus_part = _split(amount, principal, bonus)
    lots = list(WalletRecharge.objects.filter(member=member).exclude(principal_remaining=0, bonus_remaining=0)
                .order_by("id"))
    if store_id is not None and not capability_enabled(Capability.WALLET_CROSS_STORE, store=store_id):
        lots = _own_lots(lots, store_id, principal_part, bonus_part)
    from_principal = _take_oldest_first(lots, "principal_remaining", principal_part)
    from_bonus = _take_oldest_first(lots, "bonus_remaining", bonus_part)
    entry = _post(member, WalletEntryKind.SPEND, -principal_part, -bonus_part, reference=reference,
                  store_id=store_id)
    touched = [lot for lot in lots if lot.pk in from_principal or lot.pk in from_bonus]
    WalletSpendAllocation.objects.bulk_create([
        WalletSpendAllocation(entry=entry, recharge=lot, sold_store_id=lot.store_id, spend_store_id=store_id,
                              principal=from_principal.get(lot.pk, ZERO), bonus=from_bonus.get(lot.pk, ZERO))
        for lot in touched
    ])
    WalletRecharge.objects.bulk_update(touched, ["principal_remaining", "bonus_remaining"])
    _changed(member)
    return entry


@service
def wallet_refund_spend(*, member: Member | int, reference: str, amount: Decimal) -> WalletEntry:
    """Put ``amount`` of what ``reference`` spent back into the wallet, with the same principal/bonus split.

    Locks the member; queues ``member.wallet_changed``.  Raises invalid_amount,
    invalid_reference, member_not_found, wallet_refund_exceeded (more than the
    reference spent, net of earlier refunds).
    """
    amount = _check_amount(amount)
    reference = _check_reference(reference)
    member = member_lock(member)
    rows = (WalletSpendAllocation.objects
            .filter(entry__reference=reference, entry__kind__in=[WalletEntryKind.SPEND, WalletEntryKind.REFUND_SPEND],
                    recharge__member=member)
            .values("recharge_id", "spend_store_id").annotate(p=Sum("principal"), b=Sum("bonus"))
            .order_by("recharge_id", "spend_store_id"))
    buckets = [(row["recharge_id"], row["spend_store_id"], part, value)
               for row in rows for part, value in (("principal", row["p"]), ("bonus", row["b"])) if value > 0]
    spent = sum((value for *_, value in buckets), ZERO)
    if amount > spent:
        raise WalletRefundExceeded(field="amount", params={"spent": spent, "amount": amount})
    back: dict[tuple[int, int | None], dict[str, Decimal]] = defaultdict(lambda: {"principal": ZERO, "bonus": ZERO})
    for (recharge_id, store_id, part, _), share in zip(buckets, allocate(amount, [b[3] for b in buckets])):
        if share:
            back[(recharge_id, store_id)][part] += share
    lots = WalletRecharge.objects.in_bulk({recharge_id for recharge_id, _ in back})
    principal = sum((v["principal"] for v in back.values()), ZERO)
    bonus = sum((v["bonus"] for v in back.values()), ZERO)
    stores = {store_id for _, store_id in back}
    entry = _post(member, WalletEntryKind.REFUND_SPEND, principal, bonus, reference=reference,
                  store_id=stores.pop() if len(stores) == 1 else None)
    for (recharge_id, _), parts in back.items():
        lot = lots[recharge_id]
        lot.principal_remaining += parts["principal"]
        lot.bonus_remaining += parts["bonus"]
    WalletSpendAllocation.objects.bulk_create([
        WalletSpendAllocation(entry=entry, recharge_id=recharge_id, sold_store_id=lots[recharge_id].store_id,
                              spend_store_id=store_id, principal=-parts["principal"], bonus=-parts["bonus"])
        for (recharge_id, store_id), parts in back.items()
    ])
    WalletRecharge.objects.bulk_update(list(lots.values()), ["principal_remaining", "bonus_remaining"])
    _changed(member)
    return entry


# --- refund of a recharge --------------------------------------------------------------------------


@service
def wallet_recharge_refund(*, member: Member | int, recharge: WalletRecharge | int, actor=None) -> WalletEntry:
    """Refund a recharge: pay out its unspent principal, forfeit its unspent bonus.

    Returns the entry; the money to return to the customer is
    ``-entry.principal_delta``.  Locks the member; queues
    ``member.wallet_changed``.  Raises member_not_found, recharge_not_found,
    wallet_nothing_to_refund (no unspent principal left).
    """
    recharge_id = recharge.pk if isinstance(recharge, WalletRecharge) else recharge
    if isinstance(recharge_id, bool) or not isinstance(recharge_id, int):
        raise RechargeNotFound(field="recharge")
    member = member_lock(member)
    lot = WalletRecharge.objects.filter(pk=recharge_id, member=member).first()
    if lot is None:
        raise RechargeNotFound(field="recharge", params={"recharge_id": recharge_id})
    principal, bonus = lot.principal_remaining, lot.bonus_remaining
    if principal == 0:
        raise WalletNothingToRefund(field="recharge", params={"recharge_id": recharge_id})
    entry = _post(member, WalletEntryKind.RECHARGE_REFUND, -principal, -bonus, recharge=lot,
                  reference=lot.reference, store_id=lot.store_id, actor=_actor(actor))
    WalletSpendAllocation.objects.create(entry=entry, recharge=lot, sold_store_id=lot.store_id, spend_store_id=None,
                                         principal=principal, bonus=bonus)
    WalletRecharge.objects.filter(pk=lot.pk).update(principal_remaining=0, bonus_remaining=0,
                                                    refunded_at=timezone.now())
    _changed(member)
    return entry


# --- merge -----------------------------------------------------------------------------------------


@merge_hook("wallet")
def wallet_merge(source: Member, target: Member) -> dict:
    """Move the duplicate's recharge lots and balances to the surviving member (both rows are locked)."""
    recharges = WalletRecharge.objects.filter(member=source).update(member=target)
    principal, bonus = source.wallet_principal, source.wallet_bonus
    if principal or bonus:
        reference = f"merge:{source.pk}"
        _post(source, WalletEntryKind.MERGE_OUT, -principal, -bonus, reference=reference)
        _post(target, WalletEntryKind.MERGE_IN, principal, bonus, reference=reference)
        _changed(source)
        _changed(target)
    return {"recharges": recharges, "principal": principal, "bonus": bonus}
