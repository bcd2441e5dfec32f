"""A lost provider notification made up for by asking the provider, against both fakes.

The order is placed and its payment started through the API, the customer pays at the fake,
the notification never arrives; the beat task (or the payments admin action) asks the provider
and captures the payment exactly as the notification would; the notification arriving late
changes nothing, and the ledgers audit clean.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from o2o.schedule import BEAT_SCHEDULE
from orders import tasks
from payments.models import Payment, PaymentNotification, Refund
from tests.fakes.alipay import FakeAlipay
from tests.fakes.wechatpay import FakeWeChatPay

from .conftest import idem, meta
from .test_orders import ORDERS, placed

pytestmark = pytest.mark.django_db(transaction=True)  # the provider is called outside transactions


@pytest.fixture(params=["wechat_pay", "alipay"])
def provider(request, settings):
    fake = (FakeWeChatPay if request.param == "wechat_pay" else FakeAlipay)().start()
    fake.configure(settings)
    settings.PAYMENTS_QUERY_PENDING_AFTER_MINUTES = 5
    yield request.param, fake
    fake.stop()


def paid_at_the_provider(client, order, name, fake, *, minutes_ago=10) -> Payment:
    """Started through the API and paid by the customer; the notification is lost."""
    started = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": name}, format="json", **idem())
    assert started.status_code == 201, started.content
    payment = Payment.objects.get(pk=started.json()["id"])
    fake.pay(payment.number)
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    return payment


def late_notification(name, fake, payment):
    if name == "wechat_pay":
        headers, body = fake.payment_notification(payment.number)
        return APIClient().post(f"/api/v1/payments/notify/{name}/", data=body, **meta(headers))
    return APIClient().post(f"/api/v1/payments/notify/{name}/", data=fake.notification(payment.number),
                            content_type="application/x-www-form-urlencoded")


def test_the_beat_job_is_scheduled():
    assert BEAT_SCHEDULE["payments-query-pending"]["task"] == tasks.payments_query_pending.name


def test_a_lost_notification_is_made_up_for_by_the_query_and_the_late_one_changes_nothing(
        provider, partner, stocked, store_a):
    name, fake = provider
    _key, client = partner
    order = placed(client, store_a, stocked)
    payment = paid_at_the_provider(client, order, name, fake)

    counts = tasks.payments_query_pending.apply().get()

    assert counts == {"captured": 1, "closed": 0, "unchanged": 0, "errors": 0}
    payment.refresh_from_db()
    assert payment.status == "captured" and payment.provider_txn_id
    detail = client.get(f"{ORDERS}{order['id']}/").json()
    assert detail["paid_total"] == order["total"] and detail["status"] != "pending_payment"
    log = PaymentNotification.objects.get(payment=payment)
    assert (log.outcome, log.headers) == ("applied", {"source": "query"})

    # Again: the payment is no longer pending, nobody is asked.
    assert tasks.payments_query_pending.apply().get() == {"captured": 0, "closed": 0, "unchanged": 0, "errors": 0}
    ack = late_notification(name, fake, payment)

    assert ack.status_code == 200
    assert list(PaymentNotification.objects.filter(payment=payment).order_by("id")
                .values_list("outcome", flat=True)) == ["applied", "duplicate"]
    assert client.get(f"{ORDERS}{order['id']}/").json()["paid_total"] == order["total"]
    assert not Refund.objects.exists()
    call_command("audit_ledgers")


def test_a_payment_not_paid_yet_is_left_pending_and_asked_again_only_later(provider, partner, stocked, store_a):
    name, fake = provider
    _key, client = partner
    order = placed(client, store_a, stocked)
    started = client.post(f"{ORDERS}{order['id']}/payments/", {"tender": name}, format="json", **idem())
    payment = Payment.objects.get(pk=started.json()["id"])

    assert tasks.payments_query_pending.apply().get()["unchanged"] == 0  # too recent to ask
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    first = tasks.payments_query_pending.apply().get()
    second = tasks.payments_query_pending.apply().get()

    payment.refresh_from_db()
    assert first["unchanged"] == 1 and second["unchanged"] == 0  # asked once per delay
    assert payment.status == "pending" and payment.provider_checked_at is not None
    assert not PaymentNotification.objects.exists()


def test_a_query_capture_on_a_cancelled_order_is_refunded_as_an_over_capture(provider, partner, stocked, store_a):
    name, fake = provider
    _key, client = partner
    order = placed(client, store_a, stocked)
    payment = paid_at_the_provider(client, order, name, fake)
    cancelled = client.post(f"{ORDERS}{order['id']}/cancel/", {}, format="json", **idem())
    assert cancelled.status_code == 200, cancelled.content
    payment.refresh_from_db()
    assert payment.status == "cancelled"

    counts = tasks.payments_query_pending.apply().get()

    payment.refresh_from_db()
    assert counts["captured"] == 1 and payment.status == "captured"
    refund = Refund.objects.get(payment=payment)
    assert (refund.amount, refund.overpayment) == (payment.amount, True)
    assert client.get(f"{ORDERS}{order['id']}/").json()["status"] == "cancelled"
    # The late notification neither captures again nor refunds twice.
    assert late_notification(name, fake, payment).status_code == 200
    assert Refund.objects.filter(payment=payment).count() == 1
    assert PaymentNotification.objects.filter(payment=payment, outcome="applied").count() == 1
    call_command("audit_ledgers")


def test_finance_asks_the_provider_from_the_payments_admin(provider, partner, stocked, store_a, django_user_model):
    name, fake = provider
    _key, client = partner
    order = placed(client, store_a, stocked)
    payment = paid_at_the_provider(client, order, name, fake, minutes_ago=1)  # the beat would wait still
    admin = django_user_model.objects.create_superuser("finance", "finance@example.com", "pw")
    browser = APIClient()
    browser.force_login(admin)

    page = browser.post(reverse("admin:payments_payment_changelist"),
                        {"action": "ask_provider", "_selected_action": [payment.pk]}, follow=True,
                        HTTP_ACCEPT_LANGUAGE="en")

    assert page.status_code == 200
    assert [str(m) for m in page.context["messages"]] == [
        "Asked the provider: 1 captured, 0 closed, 0 unchanged, 0 without an answer."]
    payment.refresh_from_db()
    assert payment.status == "captured"
    assert client.get(f"{ORDERS}{order['id']}/").json()["paid_total"] == order["total"]
    assert Decimal(order["total"]) == payment.amount
