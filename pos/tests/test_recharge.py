"""Wallet recharges at the counter: a real captured payment in the shift, refundable with a manager's approval."""

import re
import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from members.models import RechargePackage, WalletRecharge
from payments import shifts
from payments.models import ApprovalLog, Payment, Refund

from .conftest import MANAGER_PIN

pytestmark = pytest.mark.django_db

D = Decimal
WECHAT = "134567890123456789"
DECLINED = "134567890123450001"


@pytest.fixture
def package():
    return RechargePackage.objects.create(name="充500送50", pay_amount=D("500.00"), bonus_amount=D("50.00"))


def page_uuid(client, phone="") -> str:
    html = client.get(reverse("pos:recharge"), {"phone": phone}).content.decode()
    return re.search(r'name="client_uuid" value="([^"]+)"', html).group(1)


def test_the_sale_screen_leads_to_the_recharge_page(client_a, shift_a, member, stocked):
    client_a.post(reverse("pos:sale_member"), {"phone": member.phone}, HTTP_HX_REQUEST="true")

    sale = client_a.get(reverse("pos:sale")).content.decode()
    link = re.search(r'href="([^"]+)" data-testid="member-recharge"', sale).group(1)
    page = client_a.get(link.replace("&amp;", "&"))

    assert page.status_code == 200 and "¥" in page.content.decode() and member.phone in page.content.decode()


def test_a_cash_recharge_credits_the_wallet_and_lands_in_the_drawer(client_a, store_a, shift_a, member, package):
    before = member.wallet_principal, member.wallet_bonus
    uid = page_uuid(client_a, member.phone)
    data = {"client_uuid": uid, "phone": member.phone, "package": package.pk, "tender": "cash"}

    response = client_a.post(reverse("pos:recharge"), data)
    again = client_a.post(reverse("pos:recharge"), data)  # a double submit

    assert response.status_code == 302 and again.status_code == 302
    member.refresh_from_db()
    assert (member.wallet_principal, member.wallet_bonus) == (before[0] + D("500.00"), before[1] + D("50.00"))
    payment = Payment.objects.get(reference=f"WR-{uuid.UUID(uid).hex}")
    assert (payment.tender, payment.amount, payment.status, payment.store) == ("cash", D("500.00"), "captured",
                                                                               store_a)
    recharge = WalletRecharge.objects.get(reference=payment.number)
    assert (recharge.store, recharge.principal, recharge.bonus) == (store_a, D("500.00"), D("50.00"))
    assert shifts.shift_expected_cash(shift_a) == D("700.00")  # float 200 + 500
    report = shifts.shift_z_report(shift_a)
    assert [(t.tender, t.amount) for t in report.payments] == [("cash", D("500.00"))]
    assert "充500送50" in client_a.get(response["Location"]).content.decode()  # the lot, refundable


def test_a_card_recharge_needs_the_slip_and_an_amount_gets_no_bonus(client_a, shift_a, member):
    uid = page_uuid(client_a)
    no_slip = client_a.post(reverse("pos:recharge"), {"client_uuid": uid, "phone": member.phone, "amount": "300",
                                                       "tender": "unionpay_card"})
    both = client_a.post(reverse("pos:recharge"), {"client_uuid": uid, "phone": member.phone, "amount": "300",
                                                    "package": 1, "tender": "cash"})
    nobody = client_a.post(reverse("pos:recharge"), {"client_uuid": uid, "phone": "13999999999", "amount": "300",
                                                      "tender": "cash"})
    assert no_slip.status_code == 422 and both.status_code == 422 and nobody.status_code == 422
    assert WalletRecharge.objects.count() == 1  # the fixture's own

    done = client_a.post(reverse("pos:recharge"), {"client_uuid": uid, "phone": member.phone, "amount": "300",
                                                    "tender": "unionpay_card", "card_reference": "SLIP-77"})

    assert done.status_code == 302
    payment = Payment.objects.get(provider_txn_id="SLIP-77")
    recharge = WalletRecharge.objects.get(reference=payment.number)
    assert (recharge.principal, recharge.bonus) == (D("300.00"), D("0.00"))


def test_a_payment_code_recharge_and_a_declined_code(client_a, shift_a, member, package):
    declined = client_a.post(reverse("pos:recharge"), {"client_uuid": page_uuid(client_a), "phone": member.phone,
                                                        "package": package.pk, "tender": "code",
                                                        "payment_code": DECLINED})
    done = client_a.post(reverse("pos:recharge"), {"client_uuid": page_uuid(client_a), "phone": member.phone,
                                                    "package": package.pk, "tender": "code", "payment_code": WECHAT})

    assert declined.status_code == 422
    assert done.status_code == 302
    payment = Payment.objects.get(status="captured", tender="wechat_pay")
    assert payment.reference.startswith("WR-") and payment.member_id == member.pk
    assert WalletRecharge.objects.get(reference=payment.number).bonus == D("50.00")


def test_no_recharge_without_an_open_shift(client_a, member, package):
    response = client_a.post(reverse("pos:recharge"), {"client_uuid": page_uuid(client_a), "phone": member.phone,
                                                        "package": package.pk, "tender": "cash"})

    assert response.status_code == 422
    assert not Payment.objects.filter(reference__startswith="WR-").exists()


def test_refunding_the_unspent_principal_needs_a_manager(client_a, store_a, shift_a, manager_a, member, package):
    uid = page_uuid(client_a)
    client_a.post(reverse("pos:recharge"), {"client_uuid": uid, "phone": member.phone, "package": package.pk,
                                            "tender": "cash"})
    payment = Payment.objects.get(reference=f"WR-{uuid.UUID(uid).hex}")
    recharge = WalletRecharge.objects.get(reference=payment.number)
    url = reverse("pos:recharge_refund", args=[recharge.pk])

    asked = client_a.post(url)
    wrong = client_a.post(url, {"pin": "0000"})
    refunds_before = Refund.objects.count()
    member.refresh_from_db()
    balance_before = member.wallet_principal
    done = client_a.post(url, {"pin": MANAGER_PIN, "approval_reason": "搬家"})

    assert asked.status_code == 200 and "approval-pin" in asked.content.decode()
    assert wrong.status_code == 422 and refunds_before == 0
    assert done.status_code == 302
    refund = Refund.objects.get(payment=payment)
    assert (refund.amount, refund.method, refund.store) == (D("500.00"), "cash", store_a)
    member.refresh_from_db()
    assert member.wallet_principal == balance_before - D("500.00")
    recharge.refresh_from_db()
    assert recharge.principal_remaining == 0 and recharge.bonus_remaining == 0
    log = ApprovalLog.objects.get(action=ApprovalLog.Action.RECHARGE_REFUND)
    assert (log.manager, log.reference) == (manager_a, payment.number)
    assert shifts.shift_expected_cash(shift_a) == D("200.00")  # 500 in, 500 out
    assert client_a.post(url, {"pin": MANAGER_PIN}).status_code == 422  # nothing left to refund
