"""Reads of reconciliation shared by the admin and exports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Case, DecimalField, F, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from payments.reconciliation import parsers
from payments.reconciliation.models import Mismatch, StatementRow

ZERO = Decimal("0.00")
MONEY = DecimalField(max_digits=14, decimal_places=2)


@dataclass(frozen=True)
class SettlementDay:
    """What a provider settled for one business day, as its statements say."""

    day: date
    provider: str
    payments: Decimal
    refunds: Decimal
    fees: Decimal
    net: Decimal
    fee_mismatches: int


def settlement_days(*, provider: str = "", limit: int = 62) -> list[SettlementDay]:
    """Per provider and day (Asia/Shanghai) of the transaction: payments, refunds, fees and net from
    the statement rows (duplicates left out), and the open fee mismatches; latest day first."""
    rows = StatementRow.objects.filter(kind__in=[parsers.PAYMENT, parsers.REFUND], occurred_at__isnull=False) \
        .exclude(result=StatementRow.Result.DUPLICATE)
    if provider:
        rows = rows.filter(run__provider=provider)
    signed = Case(When(kind=parsers.PAYMENT, then=F("amount")), default=-F("amount"), output_field=MONEY)
    days = (rows.annotate(day=TruncDate("occurred_at", tzinfo=timezone.get_current_timezone()))
            .values("day", "run__provider")
            .annotate(payments=Sum(Case(When(kind=parsers.PAYMENT, then=F("amount")), default=Value(ZERO),
                                        output_field=MONEY)),
                      refunds=Sum(Case(When(kind=parsers.REFUND, then=F("amount")), default=Value(ZERO),
                                       output_field=MONEY)),
                      fees=Sum("fee"), net=Sum(signed - F("fee"), output_field=MONEY))
            .order_by("-day", "run__provider")[:limit])
    open_fees = Mismatch.objects.filter(kind=Mismatch.Kind.FEE_MISMATCH, resolved_at__isnull=True,
                                        row__occurred_at__isnull=False)
    counts: dict[tuple[date, str], int] = {}
    for when, name in open_fees.values_list("row__occurred_at", "run__provider"):
        key = (timezone.localtime(when).date(), name)
        counts[key] = counts.get(key, 0) + 1
    return [SettlementDay(day=d["day"], provider=d["run__provider"], payments=d["payments"] or ZERO,
                          refunds=d["refunds"] or ZERO, fees=d["fees"] or ZERO, net=d["net"] or ZERO,
                          fee_mismatches=counts.get((d["day"], d["run__provider"]), 0)) for d in days]


__all__ = ["SettlementDay", "settlement_days"]
