"""WeChat Pay / Alipay payment codes (付款码) at the counter, charged through the sandbox provider.

The code is charged before the sale's transaction and taken over by it; a declined code sells
nothing, a double submit charges once, a sale that fails after the charge refunds it, and returns
and voids give the money back to the customer's wallet.
"""

import io
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from inventory import services as stock
from o2o.models import OutboxMessage
from orders.models import Order
from pos import services as pos
from pos.basket import Basket, BasketLine
from orders.services import LineIn, TenderIn, pos_sale_create
from payments import micropay
from payments.exceptions import PaymentNotHeld
from payments.models import Payment, Refund
from payments.services import refund_process

from .conftest import MANAGER_PIN, at_once, login
from .test_sale import complete, on_hand, sale_uuid, scan

pytestmark = pytest.mark.django_db
D = Decimal

WECHAT = "134567890123456789"  # 18 digits, 10–15: a WeChat Pay code the sandbox accepts
ALIPAY = "281234567890123456"  # 16–24 digits, 25–30: Alipay
DECLINED = "134567890123450001"  # …0001: insufficient balance
EXPIRED = "281234567890120002"  # …0002: code expired
PENDING = "134567890123450003"  # …0003: the customer has to confirm on the phone


def english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def assert_ledgers_clean():
    out = io.StringIO()
    call_command("audit_ledgers", stdout=out)
    assert "all ledgers consistent" in out.getvalue()


def redirected_order(response) -> Order:
    assert response.status_code == 200, response.content.decode()[-600:]
    number = response["HX-Redirect"].rstrip("/").rsplit("/", 1)[-1]
    return Order.objects.get(number=number)


def test_a_sale_paid_by_a_wechat_payment_code(client_a, store_a, stocked, shift_a):
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    # The scanner types the code and Enter: no amount means the code pays what is due.
    order = redirected_order(complete(client_a, uid, payment_code=WECHAT))

    payment = Payment.objects.get()
    assert (payment.reference, payment.tender, payment.provider, payment.amount, payment.status) == (
        order.number, "wechat_pay", "sandbox", D("99.00"), "captured")
    assert payment.provider_txn_id == f"SBX{payment.number}" and payment.store == store_a
    assert (order.total, order.paid_total, order.status) == (D("99.00"), D("99.00"), "completed")
    assert on_hand(store_a, shirt) == 4
    receipt = english(client_a).get(reverse("pos:receipt", args=[order.number])).content.decode()
    assert "WeChat Pay" in receipt and payment.provider_txn_id in receipt
    assert_ledgers_clean()


def test_split_tender_cash_and_an_alipay_code(client_a, store_a, stocked, shift_a):
    shirt, jeans = stocked
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    scan(client_a, jeans.barcode)  # 348.00
    order = redirected_order(complete(client_a, uid, code_amount="300", payment_code=ALIPAY,
                                      cash_tendered="50"))
    tenders = dict(Payment.objects.filter(reference=order.number).values_list("tender", "amount"))
    assert tenders == {"alipay": D("300.00"), "cash": D("48.00")}
    receipt = client_a.get(reverse("pos:receipt", args=[order.number])).content.decode()
    assert "支付宝" in receipt and 'data-testid="change">¥2.00' in receipt
    # The Z report of the shift shows the tender.
    report = english(client_a).get(reverse("pos:shift")).content.decode()
    assert "Alipay" in report and "¥300.00" in report
    assert_ledgers_clean()


def test_a_declined_code_sells_nothing_and_says_why_next_to_the_code(client_a, store_a, stocked, shift_a):
    shirt, _ = stocked
    uid = sale_uuid(english(client_a))
    scan(client_a, shirt.barcode)
    response = complete(client_a, uid, payment_code=DECLINED)
    html = response.content.decode()
    assert response.status_code == 422
    assert 'data-testid="payment-code-error"' in html and "balance is too low" in html
    assert DECLINED not in html  # a code is good for one charge; the field comes back empty
    assert not Order.objects.exists() and on_hand(store_a, shirt) == 5
    payment = Payment.objects.get()
    assert (payment.status, payment.reference) == ("failed", micropay.sale_reference(uid))
    assert not Refund.objects.exists()
    # The customer shows another code: the same sale completes with one charge.
    order = redirected_order(complete(client_a, uid, payment_code=WECHAT))
    assert list(Payment.objects.filter(status="captured").values_list("reference", flat=True)) == [order.number]
    assert_ledgers_clean()


def test_an_expired_alipay_code_is_declined(client_a, stocked, shift_a):
    uid = sale_uuid(english(client_a))
    scan(client_a, stocked[0].barcode)
    response = complete(client_a, uid, payment_code=EXPIRED)
    assert response.status_code == 422 and "payment code has expired" in response.content.decode()
    assert Payment.objects.get().status == "failed" and not Order.objects.exists()


@pytest.mark.parametrize("data, text", [
    ({"payment_code": "12345"}, "is not a WeChat Pay or Alipay payment code"),
    ({"payment_code": WECHAT, "code_tender": "alipay"}, "not from the wallet app chosen"),
    ({"code_amount": "50", "cash_tendered": "49"}, "Scan the customer"),
    ({"payment_code": WECHAT, "code_amount": "120"}, "more than is due"),
    ({"payment_code": WECHAT, "card_amount": "99", "card_reference": "C1"}, "Nothing is left to pay"),
])
def test_payment_code_input_errors_charge_nothing(client_a, store_a, stocked, shift_a, data, text):
    uid = sale_uuid(english(client_a))
    scan(client_a, stocked[0].barcode)
    response = complete(client_a, uid, **data)
    assert response.status_code == 422 and text in response.content.decode()
    assert not Payment.objects.exists() and not Order.objects.exists()


def test_a_basket_that_cannot_be_sold_charges_nothing(client_a, store_a, stocked, shift_a):
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    for _ in range(5):
        scan(client_a, shirt.barcode)
    stock.stock_sell(warehouse=store_a.warehouse, lines=[(shirt.id, 1)], reference="OTHER")
    response = complete(client_a, uid, payment_code=WECHAT)
    assert response.status_code == 422 and not Payment.objects.exists()


def test_a_pending_code_waits_for_the_customer_then_another_code_pays(client_a, store_a, stocked, shift_a):
    uid = sale_uuid(english(client_a))
    scan(client_a, stocked[0].barcode)
    response = complete(client_a, uid, payment_code=PENDING)
    assert response.status_code == 422 and "has not confirmed the payment" in response.content.decode()
    assert Payment.objects.get().status == "pending" and not Order.objects.exists()
    # Asking again with the same code asks the provider about the same payment.
    assert complete(client_a, uid, payment_code=PENDING).status_code == 422
    assert Payment.objects.count() == 1
    order = redirected_order(complete(client_a, uid, payment_code=WECHAT))
    states = dict(Payment.objects.values_list("status", "reference"))
    assert states == {"cancelled": micropay.sale_reference(uid), "captured": order.number}
    assert_ledgers_clean()


def test_a_double_submit_charges_once_and_makes_one_sale(client_a, store_a, stocked, shift_a):
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    first = redirected_order(complete(client_a, uid, payment_code=WECHAT))
    second = complete(client_a, uid, payment_code=WECHAT)
    assert second["HX-Redirect"] == reverse("pos:receipt", args=[first.number])
    assert Payment.objects.count() == 1 and Order.objects.count() == 1 and on_hand(store_a, shirt) == 4


def test_a_retry_after_the_charge_reuses_it_whatever_code_is_shown(client_a, store_a, clerk_a, stocked, shift_a):
    """The till lost the answer after the charge: the retry takes the charge over, no second charge."""
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    held = micropay.micropay_charge(store=store_a, client_uuid=uid, tender="", amount="99.00", code=WECHAT,
                                    actor=clerk_a)
    order = redirected_order(complete(client_a, uid, payment_code="134567890123999999"))
    held.refresh_from_db()
    assert Payment.objects.count() == 1 and held.reference == order.number
    assert_ledgers_clean()


def test_a_sale_failing_after_the_charge_refunds_it(client_a, store_a, stocked, shift_a, monkeypatch):
    """The last shirt is sold online between the charge and the sale: the charge goes back."""
    shirt, _ = stocked
    uid = sale_uuid(english(client_a))
    for _ in range(5):
        scan(client_a, shirt.barcode)
    charge = micropay.micropay_charge

    def charge_then_lose_the_race(**kwargs):
        payment = charge(**kwargs)
        stock.stock_sell(warehouse=store_a.warehouse, lines=[(shirt.id, 1)], reference="RACE")
        return payment

    monkeypatch.setattr(micropay, "micropay_charge", charge_then_lose_the_race)
    response = complete(client_a, uid, payment_code=WECHAT)
    html = response.content.decode()
    assert response.status_code == 422
    assert "Not enough stock" in html and "¥495.00 charged to the payment code is being refunded" in html
    assert not Order.objects.exists() and on_hand(store_a, shirt) == 4  # only the online sale took one
    payment, refund = Payment.objects.get(), Refund.objects.get()
    assert (payment.status, payment.reference, payment.refunding_amount) == (
        "captured", micropay.sale_reference(uid), D("495.00"))
    assert (refund.amount, refund.method, refund.status, refund.store) == (D("495.00"), "original", "pending",
                                                                           store_a)
    assert OutboxMessage.objects.filter(topic="payments.refund_requested").count() == 1
    assert_ledgers_clean()


def test_a_return_of_a_code_paid_sale_refunds_to_the_wallet(client_a, store_a, stocked, shift_a):
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    scan(client_a, shirt.barcode)
    scan(client_a, shirt.barcode)
    order = redirected_order(complete(client_a, uid, payment_code=ALIPAY))
    line = order.lines.get()
    client_a.get(reverse("pos:returns"), {"q": order.number})  # the receipt is scanned
    response = client_a.post(reverse("pos:return_detail", args=[order.pk]),
                             {"client_uuid": sale_uuid(client_a), f"qty_{line.pk}": "1",
                              f"condition_{line.pk}": "sellable", "reason": "尺码不合适"})
    assert response.status_code == 302
    refund = Refund.objects.get()
    assert (refund.payment.tender, refund.amount, refund.method, refund.status) == (
        "alipay", D("99.00"), "original", "pending")
    assert "alipay: refunded to the original account" in order.returns.get().refund_policy
    assert_ledgers_clean()


@pytest.mark.django_db(transaction=True)
def test_a_void_of_a_code_paid_sale_refunds_through_the_provider(store_a, clerk_a, manager_a, stocked, shift_a):
    shirt, _ = stocked
    client = login(clerk_a)
    uid = sale_uuid(client)
    scan(client, shirt.barcode)
    order = redirected_order(complete(client, uid, payment_code=WECHAT, code_amount="50", cash_tendered="49"))
    response = client.post(reverse("pos:sale_void", args=[order.pk]), {"pin": MANAGER_PIN})
    assert response.status_code == 302
    wechat = Refund.objects.get(payment__tender="wechat_pay")
    assert (wechat.amount, wechat.status) == (D("50.00"), "pending")
    refund_process(refund_id=wechat.pk)  # what the queued task runs, outside any transaction
    wechat.refresh_from_db()
    assert (wechat.status, wechat.provider_refund_id) == ("succeeded", f"SBXR{wechat.number}")
    assert on_hand(store_a, shirt) == 5
    assert_ledgers_clean()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submits_with_a_code_charge_once(store_a, stocked, clerk_a, shift_a):
    shirt, _ = stocked
    client = login(clerk_a)
    uid = sale_uuid(client)
    scan(client, shirt.barcode)
    results = at_once(lambda: complete(client, uid, payment_code=WECHAT))
    order = Order.objects.get(client_uuid=uid)
    assert [r.get("HX-Redirect") for r in results] == [reverse("pos:receipt", args=[order.number])] * 2
    assert list(Payment.objects.values_list("reference", "status")) == [(order.number, "captured")]
    assert on_hand(store_a, shirt) == 4
    assert_ledgers_clean()


@pytest.mark.django_db(transaction=True)  # the real adapter may only be called outside a transaction
def test_an_unconfigured_wallet_provider_is_refused_before_any_charge(clerk_a, stocked, shift_a, settings):
    settings.POS_MICROPAY_PROVIDER = ""  # the real WeChat Pay adapter, with no merchant keys set
    client_a = english(login(clerk_a))
    uid = sale_uuid(client_a)
    scan(client_a, stocked[0].barcode)
    response = complete(client_a, uid, payment_code=WECHAT)
    assert response.status_code == 422 and "not set up for this store" in response.content.decode()
    assert Payment.objects.get().status == "failed" and not Order.objects.exists()


def test_a_payment_code_scanned_into_the_item_field_points_to_the_code_field(client_a, stocked, shift_a):
    scan(client_a, stocked[0].barcode)
    response = scan(english(client_a), WECHAT)
    html = response.content.decode()
    assert response.status_code == 422 and "is the customer" in html and 'id="id_payment_code"' in html
    assert not Payment.objects.exists()


def test_a_charge_no_sale_took_is_flagged_by_the_audit_and_released(store_a, clerk_a, stocked, shift_a):
    uid = sale_uuid(login(clerk_a))
    held = micropay.micropay_charge(store=store_a, client_uuid=uid, tender="wechat_pay", amount="99.00",
                                    code=WECHAT, actor=clerk_a)
    assert micropay.micropay_orphans_release() == 0  # fresh: the counter may still come back for it
    Payment.objects.filter(pk=held.pk).update(captured_at=timezone.now() - timedelta(hours=1))
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=io.StringIO())
    assert micropay.micropay_orphans_release() == 1
    assert micropay.micropay_orphans_release() == 0
    assert Refund.objects.get().amount == D("99.00")
    assert_ledgers_clean()


def test_the_sale_service_takes_over_only_the_charge_made_for_it(store_a, clerk_a, stocked, shift_a):
    shirt, _ = stocked
    # Another sale's charge (the clerk's basket now survives a second sign-in, so that sale is a new id).
    uid, other = sale_uuid(login(clerk_a)), str(uuid.uuid4())
    held = micropay.micropay_charge(store=store_a, client_uuid=other, tender="", amount="99.00", code=WECHAT)
    with pytest.raises(PaymentNotHeld):
        pos_sale_create(store=store_a, client_uuid=uid, lines=[LineIn(shirt.id, 1)], actor=clerk_a,
                        tenders=[TenderIn("wechat_pay", D("99.00"), payment_id=held.pk)])
    with pytest.raises(pos.PaymentCodeNotCharged):
        pos.pos_checkout(store=store_a, actor=clerk_a, client_uuid=uid,
                         basket=Basket(uuid=uid, lines=(BasketLine(sku_id=shirt.id, qty=1),)),
                         payment=pos.PaymentIn(payment_code=WECHAT))
    assert not Order.objects.exists() and on_hand(store_a, shirt) == 5
