"""Wallet: recharge with bonus, spend in the documented ratio, refunds, cross-store provenance."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members.models import Member, WalletEntry, WalletRecharge, WalletSpendAllocation
from members.selectors import wallet_cross_store_allocations, wallet_spent_for_reference
from members.services.wallet import (
    wallet_recharge,
    wallet_recharge_refund,
    wallet_refund_spend,
    wallet_spend,
)
from members.tests.factories import MemberFactory, RechargePackageFactory
from o2o.db import service
from o2o.models import OutboxMessage

pytestmark = pytest.mark.django_db

D = Decimal


def snapshot(member: Member) -> tuple:
    member.refresh_from_db()
    return (member.wallet_principal, member.wallet_bonus, WalletEntry.objects.count(),
            WalletRecharge.objects.count(), WalletSpendAllocation.objects.count(),
            sorted(WalletRecharge.objects.values_list("id", "principal_remaining", "bonus_remaining")),
            OutboxMessage.objects.filter(topic="member.wallet_changed").count())


def wallet(member: Member) -> tuple[Decimal, Decimal]:
    member.refresh_from_db()
    return member.wallet_principal, member.wallet_bonus


def audit_clean():
    call_command("audit_ledgers", stdout=open("/dev/null", "w"))


@pytest.fixture
def member(db):
    return MemberFactory()


@pytest.fixture
def package(db):
    return RechargePackageFactory(pay_amount=D("1000.00"), bonus_amount=D("100.00"))


# --- recharge ------------------------------------------------------------------------------------


def test_recharge_with_a_package_keeps_principal_and_bonus_apart(member, package, store_a, hq_user):
    recharge = wallet_recharge(member=member, package=package, store_id=store_a.pk, reference="PAY-1",
                               actor=hq_user)

    assert (recharge.principal, recharge.bonus, recharge.store_id) == (D("1000.00"), D("100.00"), store_a.pk)
    assert (recharge.principal_remaining, recharge.bonus_remaining) == (D("1000.00"), D("100.00"))
    assert wallet(member) == (D("1000.00"), D("100.00"))
    entry = WalletEntry.objects.get()
    assert (entry.kind, entry.principal_delta, entry.bonus_delta, entry.actor_id) == (
        "recharge", D("1000.00"), D("100.00"), hq_user.pk)
    message = OutboxMessage.objects.get(topic="member.wallet_changed")
    assert message.payload == {"member_id": member.pk, "principal": "1000.00", "bonus": "100.00",
                               "balance": "1100.00"}
    audit_clean()


def test_recharge_with_explicit_amounts(member):
    wallet_recharge(member=member, principal=D("200.00"), bonus=D("0.00"), reference="PAY-1")
    wallet_recharge(member=member, principal=D("50.00"), reference="PAY-2")

    assert wallet(member) == (D("250.00"), D("0.00"))


def test_recharge_is_idempotent_per_reference(member, package):
    first = wallet_recharge(member=member, package=package, reference="PAY-1")
    again = wallet_recharge(member=member, package=package, reference="PAY-1")

    assert again.pk == first.pk
    assert wallet(member) == (D("1000.00"), D("100.00"))
    other = MemberFactory()
    before = snapshot(other)
    for call in ({"member": other, "package": package}, {"member": member, "principal": D("5.00")}):
        with pytest.raises(Exception) as exc:
            wallet_recharge(reference="PAY-1", **call)
        assert exc.value.code == "wallet_reference_conflict"
    assert snapshot(other) == before


@pytest.mark.parametrize("kwargs,code", [
    ({"principal": D("0.00")}, "invalid_amount"),
    ({"principal": D("-5.00")}, "invalid_amount"),
    ({"principal": 10.5}, "invalid_amount"),
    ({"principal": D("1.005")}, "invalid_amount"),
    ({"principal": D("10.00"), "bonus": D("-1.00")}, "invalid_amount"),
    ({"principal": None}, "invalid_amount"),
    ({"reference": ""}, "invalid_reference"),
    ({"store_id": 999999}, "store_not_found"),
    ({"member": 999999}, "member_not_found"),
])
def test_recharge_refuses_bad_input_and_changes_nothing(member, kwargs, code):
    before = snapshot(member)

    with pytest.raises(Exception) as exc:
        wallet_recharge(**{"member": member, "principal": D("10.00"), "reference": "PAY-1", **kwargs})
    assert exc.value.code == code
    assert snapshot(member) == before


def test_recharge_refuses_an_inactive_package_or_package_with_amounts(member, package):
    inactive = RechargePackageFactory(is_active=False)
    before = snapshot(member)

    with pytest.raises(Exception) as exc:
        wallet_recharge(member=member, package=inactive, reference="PAY-1")
    assert exc.value.code == "recharge_package_inactive"
    with pytest.raises(Exception) as exc:
        wallet_recharge(member=member, package=package, principal=D("1.00"), reference="PAY-1")
    assert exc.value.code == "invalid_amount"
    assert snapshot(member) == before


# --- spend ---------------------------------------------------------------------------------------


def test_spend_takes_principal_and_bonus_in_proportion_to_the_balances(member, package):
    wallet_recharge(member=member, package=package, reference="PAY-1")  # 1000 + 100

    entry = wallet_spend(member=member, amount=D("110.00"), reference="SO1")
    assert (entry.principal_delta, entry.bonus_delta) == (D("-100.00"), D("-10.00"))

    # 900 : 90 → bonus part of 0.05 is 0.0045…, rounded to the fen: 0.00; the remainder is principal.
    small = wallet_spend(member=member, amount=D("0.05"), reference="SO2")
    assert (small.principal_delta, small.bonus_delta) == (D("-0.05"), D("0.00"))
    # 899.95 : 90 → bonus part of 0.06 is 0.00545… → 0.01.
    rounded = wallet_spend(member=member, amount=D("0.06"), reference="SO3")
    assert (rounded.principal_delta, rounded.bonus_delta) == (D("-0.05"), D("-0.01"))
    audit_clean()


def test_spending_everything_takes_all_of_both(member, package):
    wallet_recharge(member=member, package=package, reference="PAY-1")
    wallet_recharge(member=member, principal=D("33.33"), reference="PAY-2")

    wallet_spend(member=member, amount=D("1133.33"), reference="SO1")
    assert wallet(member) == (D("0.00"), D("0.00"))
    audit_clean()


def test_spend_uses_oldest_recharges_first_and_records_cross_store_provenance(member, store_a, store_b):
    first = wallet_recharge(member=member, principal=D("100.00"), bonus=D("10.00"), store_id=store_a.pk,
                            reference="PAY-1")
    second = wallet_recharge(member=member, principal=D("100.00"), bonus=D("10.00"), store_id=store_b.pk,
                             reference="PAY-2")

    entry = wallet_spend(member=member, amount=D("165.00"), reference="SO1", store_id=store_b.pk)

    assert (entry.principal_delta, entry.bonus_delta) == (D("-150.00"), D("-15.00"))
    rows = {a.recharge_id: a for a in entry.allocations.all()}
    assert (rows[first.pk].principal, rows[first.pk].bonus) == (D("100.00"), D("10.00"))
    assert (rows[second.pk].principal, rows[second.pk].bonus) == (D("50.00"), D("5.00"))
    assert (rows[first.pk].sold_store_id, rows[first.pk].spend_store_id) == (store_a.pk, store_b.pk)
    assert rows[first.pk].is_cross_store and not rows[second.pk].is_cross_store
    now = timezone.now()
    cross = list(wallet_cross_store_allocations(start=now - timedelta(hours=1), end=now + timedelta(hours=1)))
    assert [a.recharge_id for a in cross] == [first.pk]
    audit_clean()


def test_spend_and_refund_cost_the_same_queries_whatever_the_number_of_recharges():
    def queries_across(recharges: int) -> tuple[int, int]:
        who = MemberFactory()
        for i in range(recharges):
            wallet_recharge(member=who, principal=D("10.00"), bonus=D("1.00"), reference=f"{who.pk}-PAY{i}")
        with CaptureQueriesContext(connection) as spend:
            wallet_spend(member=who, amount=D(recharges * 11), reference=f"{who.pk}-S")
        with CaptureQueriesContext(connection) as refund:
            wallet_refund_spend(member=who, amount=D(recharges * 11), reference=f"{who.pk}-S")
        return len(spend.captured_queries), len(refund.captured_queries)

    assert queries_across(2) == queries_across(8)


@pytest.mark.parametrize("kwargs,code", [
    ({"amount": D("110.01")}, "wallet_insufficient"),
    ({"amount": D("0.00")}, "invalid_amount"),
    ({"amount": D("-1.00")}, "invalid_amount"),
    ({"amount": 1.5}, "invalid_amount"),
    ({"amount": "5.00"}, "invalid_amount"),
    ({"amount": D("1.234")}, "invalid_amount"),
    ({"reference": ""}, "invalid_reference"),
    ({"store_id": 999999}, "store_not_found"),
    ({"member": 999999}, "member_not_found"),
])
def test_spend_refuses_bad_input_and_changes_nothing(member, kwargs, code):
    wallet_recharge(member=member, principal=D("100.00"), bonus=D("10.00"), reference="PAY-1")
    before = snapshot(member)

    with pytest.raises(Exception) as exc:
        wallet_spend(**{"member": member, "amount": D("5.00"), "reference": "SO1", **kwargs})
    assert exc.value.code == code
    assert snapshot(member) == before


def test_spend_nested_in_a_caller_service_rolls_back_with_it(member):
    """Payments call wallet_spend inside their own service: a later failure there undoes the spend."""
    wallet_recharge(member=member, principal=D("100.00"), reference="PAY-1")
    before = snapshot(member)

    @service
    def pay_then_fail():
        wallet_spend(member=member, amount=D("60.00"), reference="SO1")
        raise RuntimeError("provider said no")

    with pytest.raises(RuntimeError):
        pay_then_fail()
    assert snapshot(member) == before

    @service
    def pay_twice():
        wallet_spend(member=member, amount=D("60.00"), reference="SO1")
        wallet_spend(member=member, amount=D("60.00"), reference="SO1")

    with pytest.raises(Exception) as exc:
        pay_twice()
    assert exc.value.code == "wallet_insufficient"
    assert snapshot(member) == before


def test_spend_under_a_reference_another_member_spent_under_is_refused(member):
    wallet_recharge(member=member, principal=D("100.00"), reference="PAY-1")
    wallet_spend(member=member, amount=D("10.00"), reference="SO1")
    other = MemberFactory()
    wallet_recharge(member=other, principal=D("100.00"), reference="PAY-2")
    before = snapshot(other)

    with pytest.raises(Exception) as exc:
        wallet_spend(member=other, amount=D("10.00"), reference="SO1")
    assert exc.value.code == "wallet_reference_conflict"
    assert snapshot(other) == before
    wallet_spend(member=member, amount=D("10.00"), reference="SO1")  # the same member may pay in two steps
    assert wallet_spent_for_reference(member=member, reference="SO1") == (D("20.00"), D("0.00"))


# --- refund of a spend ---------------------------------------------------------------------------


def test_refund_spend_puts_back_the_same_split_into_the_same_lots(member, store_a, store_b):
    first = wallet_recharge(member=member, principal=D("100.00"), bonus=D("10.00"), store_id=store_a.pk,
                            reference="PAY-1")
    wallet_spend(member=member, amount=D("55.00"), reference="SO0")  # 50 + 5 from the first lot
    second = wallet_recharge(member=member, principal=D("300.00"), bonus=D("0.00"), store_id=store_b.pk,
                             reference="PAY-2")
    # 350 : 5 → 71.00 is 70.00 principal (50 from the first lot, 20 from the second) + 1.00 bonus
    spend = wallet_spend(member=member, amount=D("71.00"), reference="SO1", store_id=store_b.pk)
    assert (spend.principal_delta, spend.bonus_delta) == (D("-70.00"), D("-1.00"))
    wallet_spend(member=member, amount=D("10.00"), reference="SO2")  # another reference, untouched below

    refund = wallet_refund_spend(member=member, reference="SO1", amount=D("35.50"))

    assert (refund.principal_delta, refund.bonus_delta) == (D("35.00"), D("0.50"))
    back = {a.recharge_id: (a.principal, a.bonus, a.spend_store_id) for a in refund.allocations.all()}
    assert back == {first.pk: (D("-25.00"), D("-0.50"), store_b.pk), second.pk: (D("-10.00"), D("0.00"),
                                                                                   store_b.pk)}
    assert wallet_spent_for_reference(member=member, reference="SO1") == (D("35.00"), D("0.50"))
    wallet_refund_spend(member=member, reference="SO1", amount=D("35.50"))
    assert wallet_spent_for_reference(member=member, reference="SO1") == (D("0.00"), D("0.00"))
    audit_clean()


@pytest.mark.parametrize("kwargs,code", [
    ({"amount": D("20.01")}, "wallet_refund_exceeded"),
    ({"reference": "SO-other"}, "wallet_refund_exceeded"),
    ({"amount": D("0.00")}, "invalid_amount"),
    ({"amount": 1.0}, "invalid_amount"),
    ({"reference": ""}, "invalid_reference"),
    ({"member": 999999}, "member_not_found"),
])
def test_refund_spend_refuses_bad_input_and_changes_nothing(member, kwargs, code):
    wallet_recharge(member=member, principal=D("100.00"), bonus=D("10.00"), reference="PAY-1")
    wallet_spend(member=member, amount=D("20.00"), reference="SO1")
    before = snapshot(member)

    with pytest.raises(Exception) as exc:
        wallet_refund_spend(**{"member": member, "reference": "SO1", "amount": D("5.00"), **kwargs})
    assert exc.value.code == code
    assert snapshot(member) == before


def test_refund_spend_of_another_members_reference_is_refused(member):
    wallet_recharge(member=member, principal=D("100.00"), reference="PAY-1")
    wallet_spend(member=member, amount=D("20.00"), reference="SO1")
    other = MemberFactory()

    with pytest.raises(Exception) as exc:
        wallet_refund_spend(member=other, reference="SO1", amount=D("1.00"))
    assert exc.value.code == "wallet_refund_exceeded"


# --- refund of a recharge ------------------------------------------------------------------------


def test_recharge_refund_returns_unspent_principal_and_forfeits_bonus(member, package, store_a):
    recharge = wallet_recharge(member=member, package=package, reference="PAY-1", store_id=store_a.pk)
    wallet_spend(member=member, amount=D("550.00"), reference="SO1")  # 500 + 50

    entry = wallet_recharge_refund(member=member, recharge=recharge)

    assert (entry.kind, entry.principal_delta, entry.bonus_delta) == ("recharge_refund", D("-500.00"),
                                                                      D("-50.00"))
    recharge.refresh_from_db()
    assert (recharge.principal_remaining, recharge.bonus_remaining) == (D("0.00"), D("0.00"))
    assert recharge.refunded_at is not None
    assert wallet(member) == (D("0.00"), D("0.00"))
    before = snapshot(member)
    with pytest.raises(Exception) as exc:
        wallet_recharge_refund(member=member, recharge=recharge)
    assert exc.value.code == "wallet_nothing_to_refund"
    assert snapshot(member) == before

    # The goods bought with it come back: the same split returns, and that principal is refundable again.
    wallet_refund_spend(member=member, reference="SO1", amount=D("550.00"))
    assert wallet(member) == (D("500.00"), D("50.00"))
    again = wallet_recharge_refund(member=member, recharge=recharge.pk)
    assert again.principal_delta == D("-500.00")
    audit_clean()


def test_recharge_refund_refuses_unknown_or_someone_elses_recharge(member):
    recharge = wallet_recharge(member=member, principal=D("100.00"), reference="PAY-1")
    other = MemberFactory()
    before = snapshot(member)

    for who, what, code in ((other, recharge, "recharge_not_found"), (member, 999999, "recharge_not_found"),
                            (member, "x", "recharge_not_found"), (999999, recharge, "member_not_found")):
        with pytest.raises(Exception) as exc:
            wallet_recharge_refund(member=who, recharge=what)
        assert exc.value.code == code
    assert snapshot(member) == before


def test_audit_flags_a_wallet_that_disagrees_with_its_ledger(member):
    recharge = wallet_recharge(member=member, principal=D("100.00"), reference="PAY-1")
    audit_clean()

    Member.objects.filter(pk=member.pk).update(wallet_bonus=D("1.00"))
    with pytest.raises(Exception, match="invariant check"):
        audit_clean()
    Member.objects.filter(pk=member.pk).update(wallet_bonus=D("0.00"))
    WalletRecharge.objects.filter(pk=recharge.pk).update(principal_remaining=D("99.00"))
    with pytest.raises(Exception, match="invariant check"):
        audit_clean()
