"""Online payments whose notification never arrived: asked about at the provider.

A provider notifies a paid QR / JSAPI / mini-program payment, but a notification can be lost (our
site was down longer than the provider retries, a proxy refused it).  The beat job
``payments-query-pending`` (orders, which marks the order paid) asks the provider about every
online payment still pending ``PAYMENTS_QUERY_PENDING_AFTER_MINUTES`` after it started, and about
payments cancelled in the last two hours whose QR code the customer may still have paid; what the
provider answers is applied through ``services.notification_apply``, exactly as the notification
would have been.  Payment-code charges at the counter have their own resolver (payments.micropay).

``payment_ask`` calls the provider, so it runs outside any transaction; each answer is applied in
its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from o2o.db import service
from payments.exceptions import ProviderNotConfigured, ProviderUnavailable, UnknownProvider
from payments.micropay import SALE_PREFIX
from payments.models import Payment
from payments.providers import provider_named
from payments.providers.base import Notification, NotificationStatus

# QR codes and prepay ids of both providers stay payable for two hours by default.
CANCELLED_WINDOW = timedelta(hours=2)
QUERIED_PROVIDERS = ("wechat_pay", "alipay")


def query_after() -> timedelta:
    return timedelta(minutes=max(1, int(getattr(settings, "PAYMENTS_QUERY_PENDING_AFTER_MINUTES", 5) or 5)))


def payments_to_query(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    """Ids of online provider payments to ask about now: pending for longer than the delay, or
    cancelled within the window after the customer was shown a code; each asked at most once per
    delay.  Counter payment-code charges are left to their own resolver."""
    now = now or timezone.now()
    after = query_after()
    opened = ~Q(payment_code="") | Q(method__in=["jsapi", "mini_program"])
    due = Q(provider_checked_at__isnull=True) | Q(provider_checked_at__lte=now - after)
    waiting = Q(status=Payment.Status.PENDING, created_at__lte=now - after)
    given_up = Q(status=Payment.Status.CANCELLED, closed_at__gte=now - CANCELLED_WINDOW) & opened
    return list(Payment.objects.filter(provider__in=QUERIED_PROVIDERS).filter(due & (waiting | given_up))
                .exclude(reference__startswith=SALE_PREFIX).order_by("pk").values_list("pk", flat=True)[:limit])


@dataclass(frozen=True)
class Asked:
    """The provider's word on one payment: ``note`` to apply (paid or closed there), or None."""

    payment: Payment
    note: Notification | None
    error: str = ""


def payment_ask(*, payment_id: int) -> Asked | None:
    """Ask the payment's provider about it (outside any transaction) and note that it was asked.

    Returns None for a payment that is not an online provider payment still open with us; an
    ``Asked`` whose ``note`` is a success (the provider has the money) or a failure (it closed the
    payment), or None when the provider has nothing to apply (not paid yet, never opened);
    ``error`` when it could not answer (asked again next time).
    """
    payment = (Payment.objects.filter(pk=payment_id, provider__in=QUERIED_PROVIDERS,
                                      status__in=[Payment.Status.PENDING, Payment.Status.CANCELLED])
               .exclude(reference__startswith=SALE_PREFIX).first())  # counter charges: payments.micropay
    if payment is None:
        return None
    try:
        state = provider_named(payment.provider).query(payment)
    except (ProviderNotConfigured, ProviderUnavailable, UnknownProvider) as exc:
        _payment_checked(payment_id=payment.pk)
        return Asked(payment, None, error=str(exc.params.get("reason") or exc.code))
    _payment_checked(payment_id=payment.pk)
    return Asked(payment, _note(payment, state))


def _note(payment: Payment, state: dict) -> Notification | None:
    status, txn_id, amount = state.get("status"), str(state.get("provider_txn_id") or ""), state.get("amount")
    raw = {"source": "query", **{k: str(v) for k, v in state.items()}}
    if status == NotificationStatus.SUCCESS and txn_id and amount is not None:
        return Notification(provider_txn_id=txn_id[:64], reference=payment.number, amount=amount,
                            status=NotificationStatus.SUCCESS, raw=raw)
    if status == NotificationStatus.FAILED and payment.status == Payment.Status.PENDING:
        # Closed at the provider without money (expired, closed): the notification would close it too.
        return Notification(provider_txn_id=(txn_id or f"closed-{payment.number}")[:64], reference=payment.number,
                            amount=amount or payment.amount, status=NotificationStatus.FAILED, raw=raw)
    return None


@service
def _payment_checked(*, payment_id: int) -> None:
    Payment.objects.filter(pk=payment_id).update(provider_checked_at=timezone.now())
