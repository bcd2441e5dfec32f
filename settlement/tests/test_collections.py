"""A store's party balance is net of the money it collected at its own counter: that money belongs to
HQ, so the store is owed its share less what it already holds, and no payout goes beyond that."""

import io
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum

from settlement import ledger, services
from settlement.models import LedgerPosting, Party, Payout
from settlement.tests.scenario import build_day, end_of_today, shop
from settlement.tests.test_ledger import audit_fails, posted
from stores.tests.factories import StoreFactory
from tests.concurrency import run_at_once

D = Decimal


def settle_today():
    [day] = services.settlement_run(until=services.business_day_of(end_of_today()) - timedelta(days=1),
                                    now=end_of_today())
    return day


@pytest.mark.django_db
def test_a_settled_day_posts_what_each_store_collected_against_its_share():
    s = shop()
    build_day(s)
    settle_today()
    a, b, c = (ledger.store_party(s[k].pk) for k in "abc")

    # By hand.  A: counter sale 299.99 cash, one shirt handed back for 100.00 cash → holds 199.99.
    # B: 390.00 wallet (recharged at C: C answers for it through the wallet journal) + 33.33 cash for
    # the cap + 66.67 card for the exchange difference; the points and the exchange credit are no money.
    # C: the recharge is the member's money until spent, and its online order was paid online.
    assert posted(a, "collection") == D("-199.99")
    assert posted(b, "collection") == D("-490.00")
    assert posted(c, "collection") == D("0")
    assert posted(ledger.clearing(), "collection") == D("689.99")

    # each balance is what the store is owed net of what it holds
    for party in (a, b, c):
        party.refresh_from_db()
        gross = LedgerPosting.objects.filter(party=party).exclude(account="collection") \
            .aggregate(s=Sum("amount"))["s"] or D("0")
        assert party.balance == gross + posted(party, "collection")
    a.refresh_from_db()
    # A's shares include its own counter sale (199.99), which it already holds in cash: a payout of
    # the gross figure is refused, the net one goes through
    gross_a = a.balance + D("199.99")
    too_much = ledger.payout_request(party=a, amount=gross_a)
    with pytest.raises(ledger.PayoutExceedsBalance):
        ledger.payout_approve(payout=too_much)
    ledger.payout_approve(payout=ledger.payout_request(party=a, amount=a.balance))
    a.refresh_from_db()
    assert a.balance == D("0.00")
    call_command("audit_ledgers", stdout=io.StringIO())


@pytest.fixture
def netted(db):
    """A store whose shares came to 100.00 and which collected 40.00 at its counter: owed 60.00."""
    store = StoreFactory(code="NET1")
    party = ledger.store_party(store.pk)
    clearing = ledger.clearing()
    ledger._journal(day=None, account="split", amounts={party.pk: D("100.00"), clearing.pk: D("-100.00")})
    ledger._journal(day=None, account="collection", amounts={party.pk: D("-40.00"), clearing.pk: D("40.00")})
    return party


@pytest.mark.django_db(transaction=True)
def test_concurrent_payouts_never_exceed_the_balance_net_of_collections(netted):
    payouts = [ledger.payout_request(party=netted, amount=D("25.00")) for _ in range(5)]

    outcomes = run_at_once([lambda p=p: ledger.payout_approve(payout=p.pk) for p in payouts])

    approved = [o for o in outcomes if isinstance(o, Payout)]
    refused = [o for o in outcomes if isinstance(o, ledger.PayoutExceedsBalance)]
    assert (len(approved), len(refused)) == (2, 3), outcomes
    netted.refresh_from_db()
    assert netted.balance == D("10.00")
    assert Payout.objects.filter(status="approved").aggregate(s=Sum("amount"))["s"] == D("50.00")
    call_command("audit_ledgers", stdout=io.StringIO())


@pytest.mark.django_db
def test_audit_catches_a_payout_within_the_gross_share_but_beyond_the_net(netted):
    # planted: 80.00 paid out — less than the 100.00 share, more than the 60.00 owed net of the cash held
    clearing = ledger.clearing()
    journal = uuid.uuid4()
    LedgerPosting.objects.bulk_create([
        LedgerPosting(journal=journal, party=netted, account="payout", amount=D("-80.00")),
        LedgerPosting(journal=journal, party=clearing, account="payout", amount=D("80.00"))])
    Party.objects.filter(pk=netted.pk).update(balance=D("-20.00"))
    Party.objects.filter(pk=clearing.pk).update(balance=clearing.balance + D("80.00"))
    audit_fails("released net of collections 60.00")


@pytest.mark.django_db
def test_audit_catches_a_day_whose_collections_were_not_posted():
    s = shop()
    build_day(s)
    day = settle_today()
    call_command("audit_ledgers", stdout=io.StringIO())
    # planted: A's collection journal undone (balanced, balances kept consistent), as a posting model
    # that ignores the counter's cash would leave it
    a = ledger.store_party(s["a"].pk)
    rows = LedgerPosting.objects.filter(day=day, account="collection", party__in=[a, ledger.clearing()])
    journal = uuid.uuid4()
    LedgerPosting.objects.bulk_create([
        LedgerPosting(journal=journal, day=day, party=a, account="collection", amount=D("199.99"),
                      reference="planted"),
        LedgerPosting(journal=journal, day=day, party=ledger.clearing(), account="collection",
                      amount=D("-199.99"), reference="planted")])
    Party.objects.filter(pk=a.pk).update(balance=a.balance + D("199.99"))
    clearing = ledger.clearing()
    Party.objects.filter(pk=clearing.pk).update(balance=clearing.balance - D("199.99"))
    assert rows.exists()
    audit_fails("collected 199.99, collection postings 0")
