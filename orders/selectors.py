"""Reads shared by admin, POS pages and the API."""

from __future__ import annotations

import io

import segno
from typing import Iterable

from django.db.models import Exists, OuterRef, Q, QuerySet

from orders.models import Order, OrderLine


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
