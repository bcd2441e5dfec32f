"""The API payment start and notification endpoints against the WeChat Pay and Alipay fakes."""

import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from rest_framework.test import APIClient

from payments.models import Payment
from tests.fakes.alipay import FakeAlipay
from tests.fakes.wechatpay import APPID, MINI_APPID, FakeWeChatPay

from .conftest import idem, meta
from .test_orders import ORDERS, placed

pytestmark = pytest.mark.django_db(transaction=True)  # the provider is called after commit


@pytest.fixture(params=["wechat_pay", "alipay"])
def provider(request, settings):
    fake = (FakeWeChatPay if request.param == "wechat_pay" else FakeAlipay)().start()
    fake.configure(settings)
    yield request.param, fake
    fake.stop()


def test_an_order_paid_through_the_provider(provider, partner, stocked, store_a):
    name, fake = provider
    _key, client = partner
    order = placed(client, store_a, stocked)

    started = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": name}, format="json", **idem())
    assert started.status_code == 201, started.content
    payment = Payment.objects.get(pk=started.json()["id"])
    assert started.json()["payment_code"] == payment.payment_code != ""
    fake.pay(payment.number)
    if name == "wechat_pay":
        headers, body = fake.payment_notification(payment.number)
        ack = APIClient().post(f"/api/v1/payments/notify/{name}/", data=body, **meta(headers))
        assert ack.status_code == 200 and ack.json()["code"] == "SUCCESS"
    else:
        ack = APIClient().post(f"/api/v1/payments/notify/{name}/", data=fake.notification(payment.number),
                               content_type="application/x-www-form-urlencoded")
        assert ack.status_code == 200 and ack.content == b"success"

    detail = client.get(f"{ORDERS}{order['id']}/").json()
    assert detail["paid_total"] == order["total"] and [p["status"] for p in detail["payments"]] == ["captured"]


# --- paying inside WeChat / a mini-program -------------------------------------------------------------

OPENID, BUYER_ID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "2088102146225135"


@pytest.fixture
def wechat(settings):
    fake = FakeWeChatPay().start()
    fake.configure(settings)
    settings.WECHAT_PAY_MINI_APPID = MINI_APPID
    yield fake
    fake.stop()


@pytest.fixture
def alipay(settings):
    fake = FakeAlipay().start()
    fake.configure(settings)
    yield fake
    fake.stop()


def start(client, order, **body):
    return client.post(f"{ORDERS}{order['id']}/payments/", body, format="json", **idem())


@pytest.mark.parametrize("method,appid", [("mini_program", MINI_APPID), ("jsapi", APPID)])
def test_a_wechat_payment_inside_wechat_returns_what_wx_request_payment_takes(
        method, appid, wechat, partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)

    started = start(client, order, tender="wechat_pay", method=method, openid=OPENID)

    assert started.status_code == 201, started.content
    body = started.json()
    payment = Payment.objects.get(pk=body["id"])
    params = body["pay_params"]
    assert (body["method"], body["payment_code"], body["trade_no"]) == (method, None, None)
    assert params["appId"] == appid and params["signType"] == "RSA"
    assert params["package"] == f"prepay_id=wx{payment.number}"
    message = "\n".join([params["appId"], params["timeStamp"], params["nonceStr"], params["package"]]) + "\n"
    wechat.merchant.public.verify(base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(),
                                  hashes.SHA256())  # signed with the merchant key, as WeChat checks
    sent = wechat.orders[payment.number]
    assert (sent.kind, sent.openid, sent.appid) == ("jsapi", OPENID, appid)

    wechat.pay(payment.number)  # the customer confirms in WeChat; its notification names the AppID paid under
    headers, note = wechat.payment_notification(payment.number)
    ack = APIClient().post("/api/v1/payments/notify/wechat_pay/", data=note, **meta(headers))
    assert ack.status_code == 200 and ack.json()["code"] == "SUCCESS"
    assert client.get(f"{ORDERS}{order['id']}/").json()["paid_total"] == order["total"]


def test_an_alipay_mini_program_payment_returns_its_trade_no(alipay, partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)

    started = start(client, order, tender="alipay", method="mini_program", buyer_id=BUYER_ID)

    assert started.status_code == 201, started.content
    body = started.json()
    payment = Payment.objects.get(pk=body["id"])
    trade = alipay.trades[payment.number]
    assert (body["method"], body["trade_no"], body["pay_params"]) == ("mini_program", trade.trade_no, None)
    assert trade.buyer_id == BUYER_ID and "alipay.trade.create" in alipay.methods

    alipay.pay(payment.number)
    ack = APIClient().post("/api/v1/payments/notify/alipay/", data=alipay.notification(payment.number),
                           content_type="application/x-www-form-urlencoded")
    assert ack.content == b"success"
    detail = client.get(f"{ORDERS}{order['id']}/").json()
    assert detail["paid_total"] == order["total"]


def test_a_second_wallet_start_supersedes_the_first(wechat, partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)
    first = start(client, order, tender="wechat_pay", method="jsapi", openid=OPENID).json()
    second = start(client, order, tender="wechat_pay", method="jsapi", openid="oOtherPayer_123456").json()
    assert first["id"] != second["id"]
    assert Payment.objects.get(pk=first["id"]).status == "cancelled"
    assert Payment.objects.get(pk=second["id"]).status == "pending"


@pytest.mark.parametrize("body,code,field", [
    ({"tender": "wechat_pay", "method": "jsapi"}, "payer_required", "openid"),
    ({"tender": "wechat_pay", "method": "mini_program", "openid": "no spaces here"}, "invalid_payer", "openid"),
    ({"tender": "wechat_pay", "method": "qr", "openid": OPENID}, "unexpected_payer", "openid"),
    ({"tender": "wechat_pay", "method": "jsapi", "buyer_id": BUYER_ID}, "unexpected_payer", "buyer_id"),
    ({"tender": "alipay", "method": "jsapi", "openid": OPENID}, "payment_method_unsupported", "method"),
    ({"tender": "alipay", "method": "mini_program"}, "payer_required", "buyer_id"),
    ({"tender": "alipay", "method": "mini_program", "buyer_id": "1234"}, "invalid_payer", "buyer_id"),
    ({"tender": "wechat_pay", "method": "h5"}, "invalid_input", "method"),
])
def test_a_payment_start_with_bad_method_or_payer_is_refused_and_changes_nothing(
        body, code, field, wechat, alipay, partner, stocked, store_a):
    _key, client = partner
    order = placed(client, store_a, stocked)

    refused = start(client, order, **body)

    assert refused.status_code == 400, refused.content
    assert refused.json()["code"] == code and field in str(refused.json())
    assert not Payment.objects.exists()
    assert not wechat.orders and not alipay.trades
