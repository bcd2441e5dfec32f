"""Reads shared by admin, POS pages and the API."""

from __future__ import annotations

import io

import segno
from typing import Iterable

from decimal import Decimal

from django.db.models import DecimalField, Exists, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from orders.models import Order, OrderLine
from payments.models import Refund


class PaymentState:
    """How the money of an order stands, as partners read it (``payment_status``)."""

    UNPAID = "unpaid"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CHOICES = (UNPAID, PARTIALLY_PAID, PAID, PARTIALLY_REFUNDED, REFUNDED)


def orders_with_overpayment_refunds(queryset: QuerySet[Order]) -> QuerySet[Order]:
    """Annotate ``overpayment_refunded``: money given back that never counted towards the order
    (a late payment on a closed order, a second capture), requested or done, one subquery."""
    given_back = (Refund.objects.filter(payment__reference=OuterRef("number"), overpayment=True)
                  .exclude(status=Refund.Status.FAILED).order_by().values("payment__reference")
                  .annotate(total=Sum("amount")).values("total"))
    money = DecimalField(max_digits=12, decimal_places=2)
    return queryset.annotate(overpayment_refunded=Coalesce(Subquery(given_back, output_field=money),
                                                           Value(Decimal("0.00")), output_field=money))


def order_payment_state(order: Order) -> str:
    """The order's payment state; an order whose only money was a late payment given back is refunded."""
    paid, refunded = order.paid_total, order.refunded_total
    if paid <= 0:
        late = getattr(order, "overpayment_refunded", None)
        if late is None:
            late = (Refund.objects.filter(payment__reference=order.number, overpayment=True)
                    .exclude(status=Refund.Status.FAILED).exists())
        return PaymentState.REFUNDED if late else PaymentState.UNPAID
    if refunded >= paid:
        return PaymentState.REFUNDED
    if refunded > 0:
        return PaymentState.PARTIALLY_REFUNDED
    return PaymentState.PARTIALLY_PAID if paid < order.total else PaymentState.PAID


def pickup_qr_payload(order: Order) -> str:
    return f"o2o:pickup:{order.pickup_code}"


def pickup_qr_svg(order: Order, *, scale: int = 4) -> str:
    """The pickup code as a QR image (SVG) for the customer's phone or a printed slip."""
    if not order.pickup_code:
        return ""
    buffer = io.BytesIO()
    segno.make(pickup_qr_payload(order), error="m").save(buffer, kind="svg", scale=scale, xmldecl=False)
    return buffer.getvalue().decode()


def order_scope_q(*, store_ids: Iterable[int] | None, channel: str | None = None,
                  partner: str | None = None) -> Q:
    """The one rule for which orders a caller may see, as a filter on orders.

    Store staff (``store_ids``; None: head office, every store) see the orders sold at or picked up
    at their stores and the orders their stores' stockrooms ship.  A partner (``channel`` and
    ``partner``) sees its own orders, and of those only the ones at its stores when its key is
    limited to stores.  The admin, the partner API, the POS order lists and the exports all filter
    with it (``order_scope``), so a row out of reach is simply not found.
    """
    rule = Q()
    if channel is not None:
        rule &= Q(channel=channel, partner=partner or "")
        if store_ids is not None:
            rule &= Q(store_id__in=list(store_ids))
        return rule
    if store_ids is None:
        return rule
    ids = list(store_ids)
    shipped_from_mine = OrderLine.objects.filter(order=OuterRef("pk"), warehouse__store__id__in=ids)
    return Q(store_id__in=ids) | Exists(shipped_from_mine)


def order_scope(*, store_ids: Iterable[int] | None, channel: str | None = None,
                partner: str | None = None) -> QuerySet[Order]:
    """The orders the caller may see (``order_scope_q``)."""
    return Order.objects.filter(order_scope_q(store_ids=store_ids, channel=channel, partner=partner))


def member_ordered_through(channel: str, partner: str) -> Q:
    """Members who ordered through this channel / partner (registered with ``members.privacy``)."""
    return Q(Exists(Order.objects.filter(member=OuterRef("pk"), channel=channel, partner=partner)))


def member_orders_export(member) -> dict:
    """A member's orders for their personal data export (``members.privacy``)."""
    rows = Order.objects.filter(member=member).order_by("pk").values(
        "number", "channel", "status", "customer_name", "customer_phone", "ship_address", "total", "created_at")
    return {"orders": [{k: v if isinstance(v, (str, int)) or v is None else str(v) for k, v in row.items()}
                       for row in rows]}
