"""Coupons: issue, limits, share, evaluate, redeem (also racing), restore, expire, campaigns, merge."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin import helpers
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from catalog.tests.factories import CategoryFactory, SkuFactory
from members import tasks
from members.exceptions import (
    CampaignNotRunnable,
    CouponExpired,
    CouponLimitReached,
    CouponNotFound,
    CouponNotIssuable,
    CouponNotOwned,
    CouponNotShareable,
    CouponNotYetValid,
    CouponOutOfScope,
    CouponThresholdNotMet,
    CouponUsed,
    InvalidCouponLines,
    InvalidSegment,
    MemberNotFound,
    NotAGuide,
)
from members.models import (
    CostBearer,
    CouponCampaign,
    CouponEvent,
    CouponKind,
    CouponQuota,
    CouponRedemption,
    CouponTemplate,
    CouponValidity,
    IssuedCoupon,
)
from members.services import coupons as svc
from members.services.members import member_merge
from members.tests.factories import MemberFactory, TierFactory
from o2o.audit import audit_run
from o2o.errors import InvalidInput
from o2o.models import OutboxMessage
from stores.models import Role
from stores.tests.factories import StaffFactory, StoreFactory, UserFactory
from tests.concurrency import run_at_once

D = Decimal


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def member(db):
    return MemberFactory()


@pytest.fixture
def other(db):
    return MemberFactory()


@pytest.fixture
def clerk(db):
    return UserFactory(username="clerk-a")


@pytest.fixture
def catalog(db):
    apparel = CategoryFactory(code="apparel", path="apparel")
    tops = CategoryFactory(code="tops", path="apparel/tops", parent=apparel)
    shoes = CategoryFactory(code="shoes", path="shoes")
    tee = SkuFactory(product__category=tops)
    sneaker = SkuFactory(product__category=shoes)
    return {"apparel": apparel, "tops": tops, "shoes": shoes, "tee": tee, "sneaker": sneaker}


def make_template(**kwargs) -> CouponTemplate:
    fields = {
        "code": f"T{CouponTemplate.objects.count() + 1:03d}",
        "name": "新客立减",
        "kind": CouponKind.FIXED,
        "amount": D("20.00"),
        "validity": CouponValidity.DAYS_AFTER_ISSUE,
        "valid_days": 30,
    }
    fields.update(kwargs)
    stores = fields.pop("stores", [])
    categories = fields.pop("categories", [])
    skus = fields.pop("skus", [])
    template = CouponTemplate.objects.create(**fields)
    template.stores.set(stores)
    template.categories.set(categories)
    template.skus.set(skus)
    return template


def lines_of(catalog, tee="100.00", sneaker=None):
    lines = [(catalog["tee"].id, catalog["tops"].id, D(tee))]
    if sneaker is not None:
        lines.append((catalog["sneaker"].id, catalog["shoes"].id, D(sneaker)))
    return lines


def snapshot():
    """Everything a coupon call may change, to prove a refused call changed nothing."""
    return (
        list(IssuedCoupon.objects.order_by("pk").values_list("pk", "status", "member_id")),
        CouponEvent.objects.count(),
        CouponRedemption.objects.count(),
        list(CouponRedemption.objects.order_by("pk").values_list("restored_at", flat=True)),
        list(CouponTemplate.objects.order_by("pk").values_list("issued_count", flat=True)),
        list(CouponQuota.objects.order_by("pk").values_list("received", flat=True)),
        OutboxMessage.objects.count(),
    )


def assert_audit_clean():
    failures = [(title, v) for inv, title, v in audit_run() if v]
    assert failures == []
    out = io.StringIO()
    call_command("audit_ledgers", stdout=out)
    assert "all ledgers consistent" in out.getvalue()


# --- codes and QR ----------------------------------------------------------------------------


def test_issue_gives_an_unambiguous_code_valid_n_days_and_logs_who(member, hq_user):
    template = make_template(valid_days=30)
    at = timezone.now()

    coupon = svc.coupon_issue(template=template, member=member, actor=hq_user, at=at)

    assert len(coupon.code) == 12 and set(coupon.code) <= set(svc.CODE_ALPHABET)
    assert not set(coupon.code) & set("01OIL")
    assert coupon.status == IssuedCoupon.Status.ISSUED and coupon.source == IssuedCoupon.Source.HQ
    assert (coupon.valid_from, coupon.valid_until) == (at, at + timedelta(days=30))
    assert coupon.member == member and coupon.issued_to == member
    event = coupon.events.get()
    assert (event.kind, event.actor, event.at) == (CouponEvent.Kind.ISSUED, hq_user, at)
    template.refresh_from_db()
    assert template.issued_count == 1
    assert CouponQuota.objects.get(template=template, member=member).received == 1


def test_codes_are_unique_across_many_issues(member):
    template = make_template(per_member_limit=None)
    codes = {svc.coupon_issue(template=template, member=member).code for _ in range(50)}
    assert len(codes) == 50


def test_fixed_dates_template_gives_its_window(member):
    start = timezone.now() - timedelta(days=1)
    template = make_template(validity=CouponValidity.FIXED_DATES, valid_days=None, valid_from=start,
                             valid_until=start + timedelta(days=10))
    coupon = svc.coupon_issue(template=template, member=member)
    assert (coupon.valid_from, coupon.valid_until) == (start, start + timedelta(days=10))


def test_qr_code_and_scanned_payloads_lead_back_to_the_code(member):
    coupon = svc.coupon_issue(template=make_template(), member=member)

    svg = svc.coupon_qr_svg(coupon)
    png = svc.coupon_qr_png(coupon)

    assert svg.startswith("<svg") and "</svg>" in svg
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert svc.coupon_qr_payload(coupon) == f"o2o:coupon:{coupon.code}"
    assert svc.coupon_code_normalize(svc.coupon_qr_payload(coupon)) == coupon.code
    assert svc.coupon_code_normalize(f" {coupon.display_code.lower()} ") == coupon.code


# --- issue channels and limits ---------------------------------------------------------------


def test_per_member_limit_refuses_a_second_coupon_and_changes_nothing(member):
    template = make_template(per_member_limit=1)
    svc.coupon_issue(template=template, member=member)
    before = snapshot()

    with pytest.raises(CouponLimitReached) as err:
        svc.coupon_issue(template=template, member=member)

    assert err.value.code == "coupon_limit_reached"
    assert snapshot() == before


def test_total_limit_refuses_once_all_are_issued_and_changes_nothing(member, other):
    template = make_template(total_limit=1)
    svc.coupon_issue(template=template, member=member)
    before = snapshot()

    with pytest.raises(CouponLimitReached):
        svc.coupon_issue(template=template, member=other)

    assert snapshot() == before
    assert not CouponQuota.objects.filter(member=other).exists()


def test_inactive_or_finished_templates_issue_nothing(member):
    inactive = make_template(is_active=False)
    past = make_template(validity=CouponValidity.FIXED_DATES, valid_days=None,
                         valid_from=timezone.now() - timedelta(days=10), valid_until=timezone.now() - timedelta(days=1))
    before = snapshot()

    with pytest.raises(CouponNotIssuable):
        svc.coupon_issue(template=inactive, member=member)
    with pytest.raises(CouponExpired):
        svc.coupon_issue(template=past, member=member)

    assert snapshot() == before


def test_issue_to_an_unknown_member_or_template_is_refused(member):
    template = make_template()
    before = snapshot()
    with pytest.raises(MemberNotFound) as err:
        svc.coupon_issue(template=template, member=987654)
    assert err.value.code == "member_not_found"
    with pytest.raises(CouponNotFound):
        svc.coupon_issue(template=987654, member=member)
    assert snapshot() == before


def test_online_claim_only_for_claimable_templates(member):
    closed = make_template()
    open_ = make_template(claimable_online=True)

    with pytest.raises(CouponNotIssuable):
        svc.coupon_claim(template=closed, member=member, channel="mini_program")
    coupon = svc.coupon_claim(template=open_, member=member, channel="mini_program", partner="wx-shop")

    assert coupon.source == IssuedCoupon.Source.CLAIM
    event = coupon.events.get()
    assert (event.channel, event.partner) == ("mini_program", "wx-shop")
    assert IssuedCoupon.objects.count() == 1


def test_a_guide_hands_out_a_coupon_in_store(member, store_a):
    guide = StaffFactory(role=Role.GUIDE, guide_code="G-01", store=store_a)
    template = make_template(guide_can_issue=True)

    coupon = svc.coupon_guide_issue(template=template, member=member, guide=guide, store_id=store_a.id)

    assert (coupon.source, coupon.guide) == (IssuedCoupon.Source.GUIDE, guide)
    event = coupon.events.get()
    assert (event.store, event.actor, event.channel) == (store_a, guide.user, "pos")


def test_guide_issue_refused_for_non_guides_and_templates_not_for_guides(member, store_a):
    clerk = StaffFactory(role=Role.CLERK, store=store_a)
    guide = StaffFactory(role=Role.GUIDE, guide_code="G-02", store=store_a, is_active=False)
    active_guide = StaffFactory(role=Role.GUIDE, guide_code="G-03", store=store_a)
    template = make_template(guide_can_issue=True)
    not_for_guides = make_template()
    before = snapshot()

    for staff in (clerk, guide):
        with pytest.raises(NotAGuide) as err:
            svc.coupon_guide_issue(template=template, member=member, guide=staff)
        assert err.value.code == "not_a_guide"
    with pytest.raises(CouponNotIssuable):
        svc.coupon_guide_issue(template=not_for_guides, member=member, guide=active_guide)

    assert snapshot() == before


# --- share -----------------------------------------------------------------------------------


def test_share_moves_ownership_and_logs_it(member, other):
    coupon = svc.coupon_issue(template=make_template(shareable=True), member=member)

    shared = svc.coupon_share(code=coupon.display_code, from_member=member, to_member=other)

    assert shared.member == other and shared.issued_to == member
    event = shared.events.get(kind=CouponEvent.Kind.SHARED)
    assert (event.from_member, event.to_member) == (member, other)
    assert OutboxMessage.objects.filter(topic=svc.TOPIC_SHARED).count() == 1
    with pytest.raises(CouponNotOwned):  # the giver no longer holds it
        svc.coupon_share(code=coupon.code, from_member=member, to_member=other)


def test_share_refusals_change_nothing(member, other, catalog):
    template = make_template(shareable=True, per_member_limit=1)
    coupon = svc.coupon_issue(template=template, member=member)
    already = svc.coupon_issue(template=template, member=other)
    not_shareable = svc.coupon_issue(template=make_template(), member=member)
    third = MemberFactory()
    used = svc.coupon_issue(template=make_template(shareable=True), member=member)
    svc.coupon_redeem(code=used.code, member=member, order_number="SO1", channel="web", store_id=None,
                      lines=lines_of(catalog))
    before = snapshot()

    cases = [
        (dict(code=coupon.code, from_member=member, to_member=other), CouponLimitReached),
        (dict(code=not_shareable.code, from_member=member, to_member=third), CouponNotShareable),
        (dict(code=already.code, from_member=member, to_member=third), CouponNotOwned),
        (dict(code=used.code, from_member=member, to_member=third), CouponUsed),
        (dict(code=coupon.code, from_member=member, to_member=member), InvalidInput),
        (dict(code=coupon.code, from_member=member, to_member=999999), MemberNotFound),
        (dict(code="NOPE-NOPE-NOPE", from_member=member, to_member=third), CouponNotFound),
        (dict(code=coupon.code, from_member=member, to_member=third, at=coupon.valid_until), CouponExpired),
    ]
    for kwargs, error in cases:
        with pytest.raises(error):
            svc.coupon_share(**kwargs)

    assert snapshot() == before


# --- evaluate --------------------------------------------------------------------------------


def test_fixed_coupon_takes_its_amount_borne_by_ecommerce(member, catalog):
    coupon = svc.coupon_issue(template=make_template(amount=D("20.00")), member=member)

    quote = svc.coupon_evaluate(code=coupon.code, member=member, channel="pos", store_id=None,
                                lines=lines_of(catalog, tee="60.00", sneaker="40.00"))

    assert (quote.discount, quote.eligible_amount) == (D("20.00"), D("100.00"))
    assert (quote.ecommerce_amount, quote.store_amount) == (D("20.00"), D("0.00"))
    assert quote.line_discounts == (D("12.00"), D("8.00"))
    assert quote.currency == "CNY"


def test_fixed_coupon_never_takes_more_than_the_lines_in_scope(member, catalog):
    coupon = svc.coupon_issue(template=make_template(amount=D("50.00")), member=member)
    quote = svc.coupon_evaluate(code=coupon.code, member=member, channel="web", store_id=None,
                                lines=lines_of(catalog, tee="30.00"))
    assert quote.discount == D("30.00")


def test_percent_coupon_is_capped_and_borne_by_the_store(member, catalog):
    template = make_template(kind=CouponKind.PERCENT, amount=None, percent=D("15.00"), max_discount=D("30.00"),
                             bearer=CostBearer.STORE)
    small = svc.coupon_issue(template=template, member=member)

    quote = svc.coupon_evaluate(code=small.code, member=member, channel="web", store_id=None,
                                lines=lines_of(catalog, tee="99.99"))
    assert quote.discount == D("15.00")  # 14.9985 rounded half up
    assert (quote.ecommerce_amount, quote.store_amount) == (D("0.00"), D("15.00"))

    quote = svc.coupon_evaluate(code=small.code, member=member, channel="web", store_id=None,
                                lines=lines_of(catalog, tee="300.00"))
    assert quote.discount == D("30.00")


def test_threshold_coupon_needs_the_minimum_spend_in_scope(member, catalog):
    template = make_template(kind=CouponKind.THRESHOLD, threshold=D("200.00"), amount=D("30.00"),
                             categories=[catalog["apparel"]])
    coupon = svc.coupon_issue(template=template, member=member)

    with pytest.raises(CouponThresholdNotMet) as err:  # the shoes do not count towards it
        svc.coupon_evaluate(code=coupon.code, member=member, channel="pos", store_id=None,
                            lines=lines_of(catalog, tee="199.99", sneaker="500.00"))
    assert err.value.code == "coupon_threshold_not_met"

    quote = svc.coupon_evaluate(code=coupon.code, member=member, channel="pos", store_id=None,
                                lines=lines_of(catalog, tee="200.00", sneaker="500.00"))
    assert (quote.discount, quote.eligible_amount) == (D("30.00"), D("200.00"))
    assert quote.line_discounts == (D("30.00"), D("0.00"))


def test_split_bearer_rounds_the_ecommerce_part_and_the_parts_add_up(member, catalog):
    template = make_template(amount=D("33.33"), bearer=CostBearer.SPLIT, ecommerce_share_percent=D("30.00"))
    coupon = svc.coupon_issue(template=template, member=member)

    quote = svc.coupon_evaluate(code=coupon.code, member=member, channel="pos", store_id=None,
                                lines=lines_of(catalog, tee="100.00"))

    assert (quote.ecommerce_amount, quote.store_amount) == (D("10.00"), D("23.33"))
    assert quote.ecommerce_amount + quote.store_amount == quote.discount


def test_scope_by_sku_channel_and_store(member, catalog, store_a, store_b):
    by_sku = svc.coupon_issue(template=make_template(skus=[catalog["sneaker"]]), member=member)
    web_only = svc.coupon_issue(template=make_template(channels=["web", "mini_program"]), member=member)
    store_only = svc.coupon_issue(template=make_template(stores=[store_a]), member=member)

    assert svc.coupon_evaluate(code=by_sku.code, member=member, channel="pos", store_id=None,
                               lines=lines_of(catalog, sneaker="80.00")).eligible_amount == D("80.00")
    with pytest.raises(CouponOutOfScope):
        svc.coupon_evaluate(code=by_sku.code, member=member, channel="pos", store_id=None,
                            lines=lines_of(catalog))
    with pytest.raises(CouponOutOfScope):
        svc.coupon_evaluate(code=web_only.code, member=member, channel="pos", store_id=store_a.id,
                            lines=lines_of(catalog))
    assert svc.coupon_evaluate(code=web_only.code, member=member, channel="web", store_id=None,
                               lines=lines_of(catalog)).discount == D("20.00")
    with pytest.raises(CouponOutOfScope) as err:
        svc.coupon_evaluate(code=store_only.code, member=member, channel="pos", store_id=store_b.id,
                            lines=lines_of(catalog))
    assert err.value.code == "coupon_out_of_scope"
    assert svc.coupon_evaluate(code=store_only.code, member=member, channel="pos", store_id=store_a.id,
                               lines=lines_of(catalog)).discount == D("20.00")


def test_evaluate_refusals(member, other, catalog):
    template = make_template()
    coupon = svc.coupon_issue(template=template, member=member)
    later = make_template(validity=CouponValidity.FIXED_DATES, valid_days=None,
                          valid_from=timezone.now() + timedelta(days=2), valid_until=timezone.now() + timedelta(days=9))
    future = svc.coupon_issue(template=later, member=member)
    before = snapshot()

    def evaluate(**kwargs):
        args = dict(code=coupon.code, member=member, channel="pos", store_id=None, lines=lines_of(catalog))
        args.update(kwargs)
        return svc.coupon_evaluate(**args)

    cases = [
        (dict(code="ZZZZZZZZZZZZ"), "coupon_not_found"),
        (dict(code=None), "coupon_not_found"),
        (dict(code=" - "), "coupon_not_found"),
        (dict(member=other), "coupon_not_owned"),
        (dict(member=None), "coupon_not_owned"),
        (dict(member=424242), "member_not_found"),
        (dict(at=coupon.valid_until), "coupon_expired"),
        (dict(code=future.code), "coupon_not_yet_valid"),
        (dict(lines=[]), "invalid_coupon_lines"),
        (dict(lines=[(catalog["tee"].id, None, 10.5)]), "invalid_coupon_lines"),
        (dict(lines=[(catalog["tee"].id, None, D("-1.00"))]), "invalid_coupon_lines"),
        (dict(lines=[(catalog["tee"].id, None, D("1.005"))]), "invalid_coupon_lines"),
        (dict(lines=[(catalog["tee"].id, None, D("0.00"))]), "coupon_out_of_scope"),
    ]
    for kwargs, code in cases:
        with pytest.raises((CouponNotFound, CouponNotOwned, MemberNotFound, CouponExpired, CouponNotYetValid,
                            InvalidCouponLines, CouponOutOfScope)) as err:
            evaluate(**kwargs)
        assert err.value.code == code, kwargs

    assert snapshot() == before


# --- redeem and restore ----------------------------------------------------------------------


def test_redeem_in_store_records_the_split_clerk_and_store(member, catalog, store_a, clerk):
    template = make_template(amount=D("30.00"), bearer=CostBearer.SPLIT, ecommerce_share_percent=D("50.00"))
    coupon = svc.coupon_issue(template=template, member=member)

    redemption = svc.coupon_redeem(code=coupon.display_code, member=member, order_number="PS0001", channel="pos",
                                   store_id=store_a.id, lines=lines_of(catalog), actor=clerk)

    coupon.refresh_from_db()
    assert coupon.status == IssuedCoupon.Status.REDEEMED
    assert (redemption.order_number, redemption.channel, redemption.store, redemption.actor) == (
        "PS0001", "pos", store_a, clerk)
    assert (redemption.discount, redemption.ecommerce_amount, redemption.store_amount) == (
        D("30.00"), D("15.00"), D("15.00"))
    event = coupon.events.get(kind=CouponEvent.Kind.REDEEMED)
    assert (event.store, event.actor, event.order_number, event.channel) == (store_a, clerk, "PS0001", "pos")
    message = OutboxMessage.objects.get(topic=svc.TOPIC_REDEEMED)
    assert message.payload["discount"] == "30.00" and message.payload["store_amount"] == "15.00"


def test_redeem_online_through_a_partner_is_logged_with_the_partner(member, catalog):
    coupon = svc.coupon_issue(template=make_template(), member=member)
    redemption = svc.coupon_redeem(code=coupon.code, member=member, order_number="MK1", channel="marketplace",
                                   store_id=None, lines=lines_of(catalog), partner="tmall")
    assert redemption.partner == "tmall" and redemption.actor is None
    assert coupon.events.get(kind=CouponEvent.Kind.REDEEMED).partner == "tmall"


def test_redeem_retried_for_the_same_order_returns_the_first_redemption(member, catalog):
    coupon = svc.coupon_issue(template=make_template(), member=member)
    first = svc.coupon_redeem(code=coupon.code, member=member, order_number="SO9", channel="web", store_id=None,
                              lines=lines_of(catalog))
    before = snapshot()

    again = svc.coupon_redeem(code=coupon.code, member=member, order_number="SO9", channel="web", store_id=None,
                              lines=lines_of(catalog, tee="500.00"))

    assert again.pk == first.pk and again.discount == first.discount
    assert snapshot() == before


def test_redeem_costs_the_same_queries_whatever_the_number_of_lines(member, catalog):
    template = make_template(per_member_limit=None, categories=[catalog["apparel"]], skus=[catalog["sneaker"]])
    one, many = (svc.coupon_issue(template=template, member=member) for _ in range(2))
    counts = []
    for coupon, lines in ((one, lines_of(catalog)), (many, lines_of(catalog) * 15 + lines_of(catalog, sneaker="9.00"))):
        with CaptureQueriesContext(connection) as queries:
            svc.coupon_redeem(code=coupon.code, member=member, order_number=f"SO-{coupon.pk}", channel="web",
                              store_id=None, lines=lines)
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 12, counts


def test_a_used_coupon_cannot_be_redeemed_on_another_order(member, catalog):
    coupon = svc.coupon_issue(template=make_template(), member=member)
    svc.coupon_redeem(code=coupon.code, member=member, order_number="SO1", channel="web", store_id=None,
                      lines=lines_of(catalog))
    before = snapshot()

    with pytest.raises(CouponUsed) as err:
        svc.coupon_redeem(code=coupon.code, member=member, order_number="SO2", channel="web", store_id=None,
                          lines=lines_of(catalog))

    assert err.value.code == "coupon_used"
    assert snapshot() == before


def test_redeem_refusals_leave_the_coupon_issued(member, other, catalog, store_b):
    template = make_template(kind=CouponKind.THRESHOLD, threshold=D("100.00"), amount=D("10.00"),
                             channels=["pos"])
    coupon = svc.coupon_issue(template=template, member=member)
    before = snapshot()

    def redeem(**kwargs):
        args = dict(code=coupon.code, member=member, order_number="SO1", channel="pos", store_id=store_b.id,
                    lines=lines_of(catalog))
        args.update(kwargs)
        return svc.coupon_redeem(**args)

    for kwargs, error in [
        (dict(member=other), CouponNotOwned),
        (dict(channel="web"), CouponOutOfScope),
        (dict(lines=lines_of(catalog, tee="99.99")), CouponThresholdNotMet),
        (dict(at=coupon.valid_until + timedelta(seconds=1)), CouponExpired),
        (dict(order_number=""), InvalidInput),
        (dict(channel=""), InvalidInput),
        (dict(code="2345-6789-ABCD"), CouponNotFound),
    ]:
        with pytest.raises(error):
            redeem(**kwargs)

    assert snapshot() == before
    assert IssuedCoupon.objects.get(pk=coupon.pk).status == IssuedCoupon.Status.ISSUED


def test_full_return_restores_the_coupon_for_another_order(member, catalog, store_a, clerk):
    coupon = svc.coupon_issue(template=make_template(), member=member)
    svc.coupon_redeem(code=coupon.code, member=member, order_number="SO1", channel="pos", store_id=store_a.id,
                      lines=lines_of(catalog), actor=clerk)

    restored = svc.coupon_restore(order_number="SO1", actor=clerk, store_id=store_a.id)

    assert [c.pk for c in restored] == [coupon.pk]
    coupon.refresh_from_db()
    assert coupon.status == IssuedCoupon.Status.ISSUED
    assert CouponRedemption.objects.get(order_number="SO1").restored_at is not None
    event = coupon.events.get(kind=CouponEvent.Kind.RESTORED)
    assert (event.actor, event.store, event.order_number) == (clerk, store_a, "SO1")
    assert OutboxMessage.objects.filter(topic=svc.TOPIC_RESTORED).count() == 1

    again = svc.coupon_redeem(code=coupon.code, member=member, order_number="SO2", channel="web", store_id=None,
                              lines=lines_of(catalog))
    assert again.order_number == "SO2"
    assert CouponRedemption.objects.filter(coupon=coupon).count() == 2
    assert_audit_clean()


def test_restore_is_idempotent_and_ignores_orders_without_coupons(member, catalog):
    coupon = svc.coupon_issue(template=make_template(), member=member)
    svc.coupon_redeem(code=coupon.code, member=member, order_number="SO1", channel="web", store_id=None,
                      lines=lines_of(catalog))
    svc.coupon_restore(order_number="SO1")
    before = snapshot()

    assert svc.coupon_restore(order_number="SO1") == []
    assert svc.coupon_restore(order_number="NO-SUCH-ORDER") == []
    assert snapshot() == before
    with pytest.raises(InvalidInput):
        svc.coupon_restore(order_number=" ")


def test_restore_after_validity_leaves_the_coupon_expired(member, catalog):
    coupon = svc.coupon_issue(template=make_template(valid_days=5), member=member)
    svc.coupon_redeem(code=coupon.code, member=member, order_number="SO1", channel="web", store_id=None,
                      lines=lines_of(catalog))

    svc.coupon_restore(order_number="SO1", at=coupon.valid_until + timedelta(hours=1))

    coupon.refresh_from_db()
    assert coupon.status == IssuedCoupon.Status.EXPIRED
    kinds = list(coupon.events.values_list("kind", flat=True))
    assert kinds[-2:] == [CouponEvent.Kind.RESTORED, CouponEvent.Kind.EXPIRED]
    assert_audit_clean()


def test_restore_gives_back_every_coupon_of_the_order(member, catalog):
    first = svc.coupon_issue(template=make_template(), member=member)
    second = svc.coupon_issue(template=make_template(skus=[catalog["tee"]]), member=member)
    for c in (first, second):
        svc.coupon_redeem(code=c.code, member=member, order_number="SO7", channel="web", store_id=None,
                          lines=lines_of(catalog))

    restored = svc.coupon_restore(order_number="SO7")

    assert sorted(c.pk for c in restored) == sorted([first.pk, second.pk])
    assert set(IssuedCoupon.objects.values_list("status", flat=True)) == {IssuedCoupon.Status.ISSUED}


# --- expiry ----------------------------------------------------------------------------------


def test_expire_marks_only_issued_coupons_past_validity_once(member, catalog):
    template = make_template(valid_days=3, per_member_limit=None)
    old = svc.coupon_issue(template=template, member=member)
    used = svc.coupon_issue(template=template, member=member)
    svc.coupon_redeem(code=used.code, member=member, order_number="SO1", channel="web", store_id=None,
                      lines=lines_of(catalog))
    later = svc.coupon_issue(template=template, member=member, at=timezone.now() + timedelta(days=2))
    at = old.valid_until + timedelta(minutes=1)

    assert svc.coupons_expire(at=at, batch_size=1) == 1
    assert svc.coupons_expire(at=at) == 0

    statuses = dict(IssuedCoupon.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "expired", used.pk: "redeemed", later.pk: "issued"}
    assert old.events.filter(kind=CouponEvent.Kind.EXPIRED).count() == 1
    with pytest.raises(CouponExpired):
        svc.coupon_evaluate(code=old.code, member=member, channel="web", store_id=None, lines=lines_of(catalog))


# --- campaigns -------------------------------------------------------------------------------


@pytest.fixture
def gold_members(db):
    gold = TierFactory(code="gold-test")
    members = [MemberFactory(tier=gold) for _ in range(7)]
    MemberFactory.create_batch(3)  # not in the segment
    return members


def test_campaign_issues_once_to_each_member_of_the_segment_in_batches(gold_members, hq_user):
    template = make_template()
    campaign = svc.coupon_campaign_create(template=template, name="金卡回馈", segment={"tier__code": "gold-test"},
                                          batch_size=3, actor=hq_user)

    campaign = svc.coupon_campaign_run(campaign_id=campaign.pk)

    assert campaign.status == CouponCampaign.Status.DONE
    assert (campaign.total, campaign.processed, campaign.issued, campaign.skipped) == (7, 7, 7, 0)
    assert campaign.progress_percent == 100
    owners = sorted(IssuedCoupon.objects.filter(campaign=campaign).values_list("member_id", flat=True))
    assert owners == sorted(m.pk for m in gold_members)
    assert CouponEvent.objects.filter(coupon__campaign=campaign, kind="issued", actor=hq_user).count() == 7
    template.refresh_from_db()
    assert template.issued_count == 7
    assert svc.coupon_campaign_run(campaign_id=campaign.pk).issued == 7  # running again issues nothing
    assert IssuedCoupon.objects.count() == 7
    assert_audit_clean()


def test_campaign_resumes_from_its_cursor(gold_members):
    campaign = svc.coupon_campaign_create(template=make_template(), name="c", segment={"tier__code": "gold-test"},
                                          batch_size=2)

    campaign = svc.coupon_campaign_run(campaign_id=campaign.pk, max_batches=2)

    assert campaign.status == CouponCampaign.Status.RUNNING
    assert (campaign.processed, campaign.issued, campaign.cursor) == (4, 4, sorted(m.pk for m in gold_members)[3])
    assert campaign.progress_percent == 57

    campaign = svc.coupon_campaign_run(campaign_id=campaign.pk)
    assert (campaign.status, campaign.issued) == (CouponCampaign.Status.DONE, 7)
    assert IssuedCoupon.objects.filter(campaign=campaign).count() == 7


def test_campaign_skips_members_at_their_limit_and_stops_at_the_total_limit(gold_members):
    template = make_template(per_member_limit=1, total_limit=5)
    svc.coupon_issue(template=template, member=gold_members[0])
    campaign = svc.coupon_campaign_create(template=template, name="c", segment={"tier__code": "gold-test"},
                                          batch_size=3)

    campaign = svc.coupon_campaign_run(campaign_id=campaign.pk)

    assert campaign.status == CouponCampaign.Status.DONE
    assert (campaign.issued, campaign.skipped) == (4, 1)
    assert campaign.note == "total limit reached"
    template.refresh_from_db()
    assert template.issued_count == 5
    assert not IssuedCoupon.objects.filter(campaign=campaign, member=gold_members[0]).exists()
    assert_audit_clean()


def test_campaign_start_queues_it_and_a_finished_one_cannot_start(gold_members, django_capture_on_commit_callbacks):
    campaign = svc.coupon_campaign_create(template=make_template(), name="c", segment={"tier__code": "gold-test"})

    started = svc.coupon_campaign_start(campaign_id=campaign.pk)

    assert (started.status, started.total) == (CouponCampaign.Status.RUNNING, 7)
    message = OutboxMessage.objects.get(topic=svc.TOPIC_CAMPAIGN_STARTED)
    assert message.payload == {"campaign_id": campaign.pk}
    svc.coupon_campaign_run(campaign_id=campaign.pk)
    with pytest.raises(CampaignNotRunnable):
        svc.coupon_campaign_start(campaign_id=campaign.pk)


def test_campaign_segment_must_be_valid_member_filters(db):
    template = make_template()
    for segment in ({"no_such_field": 1}, {"tier__code__bogus": "x"}, ["tier"]):
        with pytest.raises(InvalidSegment):
            svc.coupon_campaign_create(template=template, name="c", segment=segment)
    with pytest.raises(InvalidInput):
        svc.coupon_campaign_create(template=template, name=" ", segment={})
    assert not CouponCampaign.objects.exists()


def test_cancelled_campaign_issues_nothing_more(gold_members):
    campaign = svc.coupon_campaign_create(template=make_template(), name="c", segment={"tier__code": "gold-test"},
                                          batch_size=2)
    svc.coupon_campaign_run(campaign_id=campaign.pk, max_batches=1)
    svc.coupon_campaign_cancel(campaign_id=campaign.pk)

    campaign = svc.coupon_campaign_run(campaign_id=campaign.pk)

    assert (campaign.status, campaign.issued) == (CouponCampaign.Status.CANCELLED, 2)
    assert IssuedCoupon.objects.count() == 2


def test_campaign_task_runs_the_campaign(gold_members):
    campaign = svc.coupon_campaign_create(template=make_template(), name="c", segment={"tier__code": "gold-test"})
    assert tasks.coupon_campaign_issue(campaign.pk) == 7
    assert CouponCampaign.objects.get(pk=campaign.pk).status == CouponCampaign.Status.DONE


def test_stalled_campaigns_are_found_for_resuming(gold_members):
    campaign = svc.coupon_campaign_create(template=make_template(), name="c", segment={"tier__code": "gold-test"})
    svc.coupon_campaign_start(campaign_id=campaign.pk)
    assert svc.coupon_campaigns_stalled(idle_for=timedelta(minutes=5)) == []
    CouponCampaign.objects.filter(pk=campaign.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    assert svc.coupon_campaigns_stalled(idle_for=timedelta(minutes=5)) == [campaign.pk]


# --- merge -----------------------------------------------------------------------------------


def test_merge_moves_coupons_to_the_surviving_member(member, other, catalog):
    template = make_template(per_member_limit=1)
    mine = svc.coupon_issue(template=template, member=member)
    svc.coupon_issue(template=template, member=other)

    merge = member_merge(source=member, target=other)

    mine.refresh_from_db()
    assert mine.member == other and mine.issued_to == member
    assert mine.events.get(kind=CouponEvent.Kind.MERGED).to_member == other
    assert merge.moved["coupons"] == {"coupons": 1}
    assert CouponQuota.objects.get(template=template, member=other).received == 2
    # The survivor uses it; the duplicate's id still finds the survivor.
    quote = svc.coupon_evaluate(code=mine.code, member=member.pk, channel="web", store_id=None,
                                lines=lines_of(catalog))
    assert quote.discount == D("20.00")
    svc.coupon_redeem(code=mine.code, member=other, order_number="SO1", channel="web", store_id=None,
                      lines=lines_of(catalog))
    assert_audit_clean()


# --- audit -----------------------------------------------------------------------------------


def test_audit_flags_a_redeemed_coupon_without_redemption_and_a_wrong_counter(member):
    template = make_template()
    coupon = svc.coupon_issue(template=template, member=member)
    IssuedCoupon.objects.filter(pk=coupon.pk).update(status=IssuedCoupon.Status.REDEEMED)
    CouponTemplate.objects.filter(pk=template.pk).update(issued_count=3)

    failures = {title: v for inv, title, v in audit_run() if v}

    assert any(f"coupon {coupon.pk}" in line for lines in failures.values() for line in lines)
    assert any(f"coupon template {template.pk}" in line for lines in failures.values() for line in lines)


# --- concurrency -----------------------------------------------------------------------------


@pytest.fixture
def no_broker(monkeypatch):
    monkeypatch.setattr("o2o.outbox._kick_relay", lambda: None)


@pytest.mark.django_db(transaction=True)
def test_one_code_scanned_at_eight_stores_at_once_is_redeemed_once(no_broker):
    member = MemberFactory()
    stores = [StoreFactory() for _ in range(8)]
    sku = SkuFactory()
    coupon = svc.coupon_issue(template=make_template(), member=member)
    lines = [(sku.id, sku.product.category_id, D("120.00"))]

    outcomes = run_at_once([
        (lambda store=store, i=i: svc.coupon_redeem(code=coupon.code, member=member.pk, order_number=f"PS{i}",
                                                    channel="pos", store_id=store.id, lines=lines))
        for i, store in enumerate(stores)
    ])

    won = [o for o in outcomes if isinstance(o, CouponRedemption)]
    lost = [o for o in outcomes if not isinstance(o, CouponRedemption)]
    assert len(won) == 1
    assert all(isinstance(o, CouponUsed) for o in lost), lost
    assert CouponRedemption.objects.count() == 1
    assert CouponEvent.objects.filter(kind=CouponEvent.Kind.REDEEMED).count() == 1
    assert IssuedCoupon.objects.get(pk=coupon.pk).status == IssuedCoupon.Status.REDEEMED
    assert_audit_clean()


@pytest.mark.django_db(transaction=True)
def test_eight_claims_at_once_respect_the_total_limit(no_broker):
    template = make_template(total_limit=3, claimable_online=True)
    members = [MemberFactory() for _ in range(8)]

    outcomes = run_at_once([
        (lambda m=m: svc.coupon_claim(template=template.pk, member=m.pk, channel="web")) for m in members
    ])

    assert sum(isinstance(o, IssuedCoupon) for o in outcomes) == 3
    assert all(isinstance(o, (IssuedCoupon, CouponLimitReached)) for o in outcomes), outcomes
    assert IssuedCoupon.objects.count() == 3
    assert CouponTemplate.objects.get(pk=template.pk).issued_count == 3
    assert_audit_clean()


@pytest.mark.django_db(transaction=True)
def test_one_member_claiming_eight_times_at_once_gets_the_per_member_limit(no_broker):
    template = make_template(per_member_limit=2, claimable_online=True)
    member = MemberFactory()

    outcomes = run_at_once([
        (lambda: svc.coupon_claim(template=template.pk, member=member.pk, channel="web")) for _ in range(8)
    ])

    assert sum(isinstance(o, IssuedCoupon) for o in outcomes) == 2
    assert IssuedCoupon.objects.filter(member=member).count() == 2
    assert CouponQuota.objects.get(template=template, member=member).received == 2


@pytest.mark.django_db(transaction=True)
def test_campaign_run_twice_at_once_issues_once_per_member(no_broker):
    gold = TierFactory(code="gold-race")
    members = [MemberFactory(tier=gold) for _ in range(40)]
    template = make_template()
    campaign = svc.coupon_campaign_create(template=template, name="race", segment={"tier__code": "gold-race"},
                                          batch_size=5)

    outcomes = run_at_once([(lambda: svc.coupon_campaign_run(campaign_id=campaign.pk)) for _ in range(8)])

    assert all(isinstance(o, CouponCampaign) for o in outcomes), outcomes
    campaign.refresh_from_db()
    assert (campaign.status, campaign.processed, campaign.issued, campaign.skipped) == ("done", 40, 40, 0)
    owners = list(IssuedCoupon.objects.filter(campaign=campaign).values_list("member_id", flat=True))
    assert sorted(owners) == sorted(m.pk for m in members)
    assert CouponTemplate.objects.get(pk=template.pk).issued_count == 40
    assert_audit_clean()


# --- admin -----------------------------------------------------------------------------------


def admin_url(model: str, view: str, *args) -> str:
    return reverse(f"admin:members_{model}_{view}", args=args)


def test_admin_drafts_a_campaign_and_issue_now_queues_it_with_progress(client, hq_user, gold_members):
    client.force_login(hq_user)
    template = make_template()

    response = client.post(admin_url("couponcampaign", "add"), {
        "template": template.pk, "name": "金卡回馈", "segment": '{"tier__code": "gold-test"}', "batch_size": "3"})
    assert response.status_code == 302
    campaign = CouponCampaign.objects.get()
    assert (campaign.status, campaign.created_by) == (CouponCampaign.Status.DRAFT, hq_user)

    response = client.post(admin_url("couponcampaign", "changelist"),
                           {"action": "issue_now", helpers.ACTION_CHECKBOX_NAME: [campaign.pk]})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.total) == (CouponCampaign.Status.RUNNING, 7)
    assert OutboxMessage.objects.filter(topic=svc.TOPIC_CAMPAIGN_STARTED).count() == 1

    svc.coupon_campaign_run(campaign_id=campaign.pk, max_batches=1)
    page = client.get(admin_url("couponcampaign", "changelist")).content.decode()
    assert '<progress max="100" value="42">' in page and "(3 / 7)" in page


def test_admin_refuses_a_bad_segment_and_creates_nothing(client, hq_user):
    client.force_login(hq_user)
    response = client.post(admin_url("couponcampaign", "add"), {
        "template": make_template().pk, "name": "x", "segment": '{"nope": 1}', "batch_size": "10"})
    assert response.status_code == 200
    assert "segment" in response.content.decode()
    assert not CouponCampaign.objects.exists()


def test_admin_coupon_page_shows_the_qr_code_events_and_redemptions(client, hq_user, member, catalog):
    client.force_login(hq_user)
    coupon = svc.coupon_issue(template=make_template(), member=member, actor=hq_user)
    svc.coupon_redeem(code=coupon.code, member=member, order_number="SO-ADMIN", channel="web", store_id=None,
                      lines=lines_of(catalog))

    page = client.get(admin_url("issuedcoupon", "change", coupon.pk)).content.decode()

    assert "<svg" in page and "SO-ADMIN" in page and coupon.display_code in page
    found = client.get(admin_url("issuedcoupon", "changelist"), {"q": coupon.display_code.lower()})
    assert coupon.display_code in found.content.decode()
    assert client.post(admin_url("issuedcoupon", "delete", coupon.pk)).status_code == 403


def test_admin_freezes_a_templates_terms_once_coupons_are_out(client, hq_user, member):
    client.force_login(hq_user)
    template = make_template()
    form = client.get(admin_url("coupontemplate", "change", template.pk)).content.decode()
    assert 'name="amount"' in form
    svc.coupon_issue(template=template, member=member)

    form = client.get(admin_url("coupontemplate", "change", template.pk)).content.decode()

    assert 'name="amount"' not in form and 'name="name"' in form


def test_admin_template_form_explains_missing_terms(client, hq_user):
    client.force_login(hq_user)
    response = client.post(admin_url("coupontemplate", "add"), {
        "code": "BAD", "name": "bad", "kind": "percent", "threshold": "0.00", "validity": "days",
        "per_member_limit": "1", "bearer": "split", "ecommerce_share_percent": "100.00"})
    assert response.status_code == 200
    assert not CouponTemplate.objects.exists()
    errors = response.context["adminform"].form.errors
    assert {"percent", "valid_days", "ecommerce_share_percent"} <= set(errors)
