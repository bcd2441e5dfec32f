import io

import pytest
from django.core.management import call_command

from o2o.models import OutboxMessage
from payments.models import Payment, PaymentNotification, Refund
from stores.tests.factories import UserFactory


@pytest.fixture
def clerk(db):
    return UserFactory(username="clerk")


def assert_ledgers_clean() -> None:
    """Every registered ledger invariant holds (audit_ledgers raises CommandError otherwise)."""
    out = io.StringIO()
    call_command("audit_ledgers", stdout=out)
    assert "all ledgers consistent" in out.getvalue()


def ledger_state():
    """Everything a refused service call must leave untouched."""
    return {
        "payments": list(Payment.objects.order_by("pk").values_list(
            "pk", "status", "amount", "refunded_amount", "refunding_amount", "provider_txn_id",
            "payment_code")),
        "refunds": list(Refund.objects.order_by("pk").values_list(
            "pk", "status", "amount", "provider_refund_id")),
        "notifications": PaymentNotification.objects.count(),
        "outbox": OutboxMessage.objects.count(),
    }


def topics():
    return list(OutboxMessage.objects.order_by("pk").values_list("topic", flat=True))
