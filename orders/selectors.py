"""Reads shared by admin, POS pages and the API."""

from __future__ import annotations

import io

import segno
from django.db.models import QuerySet

from orders.models import Order


def pickup_qr_payload(order: Order) -> str:
    return f"o2o:pickup:{order.pickup_code}"


def pickup_qr_svg(order: Order, *, scale: int = 4) -> str:
    """The pickup code as a QR image (SVG) for the customer's phone or a printed slip."""
    if not order.pickup_code:
        return ""
    buffer = io.BytesIO()
    segno.make(pickup_qr_payload(order), error="m").save(buffer, kind="svg", scale=scale, xmldecl=False)
    return buffer.getvalue().decode()


def orders_for_stores(store_ids: set[int] | None) -> QuerySet[Order]:
    """Orders sold at or picked up at the given stores (None: every order)."""
    qs = Order.objects.select_related("store")
    return qs if store_ids is None else qs.filter(store_id__in=store_ids)
