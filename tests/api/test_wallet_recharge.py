"""POST /api/v1/members/{id}/wallet/recharges/: a provider payment whose capture credits the wallet, once."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from members.models import Member, RechargePackage, WalletRecharge
from members.services import members
from o2o.apiauth import MEMBERS_READ
from o2o.models import OutboxMessage
from o2o.outbox import outbox_dispatch
from payments.models import Payment
from tests.api.conftest import bearer, idem, notify

pytestmark = pytest.mark.django_db

D = Decimal


def dispatch_captured() -> None:
    """What the outbox relay does after commit: run the consumers of the captured payments."""
    for message in OutboxMessage.objects.filter(topic="payment.captured").order_by("id"):
        outbox_dispatch(message_id=message.pk)


@pytest.fixture
def member():
    return members.member_register(phone="13800138000", channel="mini_program")


def test_a_package_recharge_is_credited_when_the_provider_says_paid(partner, member):
    _key, client = partner
    package = RechargePackage.objects.create(name="500+50", pay_amount=D("500.00"), bonus_amount=D("50.00"))
    url = f"/api/v1/members/{member.pk}/wallet/recharges/"

    started = client.post(url, {"tender": "sandbox", "package": package.pk}, format="json", **idem())

    assert started.status_code == 201, started.content
    body = started.json()
    assert body["recharge"] is None and body["payment"]["status"] == "pending"
    assert body["payment"]["amount"] == "500.00" and body["payment"]["payment_code"]
    assert Member.objects.get(pk=member.pk).wallet_principal == 0
    payment = Payment.objects.get(pk=body["payment"]["id"])
    notify(APIClient(), payment)
    dispatch_captured()
    dispatch_captured()  # a redelivered message credits nothing more

    fresh = client.get(f"/api/v1/members/{member.pk}/").json()
    assert (fresh["wallet_principal"], fresh["wallet_bonus"]) == ("500.00", "50.00")
    payment.refresh_from_db()
    recharge = WalletRecharge.objects.get(reference=payment.number)
    assert (recharge.principal, recharge.bonus, recharge.member_id) == (D("500.00"), D("50.00"), member.pk)


def test_an_amount_recharge_gets_no_bonus(partner, member):
    _key, client = partner

    started = client.post(f"/api/v1/members/{member.pk}/wallet/recharges/", {"tender": "sandbox", "amount": "88.00"},
                          format="json", **idem())
    notify(APIClient(), Payment.objects.get(pk=started.json()["payment"]["id"]))
    dispatch_captured()

    member.refresh_from_db()
    assert (member.wallet_principal, member.wallet_bonus) == (D("88.00"), D("0.00"))


def test_recharge_errors(partner, member, make_key):
    _key, client = partner
    url = f"/api/v1/members/{member.pk}/wallet/recharges/"
    off = RechargePackage.objects.create(name="old", pay_amount=D("100.00"), is_active=False)
    _k, reader = make_key(scopes=[MEMBERS_READ], name="reader")

    cash = client.post(url, {"tender": "cash", "amount": "10.00"}, format="json", **idem())
    both = client.post(url, {"tender": "sandbox", "amount": "10.00", "package": off.pk}, format="json", **idem())
    inactive = client.post(url, {"tender": "sandbox", "package": off.pk}, format="json", **idem())
    nobody = client.post("/api/v1/members/999999/wallet/recharges/", {"tender": "sandbox", "amount": "10.00"},
                         format="json", **idem())
    extra = client.post(url, {"tender": "sandbox", "amount": "10.00", "bonus": "5.00"}, format="json", **idem())
    no_scope = bearer(reader).post(url, {"tender": "sandbox", "amount": "10.00"}, format="json", **idem())

    assert cash.status_code == 400 and "tender" in cash.json()["fields"]
    assert both.status_code == 400 and "amount" in both.json()["fields"]
    assert inactive.status_code == 422 and inactive.json()["code"] == "recharge_package_inactive"
    assert nobody.status_code == 404 and nobody.json()["code"] == "member_not_found"
    assert extra.status_code == 400 and extra.json()["code"] == "unknown_field"
    assert no_scope.status_code == 403
    assert not Payment.objects.exists()
