"""Reads shared by orders, admin, POS pages and tasks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet, Sum

from o2o.money import ZERO, money
from payments.models import Payment, Refund


def payments_for_reference(*, reference: str) -> QuerySet[Payment]:
    return Payment.objects.filter(reference=reference).order_by("pk")


@dataclass(frozen=True)
class ReferenceTotals:
    captured: Decimal  # Σ captured payments
    refunded: Decimal  # Σ succeeded refunds of those payments
    refunding: Decimal  # Σ pending refunds

    @property
    def net(self) -> Decimal:
        """What the reference has kept: Σ payments − Σ refunds (invariant 4 of DESIGN.md)."""
        return money(self.captured - self.refunded)


def reference_totals(*, reference: str) -> ReferenceTotals:
    row = Payment.objects.filter(reference=reference, status=Payment.Status.CAPTURED).aggregate(
        captured=Sum("amount"), refunded=Sum("refunded_amount"), refunding=Sum("refunding_amount"))
    return ReferenceTotals(**{k: money(v or ZERO) for k, v in row.items()})


def refunds_pending_ids(*, created_before: datetime, limit: int = 500) -> list[int]:
    """Provider refunds still waiting for an answer, oldest first."""
    return list(Refund.objects.filter(status=Refund.Status.PENDING, created_at__lt=created_before)
                .order_by("pk").values_list("pk", flat=True)[:limit])
