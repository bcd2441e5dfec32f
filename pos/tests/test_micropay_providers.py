"""The POS payment-code tender against the WeChat Pay and Alipay fakes (tests/fakes/), as with the sandbox."""

import pytest
from django.conf import settings as django_settings

from orders.models import Order
from payments.models import Payment
from tests.fakes.alipay import FakeAlipay
from tests.fakes.wechatpay import FakeWeChatPay

from .conftest import login
from .test_sale import complete, on_hand, sale_uuid, scan

pytestmark = pytest.mark.django_db(transaction=True)  # the provider is called outside any transaction


@pytest.fixture(params=["wechat_pay", "alipay"])
def provider(request, settings):
    fake = (FakeWeChatPay if request.param == "wechat_pay" else FakeAlipay)().start()
    fake.configure(settings)
    settings.POS_MICROPAY_PROVIDER = ""  # each wallet's own provider
    settings.PAYMENTS_CODE_POLL_SECONDS, settings.PAYMENTS_CODE_WAIT_SECONDS = 0, 1
    yield request.param, fake
    fake.stop()


def code(provider_name: str, ending: str) -> str:
    return ("13456789012345" if provider_name == "wechat_pay" else "28123456789012") + ending


def test_a_code_the_customer_confirms_on_the_phone_completes_the_sale(provider, clerk_a, store_a, stocked, shift_a):
    name, fake = provider
    client = login(clerk_a)
    uid = sale_uuid(client)
    scan(client, stocked[0].barcode)
    response = complete(client, uid, payment_code=code(name, "0003"))  # USERPAYING, then paid
    assert response.status_code == 200, response.content.decode()[-600:]
    order = Order.objects.get(client_uuid=uid)
    payment = Payment.objects.get()
    assert (payment.reference, payment.provider, payment.status) == (order.number, name, "captured")
    assert payment.provider_txn_id and on_hand(store_a, stocked[0]) == 4


def test_a_code_never_confirmed_is_reversed_and_the_clerk_told(provider, clerk_a, store_a, stocked, shift_a):
    name, fake = provider
    client = login(clerk_a)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    uid = sale_uuid(client)
    scan(client, stocked[0].barcode)
    response = complete(client, uid, payment_code=code(name, "0004"))
    html = response.content.decode()
    assert response.status_code == 422 and "顾客未在限定时间内确认" in html
    assert not Order.objects.exists() and on_hand(store_a, stocked[0]) == 5
    payment = Payment.objects.get()
    assert payment.status == "failed"
    state = fake.orders[payment.number].state if name == "wechat_pay" else fake.trades[payment.number].status
    assert state in ("REVOKED", "TRADE_CLOSED")
