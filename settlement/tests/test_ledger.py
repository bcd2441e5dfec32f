"""The party ledger: a settled day posts balanced journals per party; payouts never exceed the
released balance, even when requested at once; the audits catch a planted bad posting."""

import io
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin import helpers
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django.urls import reverse

from settlement import ledger, services
from settlement.models import LedgerPosting, Party, PartyShare, Payout, SettlementDay, WalletTransfer
from settlement.tests.scenario import build_day, end_of_today, shop
from stores.tests.factories import StoreFactory, UserFactory
from tests.concurrency import run_at_once

D = Decimal


def settle_today() -> SettlementDay:
    [day] = services.settlement_run(until=services.business_day_of(end_of_today()) - timedelta(days=1),
                                    now=end_of_today())
    return day


def posted(party, account) -> Decimal:
    return LedgerPosting.objects.filter(party=party, account=account).aggregate(s=Sum("amount"))["s"] or D("0")


@pytest.mark.django_db
def test_a_settled_day_posts_every_party_in_balanced_journals():
    s = shop()
    build_day(s)
    day = settle_today()
    a, b, c = s["a"], s["b"], s["c"]
    ecom, clearing = ledger.ecommerce(), ledger.clearing()

    # each journal sums to zero; each balance is the sum of the party's postings
    for journal in set(LedgerPosting.objects.values_list("journal", flat=True)):
        assert LedgerPosting.objects.filter(journal=journal).aggregate(s=Sum("amount"))["s"] == 0
    for party in Party.objects.all():
        assert party.balance == LedgerPosting.objects.filter(party=party).aggregate(s=Sum("amount"))["s"]

    # the split: each store's and e-commerce's share of the day, against clearing (−net)
    for store in (a, b, c):
        assert posted(ledger.store_party(store.pk), "split") == \
            PartyShare.objects.filter(store=store).aggregate(s=Sum("total"))["s"]
    assert posted(clearing, "split") == -day.net
    # the coupon on A's pickup was borne by e-commerce: A is made whole by 6.15
    assert posted(ledger.store_party(a.pk), "coupon") == D("6.15") == -posted(ecom, "coupon")
    # wallet money recharged at C and spent at B: C owes B 390.00
    transfer = WalletTransfer.objects.get()
    assert transfer.principal + transfer.bonus == D("390.00")
    assert posted(ledger.store_party(b.pk), "wallet") == D("390.00") == -posted(ledger.store_party(c.pk), "wallet")

    call_command("audit_ledgers", stdout=io.StringIO())
    # settling again posts nothing more
    before = list(LedgerPosting.objects.order_by("pk").values_list("pk", "amount"))
    services.settlement_run(until=day.day, now=end_of_today())
    assert list(LedgerPosting.objects.order_by("pk").values_list("pk", "amount")) == before


@pytest.fixture
def funded(db):
    """A store owed 100.00 by a posted journal, and an HQ user."""
    store = StoreFactory(code="PO1")
    party = ledger.store_party(store.pk)
    ledger._journal(day=None, account="wallet", amounts={party.pk: D("100.00"), ledger.ecommerce().pk: D("-100.00")})
    return {"party": party, "hq": UserFactory(username="hq-payout", is_staff=True, is_superuser=True)}


@pytest.mark.django_db
def test_a_payout_is_requested_then_approved_within_the_balance(funded):
    party, hq = funded["party"], funded["hq"]
    first = ledger.payout_request(party=party, amount=D("60.00"), actor=hq)
    second = ledger.payout_request(party=party, amount=D("60.00"), actor=hq)
    party.refresh_from_db()
    assert party.balance == D("100.00")  # a request moves nothing

    ledger.payout_approve(payout=first, actor=hq)
    with pytest.raises(ledger.PayoutExceedsBalance):
        ledger.payout_approve(payout=second, actor=hq)
    with pytest.raises(ledger.PayoutDecided):
        ledger.payout_approve(payout=first, actor=hq)
    party.refresh_from_db()
    second.refresh_from_db()
    assert party.balance == D("40.00") and second.status == "requested"
    assert posted(party, "payout") == D("-60.00") and posted(ledger.clearing(), "payout") == D("60.00")
    call_command("audit_ledgers", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_concurrent_payouts_never_exceed_the_released_balance(funded):
    party = funded["party"]
    payouts = [ledger.payout_request(party=party, amount=D("30.00")) for _ in range(6)]

    outcomes = run_at_once([lambda p=p: ledger.payout_approve(payout=p.pk) for p in payouts])

    approved = [o for o in outcomes if isinstance(o, Payout)]
    refused = [o for o in outcomes if isinstance(o, ledger.PayoutExceedsBalance)]
    assert (len(approved), len(refused)) == (3, 3), outcomes
    party.refresh_from_db()
    assert party.balance == D("10.00")
    assert Payout.objects.filter(status="approved").aggregate(s=Sum("amount"))["s"] == D("90.00")
    call_command("audit_ledgers", stdout=io.StringIO())


# --- the audits fail on a planted bad posting ----------------------------------------------------


def audit_fails(match: str):
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=out, stderr=out)
    assert match in out.getvalue()


@pytest.mark.django_db
def test_audit_catches_an_unbalanced_journal(funded):
    LedgerPosting.objects.create(journal=uuid.uuid4(), party=funded["party"], account="split", amount=D("5.00"))
    Party.objects.filter(pk=funded["party"].pk).update(balance=D("105.00"))  # balance kept consistent
    audit_fails("postings sum to")


@pytest.mark.django_db
def test_audit_catches_a_balance_that_is_not_its_postings(funded):
    Party.objects.filter(pk=funded["party"].pk).update(balance=D("150.00"))
    audit_fails("balance")


@pytest.mark.django_db
def test_audit_catches_a_payout_beyond_what_was_released(funded):
    party = funded["party"]
    journal = uuid.uuid4()
    LedgerPosting.objects.bulk_create([
        LedgerPosting(journal=journal, party=party, account="payout", amount=D("-120.00")),
        LedgerPosting(journal=journal, party=ledger.clearing(), account="payout", amount=D("120.00"))])
    Party.objects.filter(pk=party.pk).update(balance=D("-20.00"))
    Party.objects.filter(kind="clearing").update(balance=D("120.00"))
    audit_fails("paid out")


@pytest.mark.django_db
def test_audit_catches_split_postings_that_differ_from_the_days_net():
    s = shop()
    build_day(s)
    day = settle_today()
    call_command("audit_ledgers", stdout=io.StringIO())
    posting = LedgerPosting.objects.filter(day=day, account="split", party__kind="store").first()
    clearing = ledger.clearing()
    # a balanced journal that moves split money to a store out of thin air (clearing pays it)
    journal = uuid.uuid4()
    LedgerPosting.objects.bulk_create([
        LedgerPosting(journal=journal, day=day, party_id=posting.party_id, account="split", amount=D("1.00"),
                      reference="planted"),
        LedgerPosting(journal=journal, day=day, party=clearing, account="split", amount=D("-1.00"),
                      reference="planted")])
    Party.objects.filter(pk=posting.party_id).update(balance=posting.party.balance + D("1.00"))
    Party.objects.filter(pk=clearing.pk).update(balance=clearing.balance - D("1.00"))
    audit_fails("split postings")


# --- statements and the admin --------------------------------------------------------------------


@pytest.mark.django_db
def test_monthly_statement_of_a_party(funded):
    party = funded["party"]
    payout = ledger.payout_request(party=party, amount=D("25.00"))
    ledger.payout_approve(payout=payout)
    today = date.today()
    statement = ledger.party_statement(party=party, month=today)
    assert statement.opening == D("0.00")
    assert statement.by_account == {"wallet": D("100.00"), "payout": D("-25.00")}
    assert statement.closing == D("75.00")


@pytest.mark.django_db
def test_admin_requests_and_approves_a_payout(client, funded):
    party, hq = funded["party"], funded["hq"]
    client.force_login(hq)
    added = client.post(reverse("admin:settlement_payout_add"), {"party": party.pk, "amount": "70.00",
                                                                 "note": "十二月"})
    assert added.status_code == 302, added.content
    too_much = ledger.payout_request(party=party, amount=D("50.00"))
    payout = Payout.objects.get(amount=D("70.00"))
    response = client.post(reverse("admin:settlement_payout_changelist"), {
        "action": "approve", helpers.ACTION_CHECKBOX_NAME: [payout.pk, too_much.pk]})
    assert response.status_code == 302
    payout.refresh_from_db()
    too_much.refresh_from_db()
    assert (payout.status, payout.decided_by, too_much.status) == ("approved", hq, "requested")
    page = client.get(reverse("admin:settlement_party_change", args=[party.pk]))
    assert page.status_code == 200 and "30.00" in page.content.decode()
