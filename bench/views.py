"""Bench-only JSON endpoints (mounted by bench.settings only, never by o2o.urls), kept for the
client-retry fault test (tests/faults/test_client_retries.py); the benchmarks themselves load
the POS pages and the partner API.

``pos_sale`` does what the POS page's checkout does (pos.services.pos_checkout):
in one transaction it holds the open shift FOR SHARE, calls
``orders.services.pos_sale_create`` and records the cash handed over.  Unlike the page
(which today passes only the member's phone), it passes the member, so points are earned.
``order_place`` calls ``orders.services.order_place`` as a partner API create would.
No authentication: these run on a loopback-only benchmark server.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from o2o.db import service
from o2o.errors import DomainError
from orders import services as order_services
from orders.models import Order
from orders.services import LineIn, TenderIn
from payments import shifts
from payments.models import Tender
from stores.models import Store

_actor_cache: dict[str, object] = {}


def _actor():
    if "user" not in _actor_cache:
        _actor_cache["user"] = get_user_model().objects.get(username="bench-clerk-00")
    return _actor_cache["user"]


def _error(exc: DomainError) -> JsonResponse:
    return JsonResponse(exc.as_dict(), status=exc.status)


@service
def _pos_sale(*, store, client_uuid, lines, member_id, tenders, actor):
    shifts.shift_hold(store)
    result = order_services.pos_sale_create(store=store, client_uuid=client_uuid, lines=lines,
                                            tenders=tenders, actor=actor, member=member_id)
    cash = next((p for p in result.payments if p.tender == Tender.CASH), None)
    if cash is not None:
        shifts.cash_tendered_record(payment=cash, tendered=cash.amount)
    return result


@csrf_exempt
@require_POST
def pos_sale(request):
    body = json.loads(request.body)
    store = Store.objects.select_related("warehouse").get(pk=body["store_id"])
    lines = [LineIn(int(s), int(q)) for s, q in body["lines"]]
    try:
        done = Order.objects.filter(client_uuid=body["client_uuid"], store=store).first()
        result = done if done is not None else _pos_sale(
            store=store, client_uuid=body["client_uuid"], lines=lines, member_id=body.get("member_id"),
            tenders=[TenderIn(t, Decimal(a), f"slip-{body['client_uuid']}" if t == Tender.UNIONPAY_CARD else "")
                     for t, a in body["tenders"]], actor=_actor())
    except DomainError as exc:
        return _error(exc)
    order = result if isinstance(result, Order) else result.order
    return JsonResponse({"number": order.number, "total": str(order.total),
                         "created": not isinstance(result, Order) and result.created})


@csrf_exempt
@require_POST
def order_place(request):
    body = json.loads(request.body)
    fulfillment = body.get("fulfillment", "pickup")
    store = Store.objects.get(pk=body["store_id"]) if body.get("store_id") else None
    try:
        result = order_services.order_place(
            channel="web", partner="bench", external_id=body["external_id"], fulfillment=fulfillment,
            store=store if fulfillment == "pickup" else None, ship_city_id=body.get("city_id"),
            ship_address="文三路 1 号" if fulfillment != "pickup" else "", customer_name="王芳",
            customer_phone="+8613800138000", lines=[LineIn(int(s), int(q)) for s, q in body["lines"]],
            member=body.get("member_id"))
    except DomainError as exc:
        return _error(exc)
    return JsonResponse({"number": result.order.number, "created": result.created,
                         "total": str(result.order.total)}, status=201 if result.created else 200)

