"""Provider fees (手续费 / 服务费) and net settlement, end to end through the fakes' bill downloads.

The beat job downloads each provider's bill; every matched row keeps the provider's fee and the fee
at the agreed rate (``ProviderFeeRate``, kept by finance in the admin); a fee off the rate is a
mismatch in the admin like any other; HQ sees payments, refunds, fees and net per day; the audit
catches run totals that no longer add up.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from payments import bills, services
from payments.reconciliation.models import Mismatch, ProviderFeeRate, ReconciliationRun, StatementRow
from tests.fakes.wechatpay import MCHID
from tests.test_payment_providers import alipay, captured, wechat  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


def rate(provider: str, value: str, merchant: str = "") -> ProviderFeeRate:
    return ProviderFeeRate.objects.create(provider=provider, merchant_id=merchant, rate=D(value),
                                          valid_from=date(2026, 1, 1))


def a_day_of_business(wechat, alipay):  # noqa: F811
    """WeChat: 100.00 paid, 40.00 of it refunded; Alipay: 66.60 paid.  The fakes charge 0.6%."""
    w = captured(wechat, "wechat_pay", "100.00")
    refund = services.refund_create(payment=w, amount="40.00", reason="return")
    services.refund_process(refund_id=refund.pk)
    headers, body = wechat.settle_refund(refund.number)
    services.notification_handle(provider="wechat_pay", headers=headers, body=body)
    captured(alipay, "alipay", "66.60")
    outcomes = bills.bills_reconcile(day=timezone.localdate())
    return {o.provider: o.runs[0] for o in outcomes}


def test_fees_and_net_reconcile_at_the_agreed_rate(wechat, alipay, admin_client):  # noqa: F811
    rate("wechat_pay", "0.006")
    rate("alipay", "0.006")

    runs = a_day_of_business(wechat, alipay)

    w, a = runs["wechat_pay"], runs["alipay"]
    # WeChat: 0.60 charged on the payment, 0.24 given back with the refund.
    assert (w.their_payments, w.their_refunds, w.their_fees, w.their_net) == (
        D("100.00"), D("40.00"), D("0.36"), D("59.64"))
    assert sorted(StatementRow.objects.filter(run=w).values_list("kind", "fee", "expected_fee")) == [
        ("payment", D("0.60"), D("0.60")), ("refund", D("-0.24"), D("-0.24"))]
    # Alipay prints 服务费 negative when charged: read as 0.40 charged.
    assert (a.their_fees, a.their_net) == (D("0.40"), D("66.20"))
    assert w.fee_mismatches == a.fee_mismatches == 0 and not Mismatch.objects.exists()
    call_command("audit_ledgers")

    # HQ: the run list links to fees and net per day.
    runs_page = admin_client.get(reverse("admin:payments_reconciliationrun_changelist"))
    assert reverse("admin:payments_reconciliationrun_days") in runs_page.content.decode()
    page = admin_client.get(reverse("admin:payments_reconciliationrun_days"))
    days = {(d.provider, d.day): d for d in page.context["days"]}
    today = timezone.localdate()
    assert (days["wechat_pay", today].fees, days["wechat_pay", today].net) == (D("0.36"), D("59.64"))
    assert (days["alipay", today].payments, days["alipay", today].net) == (D("66.60"), D("66.20"))
    assert "59.64" in page.content.decode() and "66.20" in page.content.decode()


def test_a_fee_off_the_agreed_rate_is_a_mismatch_in_the_admin(wechat, alipay, admin_client):  # noqa: F811
    rate("wechat_pay", "0.006")
    rate("wechat_pay", "0.0038", merchant=MCHID)  # this merchant negotiated 0.38%: it wins
    rate("alipay", "0.006")

    runs = a_day_of_business(wechat, alipay)

    fee_mismatches = Mismatch.objects.filter(kind="fee_mismatch").order_by("their_amount")
    assert [(m.their_amount, m.our_amount) for m in fee_mismatches] == [(D("-0.24"), D("-0.15")),
                                                                         (D("0.60"), D("0.38"))]
    assert {m.payment.provider for m in fee_mismatches} == {"wechat_pay"}
    assert runs["wechat_pay"].fee_mismatches == 2 and runs["alipay"].fee_mismatches == 0
    page = admin_client.get(reverse("admin:payments_mismatch_changelist") + "?kind__exact=fee_mismatch")
    assert page.status_code == 200 and page.context["cl"].result_count == 2
    days = admin_client.get(reverse("admin:payments_reconciliationrun_days")).context["days"]
    assert {d.provider: d.fee_mismatches for d in days} == {"wechat_pay": 2, "alipay": 0}


def test_without_an_agreed_rate_fees_are_recorded_but_not_judged(wechat, alipay):  # noqa: F811
    runs = a_day_of_business(wechat, alipay)

    assert runs["wechat_pay"].their_fees == D("0.36")
    assert not StatementRow.objects.filter(expected_fee__isnull=False).exists()
    assert not Mismatch.objects.exists()


def test_finance_keeps_the_rates_in_the_admin(admin_client):
    page = admin_client.post(reverse("admin:payments_providerfeerate_add"), {
        "provider": "wechat_pay", "merchant_id": MCHID, "rate": "0.0038", "valid_from": "2026-12-01", "note": "签约"})
    assert page.status_code == 302
    assert ProviderFeeRate.objects.get().rate == D("0.0038")
    refused = admin_client.post(reverse("admin:payments_providerfeerate_add"), {
        "provider": "alipay", "rate": "0.5", "valid_from": "2026-12-01"})
    assert refused.status_code == 200 and ProviderFeeRate.objects.count() == 1


@pytest.mark.parametrize("planted", ["row_fee", "run_net"])
def test_the_audit_fails_when_a_runs_fees_or_net_no_longer_add_up(wechat, alipay, planted):  # noqa: F811
    runs = a_day_of_business(wechat, alipay)
    call_command("audit_ledgers")
    run = runs["wechat_pay"]
    if planted == "row_fee":
        StatementRow.objects.filter(run=run, kind="payment").update(fee=D("0.06"))
    else:
        ReconciliationRun.objects.filter(pk=run.pk).update(their_net=run.their_net + D("1.00"))

    with pytest.raises(CommandError, match="1 invariant check"):
        call_command("audit_ledgers")
