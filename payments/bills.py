"""Daily provider bills (对账单): downloaded from each configured provider and reconciled.

``bills_reconcile`` runs from the beat (``payments-bills-reconcile`` in o2o/schedule.py) the
morning after: for each provider whose merchant settings are complete it downloads the day's
trade bill and imports it through the ordinary reconciliation (payments.reconciliation), so
mismatches appear in the admin exactly as for a file uploaded by hand.  Importing the same bill
again changes nothing (runs are unique per provider and content hash).  Downloads happen
outside any transaction; each import is its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from django.utils import timezone

from payments.exceptions import ProviderNotConfigured, ProviderUnavailable
from payments.providers import provider_named
from payments.reconciliation.models import ReconciliationRun
from payments.reconciliation.services import reconciliation_import

log = logging.getLogger(__name__)
BILL_PROVIDERS = ("wechat_pay", "alipay")


@dataclass
class BillOutcome:
    provider: str
    day: str
    runs: list[ReconciliationRun]
    error: str = ""


def bills_reconcile(*, day: date | None = None) -> list[BillOutcome]:
    """Download and reconcile the bills of ``day`` (default: yesterday, Asia/Shanghai).

    A provider that is not configured is skipped; one that fails is reported in its outcome
    (and logged) without stopping the others.
    """
    day = day or timezone.localdate() - timedelta(days=1)
    outcomes = []
    for name in BILL_PROVIDERS:
        adapter = provider_named(name)
        if not adapter.configured():
            continue
        try:
            bills = adapter.bills(day.isoformat())
        except (ProviderNotConfigured, ProviderUnavailable) as exc:
            log.warning("bills of %s for %s not downloaded: %s %s", name, day, exc.code, exc.params)
            outcomes.append(BillOutcome(name, day.isoformat(), [], error=str(exc.params.get("reason") or exc.code)))
            continue
        runs = [reconciliation_import(data=bill.data, file_name=bill.file_name, provider=name).run
                for bill in bills if bill.kind == "trade"]
        outcomes.append(BillOutcome(name, day.isoformat(), runs))
    return outcomes
