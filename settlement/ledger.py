"""The party ledger: what each party is owed, posted when a day settles, and payouts.

Every amount moves as a journal of postings that sum to zero:

* the revenue split: each party's share of the day (``PartyShare``) against clearing;
* coupon cost borne by e-commerce on a store's orders: the store is made whole by e-commerce;
* promotion cost borne by head office, e-commerce or the suppliers on a party's orders (a store's, or
  e-commerce's warehouse orders): that party is made whole by the bearer (a store's own promotions
  stay with it);
* wallet money spent at one store from a recharge another sold: the selling store (or, for
  recharges sold online, e-commerce) owes the spending store;
* guide commission released within the day: owed to the guide, against clearing;
* money a store collected at its counter (``sql.COLLECTED_SQL``): it holds that money for HQ, so
  its balance goes down by it and clearing up; a store's balance is what it is owed *net* of
  what it already holds, and may be negative (the store owes HQ);
* a payout: the party's balance down, clearing up.

A party's ``balance`` equals the sum of its postings (``audit_ledgers`` checks it).  Days post
inside ``_day_close``'s transaction, once (the day is closed there, and a unique key backs it).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connection
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import CommissionEntry
from o2o.db import service
from o2o.errors import Conflict, InvalidInput
from o2o.ids import number_next
from o2o.money import ZERO, money
from settlement import sql
from settlement.models import (
    LedgerPosting,
    Party,
    PartyShare,
    Payout,
    SettlementDay,
    SettlementStatement,
    WalletTransfer,
)

Account = LedgerPosting.Account


class PayoutExceedsBalance(Conflict):
    code = "payout_exceeds_balance"
    default_message = _("The payout is more than the party's released balance.")


class PayoutDecided(Conflict):
    code = "payout_already_decided"
    default_message = _("This payout was already approved or rejected.")


def party_of(*, kind: str, store_id: int | None = None, guide_id: int | None = None) -> Party:
    """The party, created on first use (idempotent under concurrency through its unique keys)."""
    lookup = {"kind": kind, "store_id": store_id, "guide_id": guide_id}
    found = Party.objects.filter(**lookup).first()
    if found is not None:
        return found
    Party.objects.bulk_create([Party(**lookup)], ignore_conflicts=True)
    return Party.objects.get(**lookup)


def clearing() -> Party:
    return party_of(kind=Party.Kind.CLEARING)


def ecommerce() -> Party:
    return party_of(kind=Party.Kind.ECOMMERCE)


def store_party(store_id: int | None) -> Party:
    return ecommerce() if store_id is None else party_of(kind=Party.Kind.STORE, store_id=store_id)


def _journal(*, day: SettlementDay | None, account: str, amounts: dict[int, Decimal], reference: str = "") -> uuid.UUID:
    """Post one balanced journal: {party id: amount}; zero amounts are left out.  Balances move with F()."""
    assert sum(amounts.values(), ZERO) == ZERO, amounts
    journal = uuid.uuid4()
    rows = [LedgerPosting(journal=journal, day=day, party_id=party_id, account=account, amount=amount,
                          reference=reference) for party_id, amount in sorted(amounts.items()) if amount]
    LedgerPosting.objects.bulk_create(rows)
    for row in rows:  # in party id order: two journals never lock the same parties the other way round
        Party.objects.filter(pk=row.party_id).update(balance=F("balance") + row.amount)
    return journal


def _balanced(shares: dict[int, Decimal], against: Party) -> dict[int, Decimal]:
    out = defaultdict(lambda: ZERO, {k: v for k, v in shares.items() if v})
    out[against.pk] -= sum(shares.values(), ZERO)
    return dict(out)


def day_post(settled: SettlementDay) -> None:
    """Post a settled day to the party ledger (called inside ``_day_close``'s transaction)."""
    shares: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for store_id, total in PartyShare.objects.filter(store_settlement__day=settled).values_list("store_id", "total"):
        shares[store_party(store_id).pk] += total
    _journal(day=settled, account=Account.SPLIT, amounts=_balanced(shares, clearing()))

    coupon: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for store_id, borne in SettlementStatement.objects.filter(store_settlement__day=settled, store__isnull=False) \
            .values("store_id").annotate(x=Sum("coupon_cost_ecommerce")).values_list("store_id", "x"):
        coupon[store_party(store_id).pk] += borne or ZERO
    _journal(day=settled, account=Account.COUPON, amounts=_balanced(coupon, ecommerce()))

    _journal(day=settled, account=Account.PROMOTION, amounts=_promotion_shares(settled))

    wallet: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for spent_at, sold_by, principal, bonus in WalletTransfer.objects.filter(store_settlement__day=settled) \
            .values_list("store_settlement__store_id", "sold_store_id", "principal", "bonus"):
        wallet[store_party(spent_at).pk] += principal + bonus
        wallet[store_party(sold_by).pk] -= principal + bonus
    _journal(day=settled, account=Account.WALLET, amounts=dict(wallet))

    commission: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for guide_id, amount in CommissionEntry.objects.filter(
            kind=CommissionEntry.Kind.RELEASE, accrual__frozen_until__gte=settled.window_start,
            accrual__frozen_until__lt=settled.window_end).values("guide_id").annotate(x=Sum("released_delta")) \
            .values_list("guide_id", "x"):
        commission[party_of(kind=Party.Kind.GUIDE, guide_id=guide_id).pk] += amount or ZERO
    _journal(day=settled, account=Account.COMMISSION, amounts=_balanced(commission, clearing()))

    collected = {store_party(store_id).pk: -amount for store_id, amount in day_collections(settled.pk)}
    _journal(day=settled, account=Account.COLLECTION, amounts=_balanced(collected, clearing()))


def day_collections(day_id: int) -> list[tuple[int, Decimal]]:
    """[(store id, money collected at its counter)] of a settled day, from its tender lines."""
    with connection.cursor() as cur:
        cur.execute(sql.COLLECTED_SQL, {"day": day_id})
        return [(store_id, amount) for store_id, amount in cur.fetchall() if amount]


def _promotion_shares(settled: SettlementDay) -> dict[int, Decimal]:
    """{party id: amount}: each party owed the promotion cost others bear on its orders, the bearers
    owing it (the statements' promotion cost by bearer, net of returns and cancellations).  A bearer's
    party is created only when it owes something."""
    bearers = {"promotion_cost_hq": lambda: party_of(kind=Party.Kind.HQ), "promotion_cost_ecommerce": ecommerce,
               "promotion_cost_supplier": lambda: party_of(kind=Party.Kind.SUPPLIER)}
    owed: dict[tuple[int | None, str], Decimal] = defaultdict(lambda: ZERO)
    for row in (SettlementStatement.objects.filter(store_settlement__day=settled).values("store_id")
                .annotate(**{name: Sum(name) for name in bearers}).order_by("store_id")):
        for name in bearers:
            # e-commerce's own promotions on its warehouse orders stay with it
            if row[name] and not (row["store_id"] is None and name == "promotion_cost_ecommerce"):
                owed[(row["store_id"], name)] += row[name]
    amounts: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for (store_id, name), amount in sorted(owed.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1])):
        if amount:
            amounts[store_party(store_id).pk] += amount
            amounts[bearers[name]().pk] -= amount
    return dict(amounts)


# --- payouts ------------------------------------------------------------------------------------


@service
def payout_request(*, party: Party, amount: Decimal, actor=None, note: str = "") -> Payout:
    """Record a payout request.  Nothing moves until it is approved.  Raises InvalidInput."""
    amount = money(amount)
    if amount <= 0:
        raise InvalidInput(_("A payout must be more than zero."), code="invalid_amount", field="amount")
    if party.kind == Party.Kind.CLEARING:
        raise InvalidInput(_("Clearing is not paid out."), code="invalid_party", field="party")
    return Payout.objects.create(number=number_next("PO"), party=party, amount=amount, note=note,
                                 requested_by=actor if getattr(actor, "is_authenticated", False) else None)


@service
def payout_approve(*, payout: Payout | int, actor=None) -> Payout:
    """Approve and pay a requested payout: the party's balance goes down by a conditional UPDATE
    (``balance >= amount``), so concurrent approvals never pay more than was released.

    Locks: the payout row, then the party row (by the UPDATE).  Raises PayoutDecided,
    PayoutExceedsBalance (nothing changes)."""
    payout = Payout.objects.select_for_update().get(pk=getattr(payout, "pk", payout))
    if payout.status != Payout.Status.REQUESTED:
        raise PayoutDecided(params={"status": payout.status})
    counter = clearing()
    # the two balances this moves, locked in id order like every journal does
    list(Party.objects.filter(pk__in=[payout.party_id, counter.pk]).order_by("pk").select_for_update())
    taken = Party.objects.filter(pk=payout.party_id, balance__gte=payout.amount) \
        .update(balance=F("balance") - payout.amount)
    if not taken:
        raise PayoutExceedsBalance(params={"amount": str(payout.amount)})
    journal = uuid.uuid4()
    LedgerPosting.objects.bulk_create([
        LedgerPosting(journal=journal, party_id=payout.party_id, account=Account.PAYOUT, amount=-payout.amount,
                      reference=payout.number),
        LedgerPosting(journal=journal, party=counter, account=Account.PAYOUT, amount=payout.amount,
                      reference=payout.number)])
    Party.objects.filter(pk=counter.pk).update(balance=F("balance") + payout.amount)
    payout.status, payout.journal, payout.decided_at = Payout.Status.APPROVED, journal, timezone.now()
    payout.decided_by = actor if getattr(actor, "is_authenticated", False) else None
    payout.save(update_fields=["status", "journal", "decided_at", "decided_by"])
    return payout


# --- statements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    party: Party
    month: date  # its first day
    opening: Decimal
    by_account: dict[str, Decimal]
    closing: Decimal


def party_statement(*, party: Party, month: date) -> Statement:
    """A party's month: the balance at its start, the postings by account (by business day; payouts
    by date), and the balance at its end."""
    start = month.replace(day=1)
    end = (start.replace(day=28) + (date.resolution * 4)).replace(day=1)
    postings = LedgerPosting.objects.filter(party=party)

    def in_month(qs, before=False):
        day_q = {"day__day__lt": start} if before else {"day__day__gte": start, "day__day__lt": end}
        paid_q = {"created_at__date__lt": start} if before else {"created_at__date__gte": start,
                                                                  "created_at__date__lt": end}
        return qs.filter(day__isnull=False, **day_q), qs.filter(day__isnull=True, **paid_q)

    opening = sum((q.aggregate(s=Sum("amount"))["s"] or ZERO for q in in_month(postings, before=True)), ZERO)
    by_account: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for q in in_month(postings):
        for account, amount in q.values("account").annotate(s=Sum("amount")).values_list("account", "s"):
            by_account[account] += amount
    closing = opening + sum(by_account.values(), ZERO)
    return Statement(party=party, month=start, opening=opening, by_account=dict(by_account), closing=closing)
