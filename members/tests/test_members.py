"""Members: registration, identities, merges (with their ledgers), paid spend, tiers and the admin."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin import helpers
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from members import tasks
from members.models import (
    EntryKind,
    Member,
    MemberIdentity,
    MemberMerge,
    MemberSpend,
    PointsEntry,
    PointsLot,
    Tier,
    WalletEntry,
    WalletEntryKind,
    WalletRecharge,
)
from members.selectors import member_by_identity, member_by_phone, member_get, phone_normalize
from members.services import members as member_services
from members.services.members import (
    MERGE_HOOKS,
    IdentityRef,
    member_identity_bind,
    member_merge,
    member_register,
    member_spend_record,
    tiers_recompute,
)
from members.services.points import (
    points_earn,
    points_redeem,
    points_restore_redeemed,
    points_reverse_earned,
)
from members.services.wallet import wallet_recharge, wallet_refund_spend, wallet_spend
from members.tests.factories import MemberFactory, MemberIdentityFactory
from o2o.models import OutboxMessage

pytestmark = pytest.mark.django_db

D = Decimal


def audit_clean():
    call_command("audit_ledgers", stdout=open("/dev/null", "w"))


def counts() -> tuple:
    return (Member.objects.count(), MemberIdentity.objects.count(), MemberMerge.objects.count(),
            MemberSpend.objects.count(), PointsEntry.objects.count(), WalletEntry.objects.count(),
            OutboxMessage.objects.count(),
            sorted(Member.objects.values_list("id", "merged_into_id", "points_available", "wallet_principal")))


@pytest.fixture
def tiers(db):
    Tier.objects.all().update(is_active=False)
    made = {}
    for code, name, min_spend, multiplier in [("t-normal", "普通", "0.00", "1.00"), ("t-silver", "银卡", "2000.00", "1.20"),
                                              ("t-gold", "金卡", "8000.00", "1.50"),
                                              ("t-diamond", "钻石", "20000.00", "2.00")]:
        made[code] = Tier.objects.create(code=code, name=name, min_spend=D(min_spend),
                                         points_multiplier=D(multiplier))
    return made


# --- phone numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["13800138000", "138 0013 8000", "+86 138-0013-8000", "008613800138000"])
def test_phone_is_normalised_to_e164(raw):
    assert phone_normalize(raw) == "+8613800138000"


@pytest.mark.parametrize("raw", ["12345", "abc", "", "   ", None, 13800138000, "1380013800", "+1 555"])
def test_malformed_phone_is_a_domain_error(raw):
    with pytest.raises(Exception) as exc:
        phone_normalize(raw)
    assert exc.value.code == "invalid_phone"


# --- registration ----------------------------------------------------------------------------------


def test_register_at_the_pos_with_a_phone_only(store_a):
    member = member_register(phone="13800138000", channel="pos", store_id=store_a.pk)

    member.refresh_from_db()
    assert (member.phone, member.registration_channel, member.registration_store_id) == (
        "+8613800138000", "pos", store_a.pk)
    assert (member.points_available, member.wallet_principal) == (0, D("0.00"))
    message = OutboxMessage.objects.get(topic="member.registered")
    assert message.payload["member_id"] == member.pk


def test_register_online_with_wechat_identities():
    member = member_register(phone="13900000001", channel="mini_program", name="王芳", identities=[
        IdentityRef(kind="wechat_openid", value="o-abc", namespace="wx-app"),
        ("wechat_unionid", "u-xyz"),
    ])

    assert member_by_identity(kind="wechat_openid", value="o-abc", namespace="wx-app") == member
    assert member_by_identity(kind="wechat_unionid", value="u-xyz") == member
    assert member_by_identity(kind="wechat_openid", value="o-abc") is None  # another app's openid space
    assert member_by_phone("139 0000 0001") == member


def test_register_through_a_partner_records_partner_and_customer_id():
    member = member_register(phone="13900000002", channel="partner", partner="tmall",
                             identities=[("partner", "C-1", "tmall")])

    assert member.registration_partner == "tmall"
    assert member_by_identity(kind="partner", value="C-1", namespace="tmall") == member
    # The same customer id at another partner is another identity.
    other = member_register(phone="13900000003", channel="partner", partner="jd", identities=[("partner", "C-1", "jd")])
    assert member_by_identity(kind="partner", value="C-1", namespace="jd") == other


def test_registering_a_known_phone_returns_the_existing_member_unchanged(store_a, store_b):
    first = member_register(phone="13800138000", channel="pos", store_id=store_a.pk, name="李雷")

    again = member_register(phone="+86 138 0013 8000", channel="web", store_id=store_b.pk, name="someone",
                            identities=[("wechat_unionid", "u-1")])

    assert again.pk == first.pk
    again.refresh_from_db()
    assert (again.name, again.registration_channel, again.registration_store_id) == ("李雷", "pos", store_a.pk)
    assert Member.objects.count() == 1
    assert member_by_identity(kind="wechat_unionid", value="u-1") == first
    assert OutboxMessage.objects.filter(topic="member.registered").count() == 1


@pytest.mark.parametrize("kwargs,code", [
    ({"phone": "12345"}, "invalid_phone"),
    ({"channel": "fax"}, "invalid_channel"),
    ({"store_id": 999999}, "store_not_found"),
    ({"identities": [("email", "x@example.com")]}, "invalid_identity"),
    ({"identities": [("wechat_openid", "  ")]}, "invalid_identity"),
    ({"identities": [("wechat_unionid", "u-taken")]}, "identity_taken"),
])
def test_register_refuses_bad_input_and_changes_nothing(kwargs, code):
    MemberIdentityFactory(kind="wechat_unionid", namespace="", value="u-taken")
    before = counts()

    with pytest.raises(Exception) as exc:
        member_register(**{"phone": "13800138000", "channel": "web", **kwargs})
    assert exc.value.code == code
    assert counts() == before


def test_bind_identity_is_idempotent_and_refuses_another_members_identity():
    member, other = MemberFactory(), MemberFactory()
    first = member_identity_bind(member=member, kind="wechat_openid", value="o-1", namespace="wx")
    assert member_identity_bind(member=member, kind="wechat_openid", value="o-1", namespace="wx").pk == first.pk
    before = counts()

    with pytest.raises(Exception) as exc:
        member_identity_bind(member=other, kind="wechat_openid", value="o-1", namespace="wx")
    assert exc.value.code == "identity_taken"
    with pytest.raises(Exception) as exc:
        member_identity_bind(member=999999, kind="wechat_openid", value="o-2", namespace="wx")
    assert exc.value.code == "member_not_found"
    assert counts() == before


def test_unknown_member_is_a_domain_error():
    for value in (999999, "12", None, True):
        with pytest.raises(Exception) as exc:
            member_get(value)
        assert exc.value.code == "member_not_found"


# --- merge -----------------------------------------------------------------------------------------


def test_merge_moves_identities_spend_points_and_wallet_and_records_who(hq_user, store_a):
    source, target = MemberFactory(), MemberFactory()
    MemberIdentityFactory(member=source, kind="wechat_openid", value="o-src")
    member_spend_record(member=source, order_number="SO1", channel="web", amount=D("120.00"), at=timezone.now())
    points_earn(member=source, order_number="SO1", channel="web", lines=[(None, 1, D("120.00"))], frozen_until=None)
    points_earn(member=source, order_number="SO2", channel="web", lines=[(None, 1, D("30.00"))],
                frozen_until=timezone.now() + timedelta(days=7))
    points_earn(member=target, order_number="SO3", channel="pos", lines=[(None, 1, D("10.00"))], frozen_until=None)
    wallet_recharge(member=source, principal=D("100.00"), bonus=D("10.00"), reference="PAY-1", store_id=store_a.pk)
    wallet_recharge(member=target, principal=D("50.00"), reference="PAY-2")

    merge = member_merge(source=source, target=target.pk, actor=hq_user, note="同一顾客两个手机号")

    source.refresh_from_db()
    target.refresh_from_db()
    assert (source.merged_into_id, merge.actor_id, merge.note) == (target.pk, hq_user.pk, "同一顾客两个手机号")
    assert merge.moved["identities"] == 1 and merge.moved["spend_records"] == 1
    assert merge.moved["points"] == {"lots": 2, "available": 120, "frozen": 30, "debt": 0}
    assert merge.moved["wallet"] == {"recharges": 1, "principal": "100.00", "bonus": "10.00"}
    assert (source.points_available, source.points_frozen, source.wallet_principal, source.wallet_bonus) == (
        0, 0, D("0.00"), D("0.00"))
    assert (target.points_available, target.points_frozen) == (130, 30)
    assert (target.wallet_principal, target.wallet_bonus) == (D("150.00"), D("10.00"))
    assert target.spend_12m == D("120.00")
    assert member_by_identity(kind="wechat_openid", value="o-src", namespace="wx-app") == target
    assert PointsEntry.objects.filter(member=source, kind=EntryKind.MERGE_OUT).count() == 1
    assert WalletEntry.objects.filter(member=target, kind=WalletEntryKind.MERGE_IN).count() == 1
    assert OutboxMessage.objects.filter(topic="member.merged").get().payload["target_id"] == target.pk
    audit_clean()


def test_services_called_with_a_merged_member_act_on_the_survivor():
    source, target = MemberFactory(), MemberFactory()
    points_earn(member=source, order_number="SO1", channel="web", lines=[(None, 1, D("100.00"))], frozen_until=None)
    points_redeem(member=source, points=40, order_number="SO9")
    wallet_recharge(member=source, principal=D("100.00"), reference="PAY-1")
    wallet_spend(member=source, amount=D("30.00"), reference="SO9")
    member_merge(source=source, target=target)

    # The orders app still holds the duplicate's id: returns go to the surviving member.
    points_restore_redeemed(member=source.pk, order_number="SO9", points=40)
    points_reverse_earned(member=source, order_number="SO1", fraction=D("0.5"))
    wallet_refund_spend(member=source, reference="SO9", amount=D("30.00"))
    assert member_register(phone=source.phone, channel="pos") == target
    assert member_get(source.pk) == target

    target.refresh_from_db()
    assert (target.points_available, target.wallet_principal) == (50, D("100.00"))
    audit_clean()


def test_merge_of_a_member_in_debt_settles_the_debt_from_the_other_points():
    source, target = MemberFactory(), MemberFactory()
    points_earn(member=source, order_number="SO1", channel="web", lines=[(None, 1, D("100.00"))], frozen_until=None)
    points_redeem(member=source, points=100, order_number="SO9")
    points_reverse_earned(member=source, order_number="SO1", fraction=D("1"))
    points_earn(member=target, order_number="SO2", channel="web", lines=[(None, 1, D("30.00"))], frozen_until=None)

    member_merge(source=source, target=target)

    target.refresh_from_db()
    assert (target.points_available, target.points_debt) == (0, 70)
    audit_clean()


def test_merging_again_keeps_the_chain_one_level_deep():
    a, b, c = MemberFactory(), MemberFactory(), MemberFactory()
    member_merge(source=a, target=b)
    member_merge(source=b, target=c)

    a.refresh_from_db()
    assert a.merged_into_id == c.pk
    assert member_get(a.pk) == c


def test_merge_hooks_run_inside_the_merge_and_a_failing_hook_undoes_everything():
    source, target = MemberFactory(), MemberFactory()
    MemberIdentityFactory(member=source)
    calls = []

    def record(src, tgt):
        calls.append((src.pk, tgt.pk, src.merged_into_id))
        return {"rows": 3}

    def fail(src, tgt):
        raise RuntimeError("coupon move failed")

    record.merge_key = "test_rows"
    MERGE_HOOKS.append(record)
    MERGE_HOOKS.append(fail)
    try:
        before = counts()
        with pytest.raises(RuntimeError):
            member_merge(source=source, target=target)
        assert counts() == before
        MERGE_HOOKS.remove(fail)
        merge = member_merge(source=source, target=target)
    finally:
        for hook in (record, fail):
            if hook in MERGE_HOOKS:
                MERGE_HOOKS.remove(hook)

    assert calls[-1] == (source.pk, target.pk, None)  # before the source is marked merged
    assert merge.moved["test_rows"] == {"rows": 3}


def test_merge_hook_decorator_registers_under_its_key():
    @member_services.merge_hook("test_key")
    def step(src, tgt):
        return None

    try:
        assert step in MERGE_HOOKS and step.merge_key == "test_key"
    finally:
        MERGE_HOOKS.remove(step)


def test_merge_refuses_bad_input_and_changes_nothing():
    a, b, c = MemberFactory(), MemberFactory(), MemberFactory()
    member_merge(source=a, target=b)
    before = counts()

    for source, target, code in ((b, b, "merge_same_member"), (c.pk, c.pk, "merge_same_member"),
                                 (a, c, "member_merged"), (c, a, "member_merged"), (c, 999999, "member_not_found"),
                                 ("x", c, "member_not_found")):
        with pytest.raises(Exception) as exc:
            member_merge(source=source, target=target)
        assert exc.value.code == code
    assert counts() == before


# --- spend and tiers -------------------------------------------------------------------------------


def test_spend_records_sum_for_tiers_in_one_update(tiers):
    now = timezone.now()
    gold, silver, plain, lapsed, merged = MemberFactory.create_batch(5)
    member_spend_record(member=gold, order_number="SO1", channel="web", amount=D("9000.00"), at=now - timedelta(days=3))
    member_spend_record(member=gold, order_number="SO1", channel="web", amount=D("-500.00"), at=now, reference="RT1")
    member_spend_record(member=silver, order_number="SO2", channel="pos", amount=D("2000.00"), at=now)
    member_spend_record(member=lapsed, order_number="SO3", channel="pos", amount=D("50000.00"),
                        at=now - timedelta(days=370))
    member_merge(source=merged, target=plain)

    with CaptureQueriesContext(connection) as ctx:
        changed = tiers_recompute(now=now)
    assert [q["sql"].split()[0] for q in ctx.captured_queries if "UPDATE" in q["sql"]] == ["WITH"]
    assert changed == 3  # plain got its tier from the merge; the merged duplicate is left alone
    merged.refresh_from_db()
    assert merged.tier_id is None
    for member, tier, spend in ((gold, "t-gold", "8500.00"), (silver, "t-silver", "2000.00"),
                                (plain, "t-normal", "0.00"), (lapsed, "t-normal", "0.00")):
        member.refresh_from_db()
        assert (member.tier.code, member.spend_12m) == (tier, D(spend))
    assert tiers_recompute(now=now) == 0  # idempotent

    # A year on, gold's spend has rolled out of the window.
    assert tiers_recompute(now=now + timedelta(days=366)) >= 1
    gold.refresh_from_db()
    assert gold.tier.code == "t-normal"


def test_tier_multiplier_raises_points(tiers):
    member = MemberFactory()
    member_spend_record(member=member, order_number="SO1", channel="web", amount=D("20000.00"), at=timezone.now())
    tiers_recompute()

    lot = points_earn(member=member, order_number="SO2", channel="web", lines=[(None, 1, D("100.00"))],
                      frozen_until=None)
    assert lot.amount == 200


def test_spend_record_is_idempotent_per_reference():
    member = MemberFactory()
    at = timezone.now()
    first = member_spend_record(member=member, order_number="SO1", channel="web", amount=D("10.00"), at=at,
                                reference="PAY1")
    assert member_spend_record(member=member, order_number="SO1", channel="web", amount=D("10.00"), at=at,
                               reference="PAY1").pk == first.pk
    with pytest.raises(Exception) as exc:
        member_spend_record(member=member, order_number="SO1", channel="web", amount=D("11.00"), at=at,
                            reference="PAY1")
    assert exc.value.code == "spend_reference_conflict"
    assert MemberSpend.objects.count() == 1


@pytest.mark.parametrize("kwargs,code", [
    ({"amount": D("0.00")}, "invalid_amount"),
    ({"amount": 10.0}, "invalid_amount"),
    ({"amount": D("1.001")}, "invalid_amount"),
    ({"order_number": ""}, "invalid_reference"),
    ({"channel": ""}, "invalid_channel"),
    ({"at": timezone.datetime(2026, 1, 1)}, "invalid_time"),
    ({"member": 999999}, "member_not_found"),
])
def test_spend_record_refuses_bad_input_and_changes_nothing(kwargs, code):
    member = MemberFactory()
    before = counts()

    with pytest.raises(Exception) as exc:
        member_spend_record(**{"member": member, "order_number": "SO1", "channel": "web", "amount": D("10.00"),
                               "at": timezone.now(), **kwargs})
    assert exc.value.code == code
    assert counts() == before


def test_default_tiers_are_installed():
    assert {"standard", "silver", "gold", "diamond"} <= set(Tier.objects.values_list("code", flat=True))


# --- beat tasks ------------------------------------------------------------------------------------


def test_beat_tasks_run_the_services():
    member = MemberFactory()
    points_earn(member=member, order_number="SO1", channel="web", lines=[(None, 1, D("10.00"))],
                frozen_until=timezone.now() + timedelta(days=7))
    PointsLot.objects.update(frozen_until=timezone.now() - timedelta(seconds=1))  # the return window is over

    assert tasks.points_unfreeze.apply().get() == 1
    assert tasks.points_unfreeze.apply().get() == 0
    PointsLot.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.points_expire.apply().get() == 1
    assert isinstance(tasks.tiers_recompute.apply().get(), int)
    member.refresh_from_db()
    assert (member.points_available, member.points_frozen) == (0, 0)


# --- admin -----------------------------------------------------------------------------------------


def test_admin_member_pages_and_search_by_any_phone_spelling(client, hq_user):
    member = member_register(phone="13800138000", channel="pos")
    MemberIdentityFactory(member=member)
    client.force_login(hq_user)

    found = client.get(reverse("admin:members_member_changelist"), {"q": "138 0013 8000"})
    assert found.status_code == 200 and "+8613800138000" in found.content.decode()
    page = client.get(reverse("admin:members_member_change", args=[member.pk]))
    assert page.status_code == 200
    for name in ("pointsentry", "pointslot", "walletentry", "walletrecharge", "walletspendallocation",
                 "membermerge", "memberspend", "tier", "pointsrule", "rechargepackage", "pointsconfig"):
        assert client.get(reverse(f"admin:members_{name}_changelist")).status_code == 200


def test_admin_add_member_registers_through_the_service(client, hq_user):
    client.force_login(hq_user)

    response = client.post(reverse("admin:members_member_add"), {"phone": "13800138000", "name": "韩梅梅"})
    assert response.status_code == 302
    assert Member.objects.get().registration_channel == "admin"
    bad = client.post(reverse("admin:members_member_add"), {"phone": "12345"})
    assert bad.status_code == 200 and Member.objects.count() == 1


def test_admin_adjust_points_action_writes_an_entry_with_the_reason(client, hq_user):
    member = MemberFactory()
    client.force_login(hq_user)
    url = reverse("admin:members_member_changelist")
    post = {"action": "adjust_points", helpers.ACTION_CHECKBOX_NAME: [member.pk]}

    form = client.post(url, post)
    assert form.status_code == 200 and "reason" in form.content.decode()
    done = client.post(url, {**post, "apply": "1", "points": "300", "reason": "客诉补偿"})
    assert done.status_code == 302
    entry = PointsEntry.objects.get(member=member)
    assert (entry.kind, entry.available_delta, entry.reason, entry.actor_id) == ("adjust", 300, "客诉补偿", hq_user.pk)

    refused = client.post(url, {**post, "apply": "1", "points": "-301", "reason": "x"}, follow=True)
    assert PointsEntry.objects.filter(member=member).count() == 1
    assert any(m.level_tag == "error" for m in refused.context["messages"])


def test_admin_merge_action_merges_into_the_chosen_member(client, hq_user):
    a, b = MemberFactory(), MemberFactory()
    client.force_login(hq_user)
    url = reverse("admin:members_member_changelist")
    post = {"action": "merge_members", helpers.ACTION_CHECKBOX_NAME: [a.pk, b.pk]}

    assert client.post(url, post).status_code == 200
    assert client.post(url, {**post, "apply": "1", "target": b.pk, "note": "dup"}).status_code == 302
    merge = MemberMerge.objects.get()
    assert (merge.source_id, merge.target_id, merge.actor_id, merge.note) == (a.pk, b.pk, hq_user.pk, "dup")


def test_admin_ledgers_are_read_only(client, hq_user):
    member = MemberFactory()
    wallet_recharge(member=member, principal=D("10.00"), reference="PAY-1")
    client.force_login(hq_user)

    assert client.get(reverse("admin:members_walletentry_add")).status_code == 403
    recharge = WalletRecharge.objects.get()
    client.post(reverse("admin:members_walletrecharge_change", args=[recharge.pk]), {"principal_remaining": "999"})
    recharge.refresh_from_db()
    assert recharge.principal_remaining == D("10.00")
