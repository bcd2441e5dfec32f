"""The API payment start and notification endpoints against the WeChat Pay and Alipay fakes."""

import pytest
from rest_framework.test import APIClient

from payments.models import Payment
from tests.fakes.alipay import FakeAlipay
from tests.fakes.wechatpay import FakeWeChatPay

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
