"""Ledger properties under random sequences of operations, and under real concurrency.

The state machines keep a small model of what the member may legitimately hold
and check after every step that the cached balances equal the ledgers, the
lots agree with their consumption/allocations, nothing is negative beyond the
recorded points debt, and nobody ends up with points or money out of thin air.
"""

from __future__ import annotations

import math
import functools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from members import audits
from members.models import Member, PointsLot, PointsRule, WalletRecharge
from members.selectors import points_redeemed_for_order, wallet_spent_for_reference
from members.services.members import member_merge, member_register
from members.services.points import (
    points_earn,
    points_expire,
    points_redeem,
    points_restore_redeemed,
    points_reverse_earned,
    points_unfreeze,
)
from members.services.wallet import wallet_recharge, wallet_recharge_refund, wallet_refund_spend, wallet_spend
from members.tests.factories import MemberFactory
from o2o.errors import DomainError
from o2o.money import money
from tests.concurrency import run_at_once

D = Decimal
MACHINE_SETTINGS = settings(max_examples=30, stateful_step_count=20, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

POINTS_AUDITS = [audits.points_balances_match_entries, audits.points_lots_match_consumption,
                 audits.points_balances_match_lots, audits.points_entries_match_consumption,
                 audits.points_never_negative]
WALLET_AUDITS = [audits.wallet_balances_match_entries, audits.wallet_recharges_match_allocations,
                 audits.wallet_balances_match_recharges, audits.wallet_entries_match_allocations,
                 audits.wallet_never_negative]


def audits_clean(checks) -> None:
    for check in checks:
        assert list(check()) == [], check.__name__


class LedgerMachine(RuleBasedStateMachine):
    """Two members (the second may absorb the first by a merge), inside a savepoint rolled back after."""

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.members = [MemberFactory(), MemberFactory()]
        self.merged = False
        self.seq = 0

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def member(self, index: int) -> Member:
        return self.members[1] if self.merged else self.members[index]

    def next_number(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq}"

    def refused(self, call, code: str, snapshot) -> None:
        """The call fails with ``code`` and changes nothing."""
        before = snapshot()
        with pytest.raises(DomainError) as exc:
            call()
        assert exc.value.code == code
        assert snapshot() == before

    @rule()
    def merge(self):
        if self.merged:
            self.refused(lambda: member_merge(source=self.members[0], target=self.members[1]), "member_merged",
                         self.totals)
            return
        member_merge(source=self.members[0], target=self.members[1])
        self.merged = True

    def totals(self):
        raise NotImplementedError


class PointsMachine(LedgerMachine):
    def __init__(self):
        super().__init__()
        PointsRule.objects.all().delete()  # the default rate: 1 point per yuan, no tier multiplier
        self.orders: dict[str, dict] = {}        # earn order → member index, earned, paid, returned
        self.redeemed: dict[str, int] = {}       # redeem order → net points redeemed
        self.redeem_owner: dict[str, int] = {}   # redeem order → member index
        self.expired_any = False

    def totals(self):
        rows = Member.objects.filter(pk__in=[m.pk for m in self.members]).order_by("pk") \
            .values_list("points_available", "points_frozen", "points_debt")
        return list(rows), PointsLot.objects.count()

    @rule(who=st.integers(0, 1), paid=st.integers(0, 400), cents=st.integers(0, 99), frozen=st.booleans())
    def earn(self, who, paid, cents, frozen):
        number = self.next_number("E")
        amount = D(paid) + D(cents) / 100
        lot = points_earn(member=self.member(who), order_number=number, channel="web",
                          lines=[(None, 1, amount)], frozen_until=timezone.now() + timedelta(days=7) if frozen else None)
        assert lot.amount == math.floor(amount)
        self.orders[number] = {"who": who, "earned": lot.amount, "paid": amount, "returned": D(0)}

    @rule()
    def unfreeze(self):
        points_unfreeze(now=timezone.now() + timedelta(days=8))

    @rule(who=st.integers(0, 1), data=st.data())
    def redeem(self, who, data):
        member = self.member(who)
        member.refresh_from_db()
        points = data.draw(st.integers(1, member.points_available + 30))
        existing = sorted(self.redeemed)
        number = data.draw(st.sampled_from(existing)) if existing and data.draw(st.booleans()) \
            else self.next_number("R")
        call = lambda: points_redeem(member=member, points=points, order_number=number)  # noqa: E731
        if not self.merged and self.redeem_owner.get(number, who) != who:
            self.refused(call, "points_order_conflict", self.totals)  # another member's order
            return
        if points > member.points_available:
            self.refused(call, "points_insufficient", self.totals)
            return
        call()
        self.redeemed[number] = self.redeemed.get(number, 0) + points
        self.redeem_owner.setdefault(number, who)

    @precondition(lambda self: self.redeemed)
    @rule(data=st.data())
    def restore(self, data):
        number = data.draw(st.sampled_from(sorted(self.redeemed)))
        open_points = self.redeemed[number]
        points = data.draw(st.integers(1, open_points + 20))
        member = self.member(self.redeem_owner[number])
        call = lambda: points_restore_redeemed(member=member, order_number=number, points=points)  # noqa: E731
        if points > open_points:
            self.refused(call, "points_restore_exceeded", self.totals)
            return
        call()
        self.redeemed[number] -= points
        assert points_redeemed_for_order(number) == self.redeemed[number]

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def reverse(self, data):
        number = data.draw(st.sampled_from(sorted(self.orders)))
        order = self.orders[number]
        left = order["paid"] - order["returned"]
        member = self.member(order["who"])
        if left <= 0:
            if order["earned"]:
                self.refused(lambda: points_reverse_earned(member=member, order_number=number, amount=D("0.01")),
                             "points_return_exceeded", self.totals)
            return
        whole = data.draw(st.booleans())
        amount = left if whole else money(left * D(data.draw(st.integers(1, 99))) / 100) or left
        points_reverse_earned(member=member, order_number=number, amount=amount)
        order["returned"] += amount

    def spent_orders(self) -> list[str]:
        return sorted(PointsLot.objects.filter(kind="earn", remaining__lt=F("amount") - F("reversed_points"),
                                               order_number__in=list(self.orders))
                      .values_list("order_number", flat=True))

    @precondition(lambda self: self.spent_orders())
    @rule(data=st.data())
    def return_an_order_whose_points_were_spent(self, data):
        """The interesting case for the DEBT rule: the order's points are (partly) gone already."""
        number = data.draw(st.sampled_from(self.spent_orders()))
        order = self.orders[number]
        points_reverse_earned(member=self.member(order["who"]), order_number=number,
                              amount=order["paid"] - order["returned"])
        order["returned"] = order["paid"]

    @precondition(lambda self: PointsLot.objects.filter(status="available", remaining__gt=0).exists())
    @rule(data=st.data(), now=st.booleans())
    def expire(self, data, now):
        if not now:  # half of the time only what is already due (restored into expired lots) lapses
            if points_expire():
                self.expired_any = True
            return
        lots = list(PointsLot.objects.filter(status="available", remaining__gt=0).order_by("id")
                    .values_list("id", flat=True))
        lot_id = data.draw(st.sampled_from(lots))
        PointsLot.objects.filter(pk=lot_id).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert points_expire() >= 1
        self.expired_any = True

    @invariant()
    def ledgers_agree(self):
        audits_clean(POINTS_AUDITS)

    @invariant()
    def no_free_points(self):
        """What the members hold (less debt) is at most what they legitimately earned less what they spent;
        without expiry it is exactly that."""
        legit = 0
        for order in self.orders.values():
            reversed_points = order["earned"] if order["returned"] == order["paid"] else (
                math.ceil(order["earned"] * order["returned"] / order["paid"]) if order["paid"] else 0)
            legit += order["earned"] - reversed_points
        legit -= sum(self.redeemed.values())
        held = sum(a + f - d for (a, f, d) in self.totals()[0])
        assert held <= legit
        if not self.expired_any:
            assert held == legit


class WalletMachine(LedgerMachine):
    def __init__(self):
        super().__init__()
        self.money_in = D("0.00")      # principal + bonus credited by recharges
        self.money_out = D("0.00")     # spent (net of refunds) and paid out or forfeited by recharge refunds
        self.spent: dict[str, D] = {}  # reference → net spent
        self.spender_of: dict[str, int] = {}  # reference → member index

    def totals(self):
        rows = Member.objects.filter(pk__in=[m.pk for m in self.members]).order_by("pk") \
            .values_list("wallet_principal", "wallet_bonus")
        return list(rows), sorted(WalletRecharge.objects.values_list("id", "principal_remaining", "bonus_remaining"))

    @rule(who=st.integers(0, 1), principal=st.integers(1, 100000), bonus=st.integers(0, 20000))
    def recharge(self, who, principal, bonus):
        principal, bonus = D(principal) / 100, D(bonus) / 100
        wallet_recharge(member=self.member(who), principal=principal, bonus=bonus,
                        reference=self.next_number("PAY"))
        self.money_in += principal + bonus

    @rule(who=st.integers(0, 1), cents=st.integers(1, 150000), data=st.data())
    def spend(self, who, cents, data):
        member = self.member(who)
        member.refresh_from_db()
        amount = D(cents) / 100
        existing = sorted(self.spent)
        reference = data.draw(st.sampled_from(existing)) if existing and data.draw(st.booleans()) \
            else self.next_number("S")
        principal, bonus = member.wallet_principal, member.wallet_bonus
        call = lambda: wallet_spend(member=member, amount=amount, reference=reference)  # noqa: E731
        if not self.merged and self.spender_of.get(reference, who) != who:
            self.refused(call, "wallet_reference_conflict", self.totals)  # another member's payment
            return
        if amount > principal + bonus:
            self.refused(call, "wallet_insufficient", self.totals)
            return
        entry = call()
        self.spender_of.setdefault(reference, who)
        # The documented ratio: bonus in proportion to the balances, to the fen; the rest principal.
        assert -entry.bonus_delta == money(amount * bonus / (principal + bonus))
        assert -entry.principal_delta - entry.bonus_delta == amount
        self.spent[reference] = self.spent.get(reference, D(0)) + amount
        self.money_out += amount

    @precondition(lambda self: any(self.spent.values()))
    @rule(data=st.data())
    def refund_spend(self, data):
        reference = data.draw(st.sampled_from(sorted(r for r, v in self.spent.items() if v > 0)))
        left = self.spent[reference]
        cents = data.draw(st.integers(1, int(left * 100) + 500))
        amount = D(cents) / 100
        member = self.member(self.spender_of[reference])
        before = wallet_spent_for_reference(member=member, reference=reference)
        if amount > left:
            self.refused(lambda: wallet_refund_spend(member=member, reference=reference, amount=amount),
                         "wallet_refund_exceeded", self.totals)
            return
        entry = wallet_refund_spend(member=member, reference=reference, amount=amount)
        assert entry.principal_delta + entry.bonus_delta == amount
        assert entry.principal_delta <= before[0] and entry.bonus_delta <= before[1]
        self.spent[reference] -= amount
        self.money_out -= amount
        assert sum(wallet_spent_for_reference(member=member, reference=reference)) == self.spent[reference]

    @precondition(lambda self: WalletRecharge.objects.exists())
    @rule(data=st.data())
    def recharge_refund(self, data):
        recharge = data.draw(st.sampled_from(list(WalletRecharge.objects.order_by("id"))))
        member = self.members[1] if self.merged else (
            self.members[0] if recharge.member_id == self.members[0].pk else self.members[1])
        if recharge.principal_remaining == 0:
            self.refused(lambda: wallet_recharge_refund(member=member, recharge=recharge),
                         "wallet_nothing_to_refund", self.totals)
            return
        entry = wallet_recharge_refund(member=member, recharge=recharge)
        # Only the unspent principal is paid out; the unspent bonus is forfeited.
        assert (entry.principal_delta, entry.bonus_delta) == (-recharge.principal_remaining,
                                                              -recharge.bonus_remaining)
        assert -entry.principal_delta <= recharge.principal
        self.money_out += recharge.principal_remaining + recharge.bonus_remaining

    @invariant()
    def ledgers_agree(self):
        audits_clean(WALLET_AUDITS)

    @invariant()
    def money_is_conserved(self):
        held = sum(p + b for p, b in self.totals()[0])
        assert held == self.money_in - self.money_out


@pytest.mark.django_db
def test_points_ledger_under_random_sequences():
    run_state_machine_as_test(PointsMachine, settings=MACHINE_SETTINGS)


@pytest.mark.django_db
def test_wallet_ledger_under_random_sequences():
    run_state_machine_as_test(WalletMachine, settings=MACHINE_SETTINGS)


# --- concurrency ---------------------------------------------------------------------------------


def run_threads(count: int, work) -> tuple[list, list[BaseException]]:
    """Run ``work(i)`` in ``count`` threads released together; returns (results, domain errors)."""
    outcomes = run_at_once([functools.partial(work, i) for i in range(count)], timeout=60)
    unexpected = [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, DomainError)]
    assert not unexpected, unexpected
    return ([o for o in outcomes if not isinstance(o, Exception)],
            [o for o in outcomes if isinstance(o, DomainError)])


@pytest.mark.django_db(transaction=True)
def test_the_same_points_redeemed_by_concurrent_orders_are_spent_once():
    member = MemberFactory()
    points_earn(member=member, order_number="E1", channel="pos", lines=[(None, 1, D("600.00"))], frozen_until=None)
    points_earn(member=member, order_number="E2", channel="pos", lines=[(None, 1, D("400.00"))], frozen_until=None)

    results, errors = run_threads(10, lambda i: points_redeem(member=member.pk, points=150, order_number=f"R{i}"))

    assert len(results) == 6  # 6 × 150 = 900 of the 1000 points
    assert len(errors) == 4 and {e.code for e in errors} == {"points_insufficient"}
    member.refresh_from_db()
    assert (member.points_available, member.points_debt) == (100, 0)
    call_command("audit_ledgers", stdout=open("/dev/null", "w"))


@pytest.mark.django_db(transaction=True)
def test_the_same_wallet_balance_spent_concurrently_is_spent_once(store_a, store_b):
    member = MemberFactory()
    wallet_recharge(member=member, principal=D("1000.00"), bonus=D("100.00"), reference="PAY-1", store_id=store_a.pk)

    results, errors = run_threads(
        10, lambda i: wallet_spend(member=member.pk, amount=D("150.00"), reference=f"S{i}", store_id=store_b.pk))

    assert len(results) == 7  # 7 × 150 = 1050 of 1100
    assert len(errors) == 3 and {e.code for e in errors} == {"wallet_insufficient"}
    member.refresh_from_db()
    assert member.wallet_principal + member.wallet_bonus == D("50.00")
    call_command("audit_ledgers", stdout=open("/dev/null", "w"))


@pytest.mark.django_db(transaction=True)
def test_concurrent_returns_redemptions_and_merges_keep_the_ledgers_consistent():
    """Reversals, redemptions, unfreezes and a merge racing on two members leave no inconsistency."""
    a, b = MemberFactory(), MemberFactory()
    for i in range(4):
        points_earn(member=a, order_number=f"A{i}", channel="web", lines=[(None, 1, D("100.00"))], frozen_until=None)
        points_earn(member=b, order_number=f"B{i}", channel="web", lines=[(None, 1, D("100.00"))],
                    frozen_until=timezone.now() + timedelta(days=7))

    def work(i: int):
        if i == 0:
            return member_merge(source=a.pk, target=b.pk)
        if i == 1:
            return points_unfreeze(now=timezone.now() + timedelta(days=8))
        if i % 2:
            return points_redeem(member=a.pk, points=120, order_number=f"R{i}")
        return points_reverse_earned(member=a.pk, order_number=f"A{i // 2}", fraction=D("1"))

    run_threads(9, work)

    b.refresh_from_db()
    assert Member.objects.get(pk=a.pk).merged_into_id == b.pk
    redeemed = sum(points_redeemed_for_order(f"R{i}") for i in range(9))
    reversed_points = sum(PointsLot.objects.filter(kind="earn").values_list("reversed_points", flat=True))
    # Nothing expired: what the survivor holds is exactly what was earned, less reversals and redemptions.
    assert b.points_available + b.points_frozen - b.points_debt == 800 - reversed_points - redeemed
    call_command("audit_ledgers", stdout=open("/dev/null", "w"))


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_one_phone_make_one_member():
    results, errors = run_threads(8, lambda i: member_register(phone="13800138000", channel="pos").pk)

    assert not errors
    assert len(set(results)) == 1
    assert Member.objects.filter(phone="+8613800138000").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_wallet_refunds_of_one_spend_never_refund_more_than_was_spent():
    member = MemberFactory()
    wallet_recharge(member=member, principal=D("500.00"), bonus=D("50.00"), reference="PAY-1")
    wallet_spend(member=member, amount=D("300.00"), reference="S1")

    results, errors = run_threads(8, lambda i: wallet_refund_spend(member=member.pk, reference="S1",
                                                                    amount=D("100.00")))

    assert len(results) == 3 and {e.code for e in errors} == {"wallet_refund_exceeded"}
    assert wallet_spent_for_reference(member=member, reference="S1") == (D("0.00"), D("0.00"))
    member.refresh_from_db()
    assert member.wallet_principal + member.wallet_bonus == D("550.00")
    call_command("audit_ledgers", stdout=open("/dev/null", "w"))

