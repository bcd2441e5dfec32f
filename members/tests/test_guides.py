"""Shop assistants: QR codes, binding rules, history, attribution, leaving, merges."""

from __future__ import annotations

import functools

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from members.exceptions import InvalidBindingSource, MemberNotFound, NotAGuide
from members.models import BindingPolicy, GuideBinding, GuideBindingRule, GuideLeavePolicy
from members.services import guides as svc
from members.services.members import member_merge
from members.tests.factories import MemberFactory
from o2o.audit import audit_run
from o2o.models import OutboxMessage
from stores.models import Role
from stores.tests.factories import CityFactory, RegionFactory, StaffFactory, StoreFactory
from tests.concurrency import run_at_once

END = GuideBinding.EndReason


@pytest.fixture
def member(db):
    return MemberFactory()


@pytest.fixture
def guide(store_a):
    return StaffFactory(role=Role.GUIDE, guide_code="HZ001-G1", store=store_a, display_name="王芳")


@pytest.fixture
def guide2(store_a):
    return StaffFactory(role=Role.GUIDE, guide_code="HZ001-G2", store=store_a)


@pytest.fixture
def manager(store_a):
    return StaffFactory(role=Role.STORE_MANAGER, store=store_a)


def rule(**kwargs) -> GuideBindingRule:
    return GuideBindingRule.objects.create(**kwargs)


def history(member):
    return list(GuideBinding.objects.filter(member=member).order_by("id")
                .values_list("guide_id", "ended_reason", "source"))


# --- QR codes --------------------------------------------------------------------------------


def test_guide_qr_code_carries_the_guide_code(guide):
    assert svc.guide_qr_payload(guide) == "o2o:guide:HZ001-G1"
    svg = svc.guide_qr_svg(guide)
    assert svg.startswith("<svg") and "</svg>" in svg
    assert svc.guide_qr_png(guide)[:4] == b"\x89PNG"
    assert svc.guide_code_normalize(" o2o:guide:HZ001-G1 ") == "HZ001-G1"


def test_staff_without_a_guide_code_has_no_qr_code(store_a):
    clerk = StaffFactory(role=Role.CLERK, store=store_a)
    with pytest.raises(NotAGuide):
        svc.guide_qr_svg(clerk)


# --- binding ---------------------------------------------------------------------------------


def test_scanning_the_qr_code_binds_the_member_under_the_default_rule(member, guide, store_a):
    at = timezone.now()

    binding = svc.guide_bind(member=member, guide_code="o2o:guide:HZ001-G1", source="qr", at=at)

    assert (binding.guide, binding.store, binding.source) == (guide, store_a, GuideBinding.Source.QR)
    assert (binding.valid_from, binding.valid_to, binding.ended_reason) == (at, at + timedelta(days=365), "")
    message = OutboxMessage.objects.get(topic=svc.TOPIC_GUIDE_BOUND)
    assert message.payload["member_id"] == member.pk and message.payload["guide_code"] == "HZ001-G1"


def test_registering_at_the_pos_binds_with_the_typed_code(member, guide):
    binding = svc.guide_bind(member=member.pk, guide_code="HZ001-G1", source="pos")
    assert binding.source == GuideBinding.Source.POS and binding.guide == guide


@pytest.mark.parametrize("who", ["clerk", "inactive", "inactive_user", "unknown", "empty"])
def test_binding_to_anyone_but_an_active_guide_is_refused(member, store_a, who):
    codes = {
        "clerk": StaffFactory(role=Role.CLERK, guide_code="C1", store=store_a).guide_code,
        "inactive": StaffFactory(role=Role.GUIDE, guide_code="G9", store=store_a, is_active=False).guide_code,
        "inactive_user": StaffFactory(role=Role.GUIDE, guide_code="G8", store=store_a,
                                      user__is_active=False).guide_code,
        "unknown": "NOPE",
        "empty": "o2o:guide:",
    }

    with pytest.raises(NotAGuide) as err:
        svc.guide_bind(member=member, guide_code=codes[who], source="qr")

    assert err.value.code == "not_a_guide"
    assert not GuideBinding.objects.exists() and not OutboxMessage.objects.exists()


def test_binding_an_unknown_member_or_from_an_unknown_source_is_refused(guide):
    with pytest.raises(MemberNotFound) as err:
        svc.guide_bind(member=99999, guide_code="HZ001-G1", source="qr")
    assert err.value.code == "member_not_found"
    with pytest.raises(InvalidBindingSource):
        svc.guide_bind(member=MemberFactory(), guide_code="HZ001-G1", source="transfer")
    assert not GuideBinding.objects.exists()


def test_first_binding_wins_while_it_lasts(member, guide, guide2):
    first = svc.guide_bind(member=member, guide_code=guide.guide_code, source="qr")

    again = svc.guide_bind(member=member, guide_code=guide2.guide_code, source="qr")

    assert again.pk == first.pk and again.guide == guide
    assert history(member) == [(guide.pk, "", "qr")]


def test_scanning_the_same_guide_again_changes_nothing(member, guide):
    first = svc.guide_bind(member=member, guide_code=guide.guide_code, source="qr")
    again = svc.guide_bind(member=member, guide_code=guide.guide_code, source="pos",
                           at=timezone.now() + timedelta(days=100))
    assert again.pk == first.pk and again.valid_to == first.valid_to
    assert GuideBinding.objects.count() == 1


def test_last_binding_wins_and_history_is_kept(member, guide, guide2):
    rule(policy=BindingPolicy.LAST_WINS, valid_days=90)
    t0 = timezone.now()
    first = svc.guide_bind(member=member, guide_code=guide.guide_code, source="qr", at=t0)

    second = svc.guide_bind(member=member, guide_code=guide2.guide_code, source="qr", at=t0 + timedelta(days=10))

    first.refresh_from_db()
    assert (first.ended_reason, first.valid_to) == (END.REPLACED, t0 + timedelta(days=10))
    assert (second.guide, second.valid_to) == (guide2, t0 + timedelta(days=100))
    assert history(member) == [(guide.pk, "replaced", "qr"), (guide2.pk, "", "qr")]
    # Attribution follows the history.
    assert svc.guide_for_order(member=member, at=t0 + timedelta(days=5)) == guide
    assert svc.guide_for_order(member=member, at=t0 + timedelta(days=11)) == guide2


def test_an_expired_binding_attributes_nothing_and_frees_the_member(member, guide, guide2):
    rule(policy=BindingPolicy.FIRST_WINS, valid_days=30)
    t0 = timezone.now()
    svc.guide_bind(member=member, guide_code=guide.guide_code, source="qr", at=t0)
    later = t0 + timedelta(days=31)

    assert svc.guide_for_order(member=member, at=later) is None
    second = svc.guide_bind(member=member, guide_code=guide2.guide_code, source="qr", at=later)

    assert second.guide == guide2
    assert history(member) == [(guide.pk, "expired", "qr"), (guide2.pk, "", "qr")]


def test_a_rule_without_expiry_keeps_bindings_open(member, guide):
    rule(valid_days=None)
    binding = svc.guide_bind(member=member, guide_code=guide.guide_code, source="api")
    assert binding.valid_to is None
    assert svc.guide_for_order(member=member, at=timezone.now() + timedelta(days=3650)) == guide


def test_the_region_rule_overrides_the_default(member, store_a):
    rule(policy=BindingPolicy.FIRST_WINS, valid_days=365)
    south = RegionFactory(code="GD", name="广东")
    sz_store = StoreFactory(city=CityFactory(code="SZ", name="深圳", region=south))
    rule(region=south, policy=BindingPolicy.LAST_WINS, valid_days=7)
    g1 = StaffFactory(role=Role.GUIDE, guide_code="SZ-1", store=sz_store)
    g2 = StaffFactory(role=Role.GUIDE, guide_code="SZ-2", store=sz_store)

    first = svc.guide_bind(member=member, guide_code="SZ-1", source="qr")
    second = svc.guide_bind(member=member, guide_code="SZ-2", source="qr")

    assert second.guide == g2 and second.valid_to == second.valid_from + timedelta(days=7)
    assert first.guide == g1
    assert GuideBinding.objects.get(pk=first.pk).ended_reason == END.REPLACED


# --- attribution -----------------------------------------------------------------------------


def test_the_guide_chosen_at_the_pos_wins_over_the_binding(member, guide, guide2):
    svc.guide_bind(member=member, guide_code=guide.guide_code, source="qr")
    now = timezone.now()
    assert svc.guide_for_order(member=member, chosen_guide_id=guide2.pk, at=now) == guide2
    assert svc.guide_for_order(member=member, at=now) == guide
    assert svc.guide_for_order(member=None, at=now) is None
    assert svc.guide_for_order(member=None, chosen_guide_id=guide.pk, at=now) == guide


def test_choosing_a_non_guide_at_the_pos_is_refused(member, store_a):
    clerk = StaffFactory(role=Role.CLERK, store=store_a)
    with pytest.raises(NotAGuide):
        svc.guide_for_order(member=member, chosen_guide_id=clerk.pk, at=timezone.now())


def test_no_binding_means_no_guide(member):
    assert svc.guide_for_order(member=member, at=timezone.now()) is None
    assert svc.guide_for_order(member=member, at=timezone.now() - timedelta(days=1)) is None


def test_before_the_binding_started_nobody_is_attributed(member, guide):
    t0 = timezone.now()
    svc.guide_bind(member=member, guide_code=guide.guide_code, source="qr", at=t0)
    assert svc.guide_for_order(member=member, at=t0 - timedelta(seconds=1)) is None


# --- a guide leaves --------------------------------------------------------------------------


def test_leaving_guide_bindings_move_to_the_store_manager(member, guide, manager):
    rule(on_guide_leave=GuideLeavePolicy.TRANSFER, valid_days=60)
    t0 = timezone.now()
    original = svc.guide_bind(member=member, guide_code=guide.guide_code, source="qr", at=t0)
    guide.is_active = False
    guide.save()

    changed = svc.guide_bindings_sweep(at=t0 + timedelta(days=1))

    assert changed == 1
    original.refresh_from_db()
    assert (original.ended_reason, original.valid_to) == (END.TRANSFERRED, t0 + timedelta(days=1))
    moved = GuideBinding.objects.get(member=member, ended_reason="")
    assert (moved.guide, moved.source, moved.previous, moved.valid_to) == (
        manager, GuideBinding.Source.TRANSFER, original, t0 + timedelta(days=60))
    assert svc.guide_for_order(member=member, at=t0 + timedelta(days=2)) == manager
    assert svc.guide_bindings_sweep(at=t0 + timedelta(days=2)) == 0  # idempotent


def test_leaving_guide_without_a_store_manager_ends_the_bindings(member, guide):
    rule(on_guide_leave=GuideLeavePolicy.TRANSFER)
    svc.guide_bind(member=member, guide_code=guide.guide_code, source="qr")

    assert svc.guide_leave(guide=guide) == 1

    assert history(member) == [(guide.pk, END.GUIDE_LEFT, "qr")]


def test_end_policy_ends_the_bindings_and_frees_the_member(member, guide, guide2, manager):
    rule(on_guide_leave=GuideLeavePolicy.END)
    svc.guide_bind(member=member, guide_code=guide.guide_code, source="qr")
    guide.user.is_active = False
    guide.user.save()

    assert svc.guide_bindings_sweep() == 1

    assert svc.guide_for_order(member=member, at=timezone.now()) is None
    assert svc.guide_bind(member=member, guide_code=guide2.guide_code, source="qr").guide == guide2


def test_keep_policy_keeps_the_binding_but_attributes_nobody_while_away(member, guide, guide2):
    rule(on_guide_leave=GuideLeavePolicy.KEEP)
    binding = svc.guide_bind(member=member, guide_code=guide.guide_code, source="qr")
    guide.is_active = False
    guide.save()

    assert svc.guide_bindings_sweep() == 0
    binding.refresh_from_db()
    assert binding.ended_reason == ""
    assert svc.guide_for_order(member=member, at=timezone.now()) is None
    # Still protected under first-wins, and attributed again once the guide is back.
    assert svc.guide_bind(member=member, guide_code=guide2.guide_code, source="qr").pk == binding.pk
    guide.is_active = True
    guide.save()
    assert svc.guide_for_order(member=member, at=timezone.now()) == guide


def test_sweep_marks_expired_bindings(member, guide):
    rule(valid_days=1)
    t0 = timezone.now() - timedelta(days=3)
    svc.guide_bind(member=member, guide_code=guide.guide_code, source="qr", at=t0)

    assert svc.guide_bindings_sweep() == 1
    assert svc.guide_bindings_sweep() == 0
    assert history(member) == [(guide.pk, END.EXPIRED, "qr")]


# --- merge -----------------------------------------------------------------------------------


def test_merge_carries_the_duplicates_binding_to_the_survivor(guide):
    duplicate, survivor = MemberFactory(), MemberFactory()
    theirs = svc.guide_bind(member=duplicate, guide_code=guide.guide_code, source="qr")

    merge = member_merge(source=duplicate, target=survivor)

    theirs.refresh_from_db()
    assert theirs.ended_reason == END.MERGED
    carried = GuideBinding.objects.get(member=survivor)
    assert (carried.guide, carried.source, carried.previous, carried.valid_to) == (
        guide, GuideBinding.Source.MERGE, theirs, theirs.valid_from + timedelta(days=365))
    assert merge.moved["guides"] == {"guide_bindings": 1}
    assert svc.guide_for_order(member=duplicate.pk, at=timezone.now()) == guide


def test_merge_under_first_wins_keeps_the_older_binding(guide, guide2):
    duplicate, survivor = MemberFactory(), MemberFactory()
    t0 = timezone.now() - timedelta(days=5)
    svc.guide_bind(member=duplicate, guide_code=guide.guide_code, source="qr", at=t0)
    newer = svc.guide_bind(member=survivor, guide_code=guide2.guide_code, source="qr", at=t0 + timedelta(days=1))

    member_merge(source=duplicate, target=survivor)

    newer.refresh_from_db()
    assert newer.ended_reason == END.REPLACED
    assert svc.guide_for_order(member=survivor, at=timezone.now()) == guide


def test_merge_under_first_wins_keeps_the_survivors_older_binding(guide, guide2):
    duplicate, survivor = MemberFactory(), MemberFactory()
    t0 = timezone.now() - timedelta(days=5)
    ours = svc.guide_bind(member=survivor, guide_code=guide2.guide_code, source="qr", at=t0)
    svc.guide_bind(member=duplicate, guide_code=guide.guide_code, source="qr", at=t0 + timedelta(days=1))

    member_merge(source=duplicate, target=survivor)

    assert GuideBinding.objects.get(member=survivor, ended_reason="").pk == ours.pk
    assert GuideBinding.objects.get(member=duplicate).ended_reason == END.MERGED


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_eight_guides_scanned_at_once_bind_the_member_once(monkeypatch):
    monkeypatch.setattr("o2o.outbox._kick_relay", lambda: None)
    store = StoreFactory()
    guides = [StaffFactory(role=Role.GUIDE, guide_code=f"R{i}", store=store) for i in range(8)]
    member = MemberFactory()
    outcomes = run_at_once([functools.partial(svc.guide_bind, member=member.pk, guide_code=g.guide_code, source="qr")
                            for g in guides])

    assert all(isinstance(o, GuideBinding) for o in outcomes), outcomes
    assert len({o.pk for o in outcomes}) == 1
    assert GuideBinding.objects.filter(member=member).count() == 1
    assert [v for _, _, v in audit_run() if v] == []


# --- admin -----------------------------------------------------------------------------------


def test_admin_binding_history_is_read_only_and_rules_are_editable(client, hq_user, member, guide, guide2):
    client.force_login(hq_user)
    rule(policy=BindingPolicy.LAST_WINS)
    svc.guide_bind(member=member, guide_code=guide.guide_code, source="qr")
    svc.guide_bind(member=member, guide_code=guide2.guide_code, source="pos")

    page = client.get(reverse("admin:members_guidebinding_changelist"))
    assert page.status_code == 200 and page.context["cl"].result_count == 2
    binding = GuideBinding.objects.first()
    assert client.post(reverse("admin:members_guidebinding_delete", args=[binding.pk])).status_code == 403
    assert client.get(reverse("admin:members_guidebinding_add")).status_code == 403

    response = client.post(reverse("admin:members_guidebindingrule_add"), {
        "region": RegionFactory(code="JS", name="江苏").pk, "policy": "first_wins", "valid_days": "30",
        "on_guide_leave": "end"})
    assert response.status_code == 302
    assert GuideBindingRule.objects.count() == 2
