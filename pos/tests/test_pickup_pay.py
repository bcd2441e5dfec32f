"""Pay at pickup: an unpaid online pickup order is paid at the counter, then handed over."""

import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

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
