"""The read-only ledgers in the admin."""

import pytest
from django.urls import reverse

from payments import services
from payments.models import Tender
from payments.providers.sandbox import sandbox_notification


@pytest.fixture
def ledgers(store_a):
    cash = services.payment_create(reference="SO42", tender=Tender.CASH, amount="10.00", store=store_a)
    online = services.payment_create(reference="SO42", tender=Tender.SANDBOX, amount="20.00", store=store_a)
    headers, body = sandbox_notification(online)
    services.notification_handle(provider="sandbox", headers=headers, body=body)
    services.refund_create(payment=cash, amount="3.00", reason="damaged", store=store_a)
    return cash, online


@pytest.mark.django_db
@pytest.mark.parametrize("model,query", [
    ("payment", "?q=SO42"), ("payment", "?tender__exact=cash&status__exact=captured"),
    ("refund", "?q=SO42"), ("refund", "?status__exact=succeeded&method__exact=original"),
    ("paymentnotification", "?outcome__exact=applied"), ("paymentnotification", "?q=SO42"),
])
def test_changelists_search_and_filter(client, hq_user, ledgers, model, query):
    client.force_login(hq_user)
    response = client.get(reverse(f"admin:payments_{model}_changelist") + query)
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


@pytest.mark.django_db
def test_payment_search_by_provider_transaction_id(client, hq_user, ledgers):
    _, online = ledgers
    online.refresh_from_db()
    client.force_login(hq_user)
    response = client.get(reverse("admin:payments_payment_changelist") + f"?q={online.provider_txn_id}")
    assert [p.pk for p in response.context["cl"].result_list] == [online.pk]


@pytest.mark.django_db
def test_ledgers_are_read_only(client, hq_user, ledgers):
    cash, _ = ledgers
    client.force_login(hq_user)
    assert client.get(reverse("admin:payments_payment_add")).status_code == 403
    detail = client.get(reverse("admin:payments_payment_change", args=[cash.pk]))
    assert detail.status_code == 200 and not detail.context["has_change_permission"]
    deleted = client.post(reverse("admin:payments_payment_delete", args=[cash.pk]), {"post": "yes"})
    assert deleted.status_code == 403
