from decimal import Decimal

import factory
from django.utils import timezone

from payments.models import Payment, Refund, Tender


class PaymentFactory(factory.django.DjangoModelFactory):
    """A captured cash payment row, written directly (for ledger and audit tests)."""

    class Meta:
        model = Payment

    number = factory.Sequence(lambda n: f"PYT{n:010d}")
    reference = factory.Sequence(lambda n: f"SO{n:08d}")
    tender = Tender.CASH
    amount = Decimal("100.00")
    status = Payment.Status.CAPTURED
    captured_at = factory.LazyFunction(timezone.now)


class RefundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Refund

    number = factory.Sequence(lambda n: f"RFT{n:010d}")
    payment = factory.SubFactory(PaymentFactory)
    amount = Decimal("10.00")
    reason = "test"
    status = Refund.Status.SUCCEEDED
    completed_at = factory.LazyFunction(timezone.now)
