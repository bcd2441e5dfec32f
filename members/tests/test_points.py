"""Points: earning by rules and tiers, freezing, FIFO redemption, expiry, returns and the debt rule."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.tests.factories import CategoryFactory
from members.models import (
    EntryKind,
    ExpiryPolicy,
    LotKind,
    LotStatus,
    Member,
    PointsConfig,
    PointsConsumption,
    PointsEntry,
    PointsLot,
)
from members.selectors import points_for_value, points_redeem_cap, points_redeemed_for_order
from members.services.points import (
    points_adjust,
    points_earn,
    points_expire,
    points_expiry,
    points_redeem,
    points_restore_redeemed,
    points_reverse_earned,
    points_unfreeze,
    points_value,
)
from members.tests.factories import MemberFactory, PointsRuleFactory, TierFactory
from o2o.models import OutboxMessage

pytestmark = pytest.mark.django_db

D = Decimal


def snapshot(member: Member) -> tuple:
    """Everything a points call may change, to assert a refused call changed nothing."""
    member.refresh_from_db()
    return (member.points_available, member.points_frozen, member.points_debt, PointsEntry.objects.count(),
            PointsLot.objects.count(), PointsConsumption.objects.count(),
            sorted(PointsLot.objects.values_list("id", "remaining", "status", "reversed_points")),
            OutboxMessage.objects.filter(topic="member.points_changed").count())


def balances(member: Member) -> tuple[int, int, int]:
    member.refresh_from_db()
    return member.points_available, member.points_frozen, member.points_debt


def earn(member, order, paid, *, frozen=False, channel="pos", category_id=None, sku_id=1):
    until = timezone.now() + timedelta(days=7) if frozen else None
    return points_earn(member=member, order_number=order, channel=channel,
                       lines=[(category_id, sku_id, D(paid))], frozen_until=until)


def audit_clean():
    call_command("audit_ledgers", stdout=open("/dev/null", "w"))


@pytest.fixture
def member(db):
    return MemberFactory()


# --- earning -------------------------------------------------------------------------------------


def test_earn_floors_paid_times_default_rate_into_a_frozen_lot(member, store_a):
    until = timezone.now() + timedelta(days=7)
    lot = points_earn(member=member, order_number="SO1", channel="web", store_id=store_a.pk, frozen_until=until,
                      lines=[(None, 1, D("99.90")), (None, 2, D("0.50"))])

    assert (lot.amount, lot.remaining, lot.status, lot.kind) == (100, 100, LotStatus.FROZEN, LotKind.EARN)
    assert (lot.paid_amount, lot.store_id) == (D("100.40"), store_a.pk)
    assert balances(member) == (0, 100, 0)
    entry = PointsEntry.objects.get(lot=lot)
    assert (entry.kind, entry.frozen_delta, entry.available_delta, entry.order_number) == ("earn", 100, 0, "SO1")
    message = OutboxMessage.objects.filter(topic="member.points_changed").get()
    assert message.payload == {"member_id": member.pk, "available": 0, "frozen": 100, "debt": 0, "balance": 0}
    audit_clean()


def test_earn_uses_the_most_specific_rule_and_the_tier_multiplier(member):
    apparel = CategoryFactory(code="apparel", path="apparel")
    tops = CategoryFactory(code="tops", path="apparel/tops", parent=apparel)
    shoes = CategoryFactory(code="shoes", path="shoes")
    PointsRuleFactory(channel="", category=None, points_per_yuan=D("1"))
    PointsRuleFactory(channel="pos", category=None, points_per_yuan=D("2"))
    PointsRuleFactory(channel="", category=apparel, points_per_yuan=D("3"))
    PointsRuleFactory(channel="pos", category=apparel, points_per_yuan=D("4"))
    PointsRuleFactory(channel="web", category=tops, points_per_yuan=D("5"))
    member.tier = TierFactory(code="gold-test", points_multiplier=D("1.50"))
    member.save()

    lot = points_earn(member=member, order_number="SO2", channel="pos", frozen_until=None, lines=[
        (tops.pk, 1, D("10.00")),    # tops has only a web rule; the parent's POS rule (4) wins
        (shoes.pk, 2, D("10.00")),   # no category rule: the POS rule (2)
        (None, 3, D("10.00")),       # no category: the POS rule (2)
        (apparel.pk, 4, D("1.10")),  # the POS apparel rule (4)
    ])

    # (10×4 + 10×2 + 10×2 + 1.1×4) × 1.5 = 126.6 → 126
    assert lot.amount == 126
    assert [line["rate"] for line in lot.detail] == ["4.00", "2.00", "2.00", "4.00"]
    web = points_earn(member=member, order_number="SO3", channel="web", frozen_until=None,
                      lines=[(tops.pk, 1, D("10.00"))])
    assert web.amount == 75  # 10 × 5 × 1.5


def test_earn_without_any_rule_uses_the_configured_default(member):
    PointsConfig.objects.create(pk=1, default_points_per_yuan=D("0.50"))

    assert earn(member, "SO1", "99.00").amount == 49


def test_earn_is_available_at_once_without_a_return_window_and_expires_end_of_next_year(member):
    lot = earn(member, "SO1", "50.00")

    assert lot.status == LotStatus.AVAILABLE
    assert balances(member) == (50, 0, 0)
    local = timezone.localtime(lot.created_at)
    assert timezone.localtime(lot.expires_at).replace(tzinfo=None) == local.replace(
        year=local.year + 2, month=1, day=1, hour=0, minute=0, second=0, microsecond=0, tzinfo=None)


def test_expiry_by_months_when_configured():
    config = PointsConfig(expiry_policy=ExpiryPolicy.MONTHS, expiry_months=1)
    earned = timezone.make_aware(timezone.datetime(2026, 1, 31, 15, 0))

    expires = timezone.localtime(points_expiry(earned, config=config))
    assert (expires.year, expires.month, expires.day, expires.hour) == (2026, 3, 1, 0)  # end of 28 Feb


def test_earn_is_idempotent_per_order(member):
    first = earn(member, "SO1", "50.00", frozen=True)
    again = earn(member, "SO1", "80.00", frozen=True)

    assert again.pk == first.pk
    assert balances(member) == (0, 50, 0)
    assert PointsEntry.objects.count() == 1


def test_earn_for_an_order_already_earned_by_another_member_is_refused(member):
    earn(member, "SO1", "50.00")
    other = MemberFactory()
    before = snapshot(other)

    with pytest.raises(Exception) as exc:
        earn(other, "SO1", "50.00")
    assert exc.value.code == "points_order_conflict"
    assert snapshot(other) == before


def test_zero_paid_order_records_an_empty_lot_and_no_entry(member):
    lot = earn(member, "SO1", "0.00")

    assert lot.amount == 0
    assert not PointsEntry.objects.exists()
    assert points_reverse_earned(member=member, order_number="SO1", fraction=D("1")) is None


@pytest.mark.parametrize("kwargs,code", [
    ({"lines": []}, "invalid_lines"),
    ({"lines": "abc"}, "invalid_lines"),
    ({"lines": [(None, 1)]}, "invalid_lines"),
    ({"lines": [("x", 1, D("1.00"))]}, "invalid_lines"),
    ({"lines": [(None, 1, 1.5)]}, "invalid_amount"),
    ({"lines": [(None, 1, D("-1.00"))]}, "invalid_amount"),
    ({"lines": [(None, 1, D("1.001"))]}, "invalid_amount"),
    ({"order_number": ""}, "invalid_reference"),
    ({"channel": ""}, "invalid_channel"),
    ({"frozen_until": timezone.datetime(2030, 1, 1)}, "invalid_time"),
    ({"member": 999999}, "member_not_found"),
    ({"member": "1"}, "member_not_found"),
    ({"store_id": 999999}, "store_not_found"),
    ({"store_id": "S1"}, "store_not_found"),
])
def test_earn_refuses_bad_input_and_changes_nothing(member, kwargs, code):
    before = snapshot(member)
    call = {"member": member, "order_number": "SO1", "channel": "pos", "lines": [(None, 1, D("10.00"))],
            "frozen_until": None, **kwargs}

    with pytest.raises(Exception) as exc:
        points_earn(**call)
    assert exc.value.code == code
    assert snapshot(member) == before


# --- unfreeze ------------------------------------------------------------------------------------


def test_unfreeze_makes_due_lots_available_once(member):
    due = earn(member, "SO1", "30.00", frozen=True)
    later = points_earn(member=member, order_number="SO2", channel="pos", lines=[(None, 1, D("20.00"))],
                        frozen_until=timezone.now() + timedelta(days=30))

    assert points_unfreeze(now=timezone.now() + timedelta(days=8)) == 1
    assert points_unfreeze(now=timezone.now() + timedelta(days=8)) == 0

    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, later.status) == (LotStatus.AVAILABLE, LotStatus.FROZEN)
    assert balances(member) == (30, 20, 0)
    entry = PointsEntry.objects.get(kind=EntryKind.UNFREEZE)
    assert (entry.available_delta, entry.frozen_delta, entry.lot_id) == (30, -30, due.pk)
    audit_clean()


def test_unfreeze_works_through_many_members_in_batches():
    members = MemberFactory.create_batch(5)
    for i, m in enumerate(members):
        earn(m, f"SO{i}", "10.00", frozen=True)

    assert points_unfreeze(now=timezone.now() + timedelta(days=8), batch_size=2) == 5
    assert [balances(m) for m in members] == [(10, 0, 0)] * 5
    audit_clean()


# --- redeem --------------------------------------------------------------------------------------


def test_redeem_takes_oldest_expiry_first_and_records_the_lots(member):
    late = earn(member, "SO1", "100.00")
    early = earn(member, "SO2", "100.00")
    PointsLot.objects.filter(pk=early.pk).update(expires_at=late.expires_at - timedelta(days=100))

    entry = points_redeem(member=member, points=150, order_number="SO9")

    assert entry.available_delta == -150
    assert sorted(entry.consumptions.values_list("lot_id", "points")) == sorted([(early.pk, 100), (late.pk, 50)])
    early.refresh_from_db()
    late.refresh_from_db()
    assert (early.remaining, late.remaining) == (0, 50)
    assert balances(member) == (50, 0, 0)
    assert points_redeemed_for_order("SO9") == 150
    audit_clean()


def test_redeem_costs_the_same_queries_whatever_the_number_of_lots(member):
    def queries_to_redeem_across(lots: int, who: Member) -> int:
        for i in range(lots):
            earn(who, f"{who.pk}-SO{i}", "10.00")
        with CaptureQueriesContext(connection) as ctx:
            points_redeem(member=who, points=lots * 10, order_number=f"{who.pk}-R")
        return len(ctx.captured_queries)

    assert queries_to_redeem_across(2, member) == queries_to_redeem_across(8, MemberFactory())


def test_frozen_points_cannot_be_redeemed(member):
    earn(member, "SO1", "100.00", frozen=True)
    before = snapshot(member)

    with pytest.raises(Exception) as exc:
        points_redeem(member=member, points=1, order_number="SO9")
    assert exc.value.code == "points_insufficient"
    assert snapshot(member) == before


def test_redeem_cap_counts_earlier_redemptions_for_the_same_order(member):
    earn(member, "SO1", "1000.00")
    points_redeem(member=member, points=300, order_number="SO9", cap_points=500)
    before = snapshot(member)

    with pytest.raises(Exception) as exc:
        points_redeem(member=member, points=201, order_number="SO9", cap_points=500)
    assert exc.value.code == "points_cap_exceeded"
    assert snapshot(member) == before
    points_redeem(member=member, points=200, order_number="SO9", cap_points=500)
    assert points_redeemed_for_order("SO9") == 500


@pytest.mark.parametrize("kwargs,code", [
    ({"points": 0}, "invalid_points"),
    ({"points": -5}, "invalid_points"),
    ({"points": D("5")}, "invalid_points"),
    ({"points": True}, "invalid_points"),
    ({"points": 101}, "points_insufficient"),
    ({"cap_points": -1}, "invalid_points"),
    ({"points": 60, "cap_points": 50}, "points_cap_exceeded"),
    ({"order_number": "  "}, "invalid_reference"),
    ({"member": 999999}, "member_not_found"),
])
def test_redeem_refuses_bad_input_and_changes_nothing(member, kwargs, code):
    earn(member, "SO1", "100.00")
    before = snapshot(member)

    with pytest.raises(Exception) as exc:
        points_redeem(**{"member": member, "points": 10, "order_number": "SO9", **kwargs})
    assert exc.value.code == code
    assert snapshot(member) == before


def test_redeem_on_an_order_where_another_member_redeemed_is_refused(member):
    earn(member, "SO1", "100.00")
    points_redeem(member=member, points=10, order_number="SO9")
    other = MemberFactory()
    earn(other, "SO2", "100.00")
    before = snapshot(other)

    with pytest.raises(Exception) as exc:
        points_redeem(member=other, points=10, order_number="SO9")
    assert exc.value.code == "points_order_conflict"
    assert snapshot(other) == before


def test_points_value_rounds_down_to_the_fen():
    assert points_value(100) == D("1.00")
    assert points_value(150) == D("1.50")
    assert points_value(0) == D("0.00")
    PointsConfig.objects.create(pk=1, points_per_yuan_redeemed=200, redeem_max_share=D("0.50"))
    assert points_value(3) == D("0.01")  # 0.015 → 0.01, never a fen too many
    assert points_for_value(D("0.02")) == 4
    assert points_redeem_cap(order_amount=D("99.99")) == 9999  # half of 99.99 CNY at 200 points per CNY
    with pytest.raises(Exception) as exc:
        points_value(-1)
    assert exc.value.code == "invalid_points"


# --- restore redeemed ------------------------------------------------------------------------------


def test_restore_gives_back_in_proportion_into_lots_keeping_the_origin_expiry(member):
    first = earn(member, "SO1", "100.00")
    second = earn(member, "SO2", "300.00")
    PointsLot.objects.filter(pk=first.pk).update(expires_at=second.expires_at - timedelta(days=1))
    points_redeem(member=member, points=200, order_number="SO9")  # 100 from first, 100 from second

    entry = points_restore_redeemed(member=member, order_number="SO9", points=51)

    assert entry.available_delta == 51
    restored = PointsLot.objects.filter(kind=LotKind.RESTORE).order_by("origin_lot_id")
    assert [(lot.origin_lot_id, lot.amount) for lot in restored] == [(first.pk, 26), (second.pk, 25)]
    first.refresh_from_db()
    assert restored[0].expires_at == first.expires_at
    assert balances(member) == (251, 0, 0)
    assert points_redeemed_for_order("SO9") == 149
    audit_clean()


def test_restore_never_gives_back_more_than_was_redeemed_for_that_order(member):
    earn(member, "SO1", "500.00")
    points_redeem(member=member, points=100, order_number="SO9")
    points_redeem(member=member, points=300, order_number="SO8")
    points_restore_redeemed(member=member, order_number="SO9", points=60)
    before = snapshot(member)

    for points in (41, 1000):
        with pytest.raises(Exception) as exc:
            points_restore_redeemed(member=member, order_number="SO9", points=points)
        assert exc.value.code == "points_restore_exceeded"
    with pytest.raises(Exception) as exc:
        points_restore_redeemed(member=member, order_number="SO-never", points=1)
    assert exc.value.code == "points_restore_exceeded"
    assert snapshot(member) == before
    points_restore_redeemed(member=member, order_number="SO9", points=40)
    assert points_redeemed_for_order("SO9") == 0
    assert balances(member) == (200, 0, 0)


def test_restore_into_an_expired_origin_lapses_at_the_next_expiry_run(member):
    lot = earn(member, "SO1", "100.00")
    points_redeem(member=member, points=100, order_number="SO9")
    after_expiry = lot.expires_at + timedelta(seconds=1)
    points_expire(now=after_expiry)

    points_restore_redeemed(member=member, order_number="SO9", points=100)
    assert balances(member) == (100, 0, 0)
    assert points_expire(now=after_expiry) == 1
    assert balances(member) == (0, 0, 0)
    audit_clean()


# --- reverse earned --------------------------------------------------------------------------------


def test_reverse_of_a_frozen_lot_in_parts_adds_up_to_the_whole_lot(member):
    lot = earn(member, "SO1", "100.00", frozen=True)  # 100 points

    points_reverse_earned(member=member, order_number="SO1", amount=D("33.33"))
    points_reverse_earned(member=member, order_number="SO1", amount=D("33.33"))
    assert balances(member) == (0, 33, 0)  # ceil(100 × 66.66 / 100) = 67 reversed, 33 left
    points_reverse_earned(member=member, order_number="SO1", fraction=D("0.3334"))

    lot.refresh_from_db()
    assert (lot.remaining, lot.reversed_points, lot.returned_amount) == (0, 100, D("100.00"))
    assert balances(member) == (0, 0, 0)
    assert points_unfreeze(now=timezone.now() + timedelta(days=8)) == 1
    assert balances(member) == (0, 0, 0)
    audit_clean()


def test_reverse_rounds_against_the_member(member):
    earn(member, "SO1", "100.00")

    entry = points_reverse_earned(member=member, order_number="SO1", amount=D("0.01"))
    assert entry.available_delta == -1


def test_reverse_takes_spent_points_from_other_points_then_records_debt(member):
    earn(member, "SO1", "100.00")
    other = earn(member, "SO2", "30.00")
    points_redeem(member=member, points=100, order_number="SO9")  # both lots same expiry: SO1 first
    assert balances(member) == (30, 0, 0)

    entry = points_reverse_earned(member=member, order_number="SO1", fraction=D("1"))

    assert (entry.available_delta, entry.debt_delta) == (-30, 70)
    assert list(entry.consumptions.values_list("lot_id", "points")) == [(other.pk, 30)]
    assert balances(member) == (0, 0, 70)
    assert Member.objects.get(pk=member.pk).points_balance == -70
    audit_clean()


def test_debt_is_settled_first_by_later_earnings(member):
    earn(member, "SO1", "100.00")
    points_redeem(member=member, points=100, order_number="SO9")
    points_reverse_earned(member=member, order_number="SO1", fraction=D("1"))
    assert balances(member) == (0, 0, 100)

    earn(member, "SO2", "60.00", frozen=True)
    assert balances(member) == (0, 60, 100)  # frozen points do not settle debt yet
    points_unfreeze(now=timezone.now() + timedelta(days=8))
    assert balances(member) == (0, 0, 40)
    earn(member, "SO3", "70.00")
    assert balances(member) == (30, 0, 0)
    settles = PointsEntry.objects.filter(kind=EntryKind.DEBT_SETTLE).order_by("id")
    assert [(e.available_delta, e.debt_delta) for e in settles] == [(-60, -60), (-40, -40)]
    audit_clean()


def test_no_free_points_from_earning_redeeming_and_returning(member):
    """Earn on order A, redeem those points on order B, return A: no points out of thin air."""
    earn(member, "A", "1000.00", frozen=True)
    points_unfreeze(now=timezone.now() + timedelta(days=8))
    points_redeem(member=member, points=1000, order_number="B")

    points_reverse_earned(member=member, order_number="A", fraction=D("1"))
    member.refresh_from_db()
    # A is gone, so the 1000 points B used were never the member's: they owe them.
    assert member.points_balance == -1000
    assert member.points_available + member.points_frozen == 0

    # Returning B restores only what was redeemed for B, which settles the debt exactly.
    with pytest.raises(Exception) as exc:
        points_restore_redeemed(member=member, order_number="B", points=1001)
    assert exc.value.code == "points_restore_exceeded"
    points_restore_redeemed(member=member, order_number="B", points=1000)
    assert balances(member) == (0, 0, 0)
    with pytest.raises(Exception) as exc:
        points_restore_redeemed(member=member, order_number="A", points=1)
    assert exc.value.code == "points_restore_exceeded"
    assert balances(member) == (0, 0, 0)
    audit_clean()


def test_reverse_of_expired_points_writes_them_off_instead_of_charging_the_member(member):
    lot = earn(member, "SO1", "100.00")
    earn(member, "SO2", "50.00")
    points_redeem(member=member, points=40, order_number="SO9")  # from SO1 (same expiry, older)
    PointsLot.objects.filter(pk=lot.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    points_expire()  # the 60 left of SO1 expire
    assert balances(member) == (50, 0, 0)

    entry = points_reverse_earned(member=member, order_number="SO1", fraction=D("1"))

    # 60 had expired (written off); the 40 spent come out of SO2.
    assert (entry.available_delta, entry.debt_delta, entry.written_off) == (-40, 0, 60)
    assert balances(member) == (10, 0, 0)
    audit_clean()


def test_reverse_of_an_order_that_never_earned_reverses_nothing(member):
    assert points_reverse_earned(member=member, order_number="NOPE", fraction=D("1")) is None


@pytest.mark.parametrize("kwargs,code", [
    ({}, "invalid_amount"),
    ({"fraction": D("0.5"), "amount": D("1.00")}, "invalid_amount"),
    ({"fraction": D("0")}, "invalid_amount"),
    ({"fraction": D("1.01")}, "invalid_amount"),
    ({"fraction": 0.5}, "invalid_amount"),
    ({"amount": D("0.00")}, "invalid_amount"),
    ({"amount": D("100.01")}, "points_return_exceeded"),
    ({"amount": D("1.001")}, "invalid_amount"),
])
def test_reverse_refuses_bad_input_and_changes_nothing(member, kwargs, code):
    earn(member, "SO1", "100.00")
    before = snapshot(member)

    with pytest.raises(Exception) as exc:
        points_reverse_earned(member=member, order_number="SO1", **kwargs)
    assert exc.value.code == code
    assert snapshot(member) == before


def test_reverse_by_another_member_is_refused(member):
    earn(member, "SO1", "100.00")
    other = MemberFactory()

    with pytest.raises(Exception) as exc:
        points_reverse_earned(member=other, order_number="SO1", fraction=D("1"))
    assert exc.value.code == "points_order_conflict"
    assert balances(member) == (100, 0, 0)


# --- expire ----------------------------------------------------------------------------------------


def test_expire_writes_off_what_is_left_of_due_lots_once(member):
    old = earn(member, "SO1", "100.00")
    new = earn(member, "SO2", "50.00")
    points_redeem(member=member, points=30, order_number="SO9")
    PointsLot.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=1))

    assert points_expire() == 1
    assert points_expire() == 0

    old.refresh_from_db()
    assert (old.status, old.remaining) == (LotStatus.EXPIRED, 0)
    assert balances(member) == (50, 0, 0)
    entry = PointsEntry.objects.get(kind=EntryKind.EXPIRE)
    assert (entry.available_delta, entry.lot_id) == (-70, old.pk)
    new.refresh_from_db()
    assert new.status == LotStatus.AVAILABLE
    audit_clean()


def test_a_frozen_lot_past_expiry_expires_after_it_is_unfrozen(member):
    lot = earn(member, "SO1", "100.00", frozen=True)
    PointsLot.objects.filter(pk=lot.pk).update(expires_at=timezone.now() - timedelta(days=1))

    assert points_expire() == 0
    assert balances(member) == (0, 100, 0)
    points_unfreeze(now=timezone.now() + timedelta(days=8))
    assert points_expire() == 1
    assert balances(member) == (0, 0, 0)


# --- adjust ----------------------------------------------------------------------------------------


def test_adjust_up_and_down_with_reason_and_actor(member, hq_user):
    up = points_adjust(member=member, points=500, reason="补录积分", actor=hq_user)
    down = points_adjust(member=member, points=-200, reason="误发更正", actor=hq_user)

    assert (up.kind, up.available_delta, up.reason, up.actor_id) == ("adjust", 500, "补录积分", hq_user.pk)
    assert (down.available_delta, down.reason) == (-200, "误发更正")
    assert balances(member) == (300, 0, 0)
    audit_clean()


def test_adjust_up_settles_debt_first(member):
    earn(member, "SO1", "100.00")
    points_redeem(member=member, points=100, order_number="SO9")
    points_reverse_earned(member=member, order_number="SO1", fraction=D("1"))

    points_adjust(member=member, points=150, reason="goodwill")
    assert balances(member) == (50, 0, 0)


@pytest.mark.parametrize("kwargs,code", [
    ({"points": 0}, "invalid_points"),
    ({"points": 1.0}, "invalid_points"),
    ({"points": -101}, "points_insufficient"),
    ({"reason": ""}, "reason_required"),
    ({"reason": "   "}, "reason_required"),
    ({"member": 999999}, "member_not_found"),
])
def test_adjust_refuses_bad_input_and_changes_nothing(member, kwargs, code):
    earn(member, "SO1", "100.00")
    before = snapshot(member)

    with pytest.raises(Exception) as exc:
        points_adjust(**{"member": member, "points": 10, "reason": "x", "actor": None, **kwargs})
    assert exc.value.code == code
    assert snapshot(member) == before


# --- the audit catches tampering -------------------------------------------------------------------


def test_audit_flags_a_cached_balance_or_lot_that_disagrees_with_the_ledger(member):
    lot = earn(member, "SO1", "100.00")
    audit_clean()

    Member.objects.filter(pk=member.pk).update(points_available=99)
    with pytest.raises(Exception, match="invariant check"):
        audit_clean()
    Member.objects.filter(pk=member.pk).update(points_available=100)
    PointsLot.objects.filter(pk=lot.pk).update(remaining=90)
    with pytest.raises(Exception, match="invariant check"):
        audit_clean()
