"""A wallet recharge sold at the counter is money of the day: the shift, the Z report, the day's settlement
and the provider reconciliation all show it, to the fen."""

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from decimal import Decimal

from members.models import RechargePackage, WalletRecharge
from payments.models import Payment, PosShift
from payments.reconciliation.models import ReconciliationRun
from settlement import services as settlement
from settlement.models import SettlementStatement, StoreSettlement
from settlement.tests.scenario import end_of_today

pytestmark = pytest.mark.django_db

D = Decimal
WECHAT = "134567890123456789"


def page_uuid(client) -> str:
    html = client.get(reverse("pos:recharge")).content.decode()
    return re.search(r'name="client_uuid" value="([^"]+)"', html).group(1)


def test_counter_recharges_reach_the_shift_the_settlement_and_the_reconciliation(client_a, store_a, shift_a,
                                                                                 member, tmp_path):
    package = RechargePackage.objects.create(name="充500送50", pay_amount=D("500.00"), bonus_amount=D("50.00"))
    # Given two recharges sold at store A: a package in cash (500 + 50 bonus), an amount by WeChat payment code.
    cash = client_a.post(reverse("pos:recharge"), {"client_uuid": page_uuid(client_a), "phone": member.phone,
                                                    "package": package.pk, "tender": "cash"})
    code = client_a.post(reverse("pos:recharge"), {"client_uuid": page_uuid(client_a), "phone": member.phone,
                                                    "amount": "123.45", "tender": "code", "payment_code": WECHAT})
    assert cash.status_code == 302 and code.status_code == 302
    by_code = Payment.objects.get(tender="wechat_pay", status="captured")
    assert WalletRecharge.objects.filter(store=store_a).count() == 2

    # The shift: the cash is in the drawer, both tenders on the Z report; the clerk counts 700.00 and closes.
    shift_page = client_a.get(reverse("pos:shift")).content.decode()
    assert "123.45" in shift_page and "500.00" in shift_page
    closed = client_a.post(reverse("pos:shift_close"), {"count_100": "7"})
    assert closed.status_code in (200, 302)
    shift = PosShift.objects.get(pk=shift_a.pk)
    assert shift.status == PosShift.Status.CLOSED
    assert (shift.expected_cash, shift.counted_cash, shift.over_short) == (D("700.00"), D("700.00"), D("0.00"))

    # The day's settlement: the money is on store A's statement of money not tied to an order, by tender,
    # and the recharges (principal and bonus apart) and the closed shift on the store's figures.
    settlement.settlement_run(until=settlement.business_day_of(timezone.now()), now=end_of_today())
    statement = SettlementStatement.objects.get(store=store_a, channel="other")
    tenders = {t.tender: (t.payments_count, t.payments_amount) for t in statement.tenders.all()}
    assert tenders == {"cash": (1, D("500.00")), "wechat_pay": (1, D("123.45"))}
    assert statement.payments_total == D("623.45") and statement.refunds_total == D("0.00")
    figures = StoreSettlement.objects.get(store=store_a)
    assert (figures.wallet_recharged_principal, figures.wallet_recharged_bonus) == (D("623.45"), D("50.00"))
    assert (figures.shifts_closed, figures.shifts_expected_cash, figures.shifts_counted_cash) == (
        1, D("700.00"), D("700.00"))

    # The provider's statement of the day matches the code recharge exactly.
    bill = tmp_path / "sandbox-day.csv"
    bill.write_text("provider_ref,our_ref,type,amount,time\n"
                    f"{by_code.provider_txn_id},{by_code.number},payment,123.45,"
                    f"{timezone.localtime(by_code.captured_at):%Y-%m-%d %H:%M:%S}\n", encoding="utf-8")
    call_command("import_statement", str(bill), provider=by_code.provider, layout="generic",
                 stdout=io.StringIO(), stderr=io.StringIO())
    run = ReconciliationRun.objects.get()
    assert (run.matched, run.missing_ours, run.missing_theirs, run.amount_mismatches) == (1, 0, 0, 0)
    assert run.rows.get().payment == by_code

    out = io.StringIO()
    call_command("audit_ledgers", stdout=out)
    assert "all ledgers consistent" in out.getvalue()
