"""Guide commission: rule precedence, accrual, release, clawback (before and after release), ledger audit."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from catalog.tests.factories import CategoryFactory, SkuFactory
from members import tasks
from members.exceptions import CommissionAlreadyAccrued, InvalidClawback, InvalidCommissionLines, NotAGuide
from members.models import CommissionEntry, CommissionRule, GuideCommissionBalance
from members.services import guides as svc
from o2o.audit import audit_run
from o2o.errors import InvalidInput
from stores.models import Role
from stores.tests.factories import StaffFactory, StoreFactory
from tests.concurrency import run_at_once

D = Decimal
KIND = CommissionEntry.Kind


@pytest.fixture
def catalog(db):
    apparel = CategoryFactory(code="apparel", path="apparel")
    tops = CategoryFactory(code="tops", path="apparel/tops", parent=apparel)
    tees = CategoryFactory(code="tees", path="apparel/tops/tees", parent=tops)
    shoes = CategoryFactory(code="shoes", path="shoes")
    return {
        "apparel": apparel, "tops": tops, "tees": tees, "shoes": shoes,
        "tee": SkuFactory(product__category=tees), "tee2": SkuFactory(product__category=tees),
        "shirt": SkuFactory(product__category=tops), "sneaker": SkuFactory(product__category=shoes),
    }


@pytest.fixture
def rules(catalog, store_a):
    def add(rate, store=None, category=None, sku=None, **kw):
        return CommissionRule.objects.create(rate_percent=D(rate), store=store, category=category, sku=sku, **kw)

    return {
        "catch_all": add("1.00"),
        "apparel": add("2.00", category=catalog["apparel"]),
        "tops_a": add("3.00", store=store_a, category=catalog["tops"]),
        "tee": add("5.00", sku=catalog["tee"]),
        "tee_a": add("6.00", store=store_a, sku=catalog["tee"]),
        "inactive": add("50.00", store=store_a, sku=catalog["sneaker"], is_active=False),
    }


@pytest.fixture
def guide(store_a):
    return StaffFactory(role=Role.GUIDE, guide_code="G-1", store=store_a)


def line(catalog, name, amount):
    sku = catalog[name]
    return (sku.id, sku.product.category_id, D(amount))


def balance(guide):
    return svc.commission_balance(guide)


def ledger_state():
    return (
        list(CommissionEntry.objects.order_by("pk").values_list("pk", "kind", "frozen_delta", "released_delta")),
        list(GuideCommissionBalance.objects.order_by("pk").values_list("guide_id", "frozen", "released")),
    )


def assert_audit_clean():
    assert [(title, v) for _, title, v in audit_run() if v] == []
    out = io.StringIO()
    call_command("audit_ledgers", stdout=out)
    assert "all ledgers consistent" in out.getvalue()


def accrue(guide, catalog, store, order="SO1", lines=None, due=None):
    return svc.commission_accrue(
        guide=guide, order_number=order, channel="pos", store_id=store.id if store else None,
        lines=lines or [line(catalog, "tee", "200.00"), line(catalog, "sneaker", "99.99")],
        frozen_until=due or timezone.now() + timedelta(days=7))


# --- rates -----------------------------------------------------------------------------------


def test_the_most_specific_rule_wins(catalog, rules, store_a, store_b):
    lines = [line(catalog, n, "100.00") for n in ("tee", "tee2", "shirt", "sneaker")]

    assert svc.commission_rates(store_id=store_a.id, lines=lines) == [D("6.00"), D("3.00"), D("3.00"), D("1.00")]
    assert svc.commission_rates(store_id=store_b.id, lines=lines) == [D("5.00"), D("2.00"), D("2.00"), D("1.00")]
    assert svc.commission_rates(store_id=None, lines=lines) == [D("5.00"), D("2.00"), D("2.00"), D("1.00")]


def test_a_deeper_global_category_beats_a_shallower_store_category(catalog, rules, store_a):
    CommissionRule.objects.create(rate_percent=D("4.00"), category=catalog["tees"])
    assert svc.commission_rates(store_id=store_a.id, lines=[line(catalog, "tee2", "10.00")]) == [D("4.00")]


def test_no_rule_means_no_commission(catalog, store_a):
    assert svc.commission_rates(store_id=store_a.id, lines=[line(catalog, "tee", "10.00")]) == [D("0.00")]


# --- accrue ----------------------------------------------------------------------------------


def test_accrual_freezes_commission_per_line(catalog, rules, store_a, guide):
    due = timezone.now() + timedelta(days=7)

    entries = accrue(guide, catalog, store_a, due=due)

    assert [(e.line_no, e.rate_percent, e.base_amount, e.frozen_delta) for e in entries] == [
        (1, D("6.00"), D("200.00"), D("12.00")), (2, D("1.00"), D("99.99"), D("1.00"))]
    assert all(e.kind == KIND.ACCRUAL and e.frozen_until == due and e.released_delta == 0 for e in entries)
    assert balance(guide) == (D("13.00"), D("0.00"))
    assert_audit_clean()


def test_lines_without_commission_get_no_entry(catalog, store_a, guide):
    CommissionRule.objects.create(rate_percent=D("2.00"), sku=catalog["sneaker"])
    entries = accrue(guide, catalog, store_a, lines=[line(catalog, "tee", "50.00"), line(catalog, "sneaker", "0.10"),
                                                     line(catalog, "sneaker", "80.00")])
    assert [(e.line_no, e.frozen_delta) for e in entries] == [(3, D("1.60"))]
    assert accrue(guide, catalog, store_a, order="SO2", lines=[line(catalog, "tee", "50.00")]) == []


def test_accrue_again_for_the_order_returns_the_first_entries(catalog, rules, store_a, guide, store_b):
    first = accrue(guide, catalog, store_a)
    before = ledger_state()

    again = accrue(guide, catalog, store_a, lines=[line(catalog, "tee", "999.00")])

    assert [e.pk for e in again] == [e.pk for e in first]
    assert ledger_state() == before
    other = StaffFactory(role=Role.GUIDE, guide_code="G-2", store=store_b)
    with pytest.raises(CommissionAlreadyAccrued):
        accrue(other, catalog, store_b)
    assert ledger_state() == before


def test_a_store_manager_holding_transferred_bindings_earns_commission(catalog, rules, store_a):
    manager = StaffFactory(role=Role.STORE_MANAGER, store=store_a)
    accrue(manager, catalog, store_a)
    assert balance(manager) == (D("13.00"), D("0.00"))


def test_accrue_refusals_change_nothing(catalog, rules, store_a, guide):
    clerk = StaffFactory(role=Role.CLERK, store=store_a)
    gone = StaffFactory(role=Role.GUIDE, guide_code="G-9", store=store_a, is_active=False)
    before = ledger_state()
    good = [line(catalog, "tee", "10.00")]
    due = timezone.now() + timedelta(days=7)

    for kwargs, error in [
        (dict(guide=clerk), NotAGuide),
        (dict(guide=gone), NotAGuide),
        (dict(guide=424242), NotAGuide),
        (dict(order_number=""), InvalidInput),
        (dict(lines=[]), InvalidCommissionLines),
        (dict(lines=[(catalog["tee"].id, None, 9.99)]), InvalidCommissionLines),
        (dict(lines=[(catalog["tee"].id, None, D("-1.00"))]), InvalidCommissionLines),
        (dict(lines=[("tee", None, D("1.00"))]), InvalidCommissionLines),
        (dict(frozen_until=due.replace(tzinfo=None)), InvalidInput),
    ]:
        args = dict(guide=guide, order_number="SO1", channel="pos", store_id=store_a.id, lines=good,
                    frozen_until=due)
        args.update(kwargs)
        with pytest.raises(error):
            svc.commission_accrue(**args)

    assert ledger_state() == before


# --- release ---------------------------------------------------------------------------------


def test_release_waits_for_the_return_window_and_releases_once(catalog, rules, store_a, guide):
    due = timezone.now() + timedelta(days=7)
    accrue(guide, catalog, store_a, due=due)

    assert svc.commission_release(at=due - timedelta(seconds=1)) == 0
    assert balance(guide) == (D("13.00"), D("0.00"))

    assert svc.commission_release(at=due, batch_size=1) == 2
    assert balance(guide) == (D("0.00"), D("13.00"))
    assert svc.commission_release(at=due + timedelta(days=1)) == 0
    assert CommissionEntry.objects.filter(kind=KIND.RELEASE).count() == 2
    assert_audit_clean()


def test_release_task_releases_what_is_due(catalog, rules, store_a, guide):
    accrue(guide, catalog, store_a, due=timezone.now() - timedelta(minutes=1))
    assert tasks.commission_release() == 2
    assert balance(guide) == (D("0.00"), D("13.00"))


# --- clawback --------------------------------------------------------------------------------


def test_clawback_before_release_takes_from_frozen_and_release_pays_the_rest(catalog, rules, store_a, guide):
    due = timezone.now() + timedelta(days=7)
    accrue(guide, catalog, store_a, due=due)

    entries = svc.commission_clawback(order_number="SO1", lines=[line(catalog, "tee", "50.00")], reference="RT1")

    assert [(e.kind, e.base_amount, e.frozen_delta, e.released_delta) for e in entries] == [
        (KIND.CLAWBACK, D("50.00"), D("-3.00"), D("0.00"))]
    assert balance(guide) == (D("10.00"), D("0.00"))
    svc.commission_release(at=due)
    assert balance(guide) == (D("0.00"), D("10.00"))
    assert_audit_clean()


def test_frozen_then_released_then_clawed_back_after_release(catalog, rules, store_a, guide):
    due = timezone.now() + timedelta(days=7)
    accrue(guide, catalog, store_a, due=due)
    assert balance(guide) == (D("13.00"), D("0.00"))
    svc.commission_release(at=due)
    assert balance(guide) == (D("0.00"), D("13.00"))

    entries = svc.commission_clawback(order_number="SO1", lines=[line(catalog, "tee", "200.00")], reference="RT9")

    assert [(e.line_no, e.frozen_delta, e.released_delta) for e in entries] == [(1, D("0.00"), D("-12.00"))]
    assert balance(guide) == (D("0.00"), D("1.00"))
    svc.commission_clawback(order_number="SO1", fraction=D("1"), reference="RT10")
    assert balance(guide) == (D("0.00"), D("0.00"))
    totals = [e.frozen_delta + e.released_delta for e in CommissionEntry.objects.all()]
    assert sum(totals) == D("0.00")
    assert_audit_clean()


def test_partial_returns_add_up_to_the_fen(catalog, store_a, guide):
    CommissionRule.objects.create(rate_percent=D("3.00"))
    accrue(guide, catalog, store_a, lines=[line(catalog, "tee", "33.33")])  # 0.9999 -> 1.00

    clawed = [svc.commission_clawback(order_number="SO1", lines=[line(catalog, "tee", "11.11")])[0].frozen_delta
              for _ in range(3)]

    assert clawed == [D("-0.33"), D("-0.34"), D("-0.33")]
    assert balance(guide) == (D("0.00"), D("0.00"))
    assert svc.commission_clawback(order_number="SO1", lines=[line(catalog, "tee", "11.11")]) == []


def test_clawback_by_fraction(catalog, rules, store_a, guide):
    accrue(guide, catalog, store_a)

    half = svc.commission_clawback(order_number="SO1", fraction=D("0.5"))
    assert [e.frozen_delta for e in half] == [D("-6.00"), D("-0.50")]
    assert balance(guide) == (D("6.50"), D("0.00"))

    rest = svc.commission_clawback(order_number="SO1", fraction=1)
    assert [e.frozen_delta for e in rest] == [D("-6.00"), D("-0.50")]
    assert balance(guide) == (D("0.00"), D("0.00"))


def test_clawback_with_the_same_return_reference_applies_once(catalog, rules, store_a, guide):
    accrue(guide, catalog, store_a)
    first = svc.commission_clawback(order_number="SO1", fraction=D("0.5"), reference="RT1")
    before = ledger_state()

    again = svc.commission_clawback(order_number="SO1", fraction=D("0.5"), reference="RT1")

    assert [e.pk for e in again] == [e.pk for e in first]
    assert ledger_state() == before


def test_clawback_of_lines_that_earned_nothing_or_an_order_without_commission(catalog, rules, store_a, guide):
    accrue(guide, catalog, store_a)
    before = ledger_state()
    assert svc.commission_clawback(order_number="SO1", lines=[line(catalog, "shirt", "10.00")]) == []
    assert svc.commission_clawback(order_number="NO-COMMISSION", fraction=1) == []
    assert ledger_state() == before


@pytest.mark.parametrize("kwargs", [
    {}, {"fraction": D("0")}, {"fraction": D("1.5")}, {"fraction": 0.5}, {"fraction": D("NaN")},
    {"fraction": D("0.5"), "lines": [(1, None, D("1.00"))]}, {"lines": [(1, None, "1.00")]},
])
def test_bad_clawback_requests_change_nothing(catalog, rules, store_a, guide, kwargs):
    accrue(guide, catalog, store_a)
    before = ledger_state()
    with pytest.raises((InvalidClawback, InvalidCommissionLines)):
        svc.commission_clawback(order_number="SO1", **kwargs)
    assert ledger_state() == before


def test_a_fully_clawed_back_accrual_is_closed_by_a_zero_release(catalog, rules, store_a, guide):
    due = timezone.now() + timedelta(days=1)
    accrue(guide, catalog, store_a, due=due)
    svc.commission_clawback(order_number="SO1", fraction=1)

    assert svc.commission_release(at=due) == 2
    assert svc.commission_release(at=due) == 0

    assert set(CommissionEntry.objects.filter(kind=KIND.RELEASE).values_list("released_delta", flat=True)) == {
        D("0.00")}
    assert balance(guide) == (D("0.00"), D("0.00"))
    assert_audit_clean()


# --- the ledger stays a ledger ---------------------------------------------------------------


def test_entries_cannot_be_edited_or_deleted(catalog, rules, store_a, guide):
    entry = accrue(guide, catalog, store_a)[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        CommissionEntry.objects.filter(pk=entry.pk).update(frozen_delta=D("99.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        CommissionEntry.objects.filter(pk=entry.pk).delete()
    assert CommissionEntry.objects.get(pk=entry.pk).frozen_delta == D("12.00")


def test_audit_flags_a_balance_that_disagrees_with_its_entries(catalog, rules, store_a, guide):
    accrue(guide, catalog, store_a)
    GuideCommissionBalance.objects.filter(guide=guide).update(frozen=D("14.00"))

    lines = [v for _, title, v in audit_run() if "commission balances" in title][0]

    assert lines == [f"guide {guide.pk}: commission frozen/released 14.00/0.00 != entries 13.00/0.00"]


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_releases_and_clawbacks_racing_keep_the_ledger_exact():
    store = StoreFactory()
    guide = StaffFactory(role=Role.GUIDE, guide_code="RACE", store=store)
    CommissionRule.objects.create(rate_percent=D("10.00"))
    sku = SkuFactory()
    due = timezone.now() - timedelta(minutes=1)
    for i in range(12):
        svc.commission_accrue(guide=guide, order_number=f"SO{i}", channel="web", store_id=None,
                              lines=[(sku.id, None, D("100.00")), (sku.id, None, D("50.00"))], frozen_until=due)
    assert svc.commission_balance(guide) == (D("180.00"), D("0.00"))

    jobs = [(lambda: svc.commission_release(batch_size=3)) for _ in range(4)]
    jobs += [(lambda i=i: svc.commission_clawback(order_number=f"SO{i}", fraction=1, reference="RT"))
             for i in range(4)]
    outcomes = run_at_once(jobs)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sum(outcomes[:4]) == 24  # every accrual released exactly once
    assert CommissionEntry.objects.filter(kind=KIND.RELEASE).count() == 24
    assert svc.commission_balance(guide) == (D("0.00"), D("120.00"))  # 8 kept orders × 15.00
    assert_audit_clean()


# --- admin -----------------------------------------------------------------------------------


def test_admin_commission_rules_are_editable_and_the_ledger_is_not(client, hq_user, catalog, rules, store_a, guide):
    client.force_login(hq_user)
    accrue(guide, catalog, store_a)
    entry = CommissionEntry.objects.first()

    for name in ("commissionentry", "guidecommissionbalance", "commissionrule"):
        assert client.get(reverse(f"admin:members_{name}_changelist")).status_code == 200
    assert client.get(reverse("admin:members_commissionentry_change", args=[entry.pk])).status_code == 200
    assert client.post(reverse("admin:members_commissionentry_delete", args=[entry.pk])).status_code == 403
    assert client.get(reverse("admin:members_commissionentry_add")).status_code == 403

    response = client.post(reverse("admin:members_commissionrule_add"), {
        "sku": catalog["sneaker"].pk, "rate_percent": "8.00", "is_active": "on"})
    assert response.status_code == 302
    assert svc.commission_rates(store_id=store_a.id, lines=[line(catalog, "sneaker", "1.00")]) == [D("8.00")]
