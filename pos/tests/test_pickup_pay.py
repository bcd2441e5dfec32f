"""Pay at pickup: an unpaid online pickup order is paid at the counter, then handed over."""

import io
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from members.codes import member_code_mint
from members.services import members

from orders import services as order_services
from orders.models import Channel, Fulfillment, Order, Status
from orders.services import LineIn
from payments import shifts
from payments.models import Payment

pytestmark = pytest.mark.django_db


def unpaid_pickup(store, sku, qty=1):
    return order_services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP, store=store,
                                      external_id=uuid.uuid4().hex[:12], customer_name="王芳",
                                      lines=[LineIn(sku.id, qty)]).order


def test_an_unpaid_pickup_order_is_paid_in_cash_then_handed_over(client_a, store_a, stocked, shift_a):
    shirt, _ = stocked
    order = unpaid_pickup(store_a, shirt)

    found = client_a.post(reverse("pos:pickup"), {"code": order.pickup_code})
    short = client_a.post(reverse("pos:pickup_pay"), {"code": order.pickup_code, "tender": "cash",
                                                      "cash_tendered": "50"})
    paid = client_a.post(reverse("pos:pickup_pay"), {"code": order.pickup_code, "tender": "cash",
                                                     "cash_tendered": "100"})
    again = client_a.post(reverse("pos:pickup_pay"), {"code": order.pickup_code, "tender": "cash",
                                                      "cash_tendered": "100"})
    handed = client_a.post(reverse("pos:pickup_handover"), {"code": order.pickup_code})

    assert found.status_code == 200 and 'data-testid="pickup-pay"' in found.content.decode()
    assert short.status_code == 422
    assert paid.status_code == 200 and "1.00" in paid.content.decode()  # change from 100 on 99
    assert again.status_code == 422  # paid already: nothing taken twice
    assert handed.status_code == 200
    order.refresh_from_db()
    assert order.status == Status.PICKED_UP and order.paid_total == Decimal("99.00")
    payment = Payment.objects.get(reference=order.number)
    assert (payment.tender, payment.store) == ("cash", store_a)
    assert shifts.shift_expected_cash(shift_a) == Decimal("299.00")  # float 200 + 99


def test_a_card_at_pickup_needs_its_slip_and_another_store_cannot_take_it(client_a, client_b, store_a, stocked,
                                                                         shift_a, shift_b):
    shirt, _ = stocked
    order = unpaid_pickup(store_a, shirt)

    elsewhere = client_b.post(reverse("pos:pickup_pay"), {"code": order.pickup_code, "tender": "cash",
                                                          "cash_tendered": "99"})
    no_slip = client_a.post(reverse("pos:pickup_pay"), {"code": order.pickup_code, "tender": "unionpay_card"})
    wallet = client_a.post(reverse("pos:pickup_pay"), {"code": order.pickup_code, "tender": "wallet"})
    card = client_a.post(reverse("pos:pickup_pay"), {"code": order.pickup_code, "tender": "unionpay_card",
                                                     "card_reference": "SLIP-9"})

    assert elsewhere.status_code == 422 and no_slip.status_code == 422 and wallet.status_code == 422
    assert card.status_code == 200
    assert Order.objects.get(pk=order.pk).status == Status.READY_FOR_PICKUP
    assert Payment.objects.get(reference=order.number).provider_txn_id == "SLIP-9"


# --- any counter tender: payment code, wallet and points -------------------------------------------

WECHAT = "134567890123456789"  # a WeChat Pay code the sandbox accepts
DECLINED = "134567890123450001"  # the sandbox declines it: insufficient balance


def _audit_clean():
    out = io.StringIO()
    call_command("audit_ledgers", stdout=out)
    assert "all ledgers consistent" in out.getvalue()


def test_a_pickup_order_is_paid_with_the_customers_payment_code(client_a, store_a, stocked, shift_a):
    shirt, _ = stocked
    order = unpaid_pickup(store_a, shirt)

    declined = client_a.post(reverse("pos:pickup_pay"), {"code": order.pickup_code, "tender": "payment_code",
                                                         "payment_code": DECLINED})
    assert declined.status_code == 422
    assert Order.objects.get(pk=order.pk).status == Status.PENDING_PAYMENT
    assert not Payment.objects.filter(status=Payment.Status.CAPTURED).exists()

    paid = client_a.post(reverse("pos:pickup_pay"), {"code": order.pickup_code, "tender": "payment_code",
                                                     "payment_code": WECHAT})
    again = client_a.post(reverse("pos:pickup_pay"), {"code": order.pickup_code, "tender": "payment_code",
                                                      "payment_code": WECHAT})
    handed = client_a.post(reverse("pos:pickup_handover"), {"code": order.pickup_code})

    assert paid.status_code == 200 and "99.00" in paid.content.decode()
    assert again.status_code == 422  # paid already: the code is not charged twice
    assert handed.status_code == 200
    order.refresh_from_db()
    assert order.status == Status.PICKED_UP and order.paid_total == Decimal("99.00")
    captured = Payment.objects.get(status=Payment.Status.CAPTURED)
    assert (captured.reference, captured.tender, captured.provider, captured.store, captured.amount) == (
        order.number, "wechat_pay", "sandbox", store_a, Decimal("99.00"))
    z_report = {line.tender: line.amount for line in shifts.shift_z_report(shift_a).payments}
    assert z_report.get("wechat_pay") == Decimal("99.00")
    _audit_clean()


def test_wallet_and_points_at_pickup_need_the_members_dynamic_code(client_a, store_a, stocked, shift_a, member):
    shirt, _ = stocked
    other = members.member_register(phone="13900139001", channel="pos", store_id=store_a.pk)
    order = order_services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP,
                                       store=store_a, external_id=uuid.uuid4().hex[:12], member=member,
                                       lines=[LineIn(shirt.id, 1)]).order
    wallet_before = member.wallet_balance
    points_before = member.points_available
    url = reverse("pos:pickup_pay")

    found = client_a.post(reverse("pos:pickup"), {"code": order.pickup_code}).content.decode()
    no_code = client_a.post(url, {"code": order.pickup_code, "tender": "wallet"})
    static_code = client_a.post(url, {"code": order.pickup_code, "tender": "wallet",
                                      "member_code": "o2o:member:+8613800138000"})
    someone_else = client_a.post(url, {"code": order.pickup_code, "tender": "points",
                                       "member_code": member_code_mint(member=other).code})
    assert 'name="member_code"' in found and 'value="points"' in found
    assert no_code.status_code == 422 and static_code.status_code == 422 and someone_else.status_code == 422
    assert not Payment.objects.filter(reference=order.number).exists()

    # 2,000 points pay 20.00; the same code cannot be used twice; a fresh one pays the rest from the wallet.
    code = member_code_mint(member=member).code
    points_paid = client_a.post(url, {"code": order.pickup_code, "tender": "points", "member_code": code,
                                      "points": "2000"})
    reused = client_a.post(url, {"code": order.pickup_code, "tender": "wallet", "member_code": code})
    assert points_paid.status_code == 200 and "79.00" in points_paid.content.decode()  # still due
    assert reused.status_code == 422
    assert Order.objects.get(pk=order.pk).status == Status.PENDING_PAYMENT
    too_much = client_a.post(url, {"code": order.pickup_code, "tender": "wallet", "amount": "80.00",
                                   "member_code": member_code_mint(member=member).code})
    assert too_much.status_code == 422
    wallet_paid = client_a.post(url, {"code": order.pickup_code, "tender": "wallet",
                                      "member_code": member_code_mint(member=member).code})
    handed = client_a.post(reverse("pos:pickup_handover"), {"code": order.pickup_code})

    assert wallet_paid.status_code == 200 and handed.status_code == 200
    order.refresh_from_db()
    assert order.status == Status.PICKED_UP and order.paid_total == Decimal("99.00")
    tenders = dict(Payment.objects.filter(reference=order.number).values_list("tender", "amount"))
    assert tenders == {"points": Decimal("20.00"), "wallet": Decimal("79.00")}
    assert set(Payment.objects.filter(reference=order.number).values_list("store", flat=True)) == {store_a.pk}
    member.refresh_from_db()
    assert member.wallet_balance == wallet_before - Decimal("79.00")
    assert member.points_available == points_before - 2000
    _audit_clean()
