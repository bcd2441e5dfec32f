"""The till's JSON for online selling with the basket held by the till (see ``pos.till``).

``POST /pos/till/price/`` prices a basket (reads only); ``POST /pos/till/complete/`` makes the
sale through ``pos.services.pos_checkout``.  Thin: parse, call, answer.  Neither writes the
session on an ordinary call (the clerk's last-seen stamp is refreshed at most once a minute).
"""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from inventory.exceptions import UnknownSku
from inventory.soldout import stock_precheck
from o2o.errors import Conflict, DomainError, InvalidInput
from orders.models import Order
from pos import services as pos
from pos.errors import error_message
from pos.offline_views import _error, pos_json
from pos.selectors import sale_change
from pos.till import till_member, till_parse, till_price


# The clerk's own calls from the till keep the clerk signed in (stamped at most once a minute, so a
# sale writes no session).
till_json = pos_json(activity=True)


def _body(request):
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(_("The body is not valid JSON."), code="invalid_json") from None


def _refusal(exc: DomainError) -> JsonResponse:
    """A refusal as the till shows it: 400 for input it should not have sent, 409 for the state of the
    store (stock, shift, a used coupon), 422 for the rest (not found, approval, payment)."""
    status = 400 if exc.status == 400 else 409 if isinstance(exc, Conflict) else 422
    extra = {"field": exc.field} if exc.field else {}
    if exc.params:
        extra["params"] = exc.as_dict()["params"]
    return _error(status, exc.code, error_message(exc), **extra)


def _sold(order: Order, change, status: int) -> JsonResponse:
    return JsonResponse({"number": order.number, "total": str(order.total), "change": str(change),
                         "receipt_url": reverse("pos:receipt", args=[order.number])}, status=status)


@require_POST
@till_json
def price(request):
    """POST /pos/till/price/ {lines, member?, coupon?, guide?, discount?}: the basket priced."""
    store = request.pos_store
    try:
        sale = till_parse(_body(request), store=store, complete=False)
        basket, member = till_member(sale, take=False)
        return JsonResponse(till_price(basket, store=store, actor=request.user, member=member))
    except DomainError as exc:
        return _refusal(exc)


@require_POST
@till_json
def complete(request):
    """POST /pos/till/complete/ {client_uuid, lines, member?, coupon?, guide?, discount?, payment}:
    201 with the sale made; 200 with the sale a retry of the same client UUID made before."""
    store = request.pos_store
    try:
        sale = till_parse(_body(request), store=store, complete=True)
        done = pos.sale_already_made(store=store, client_uuid=sale.basket.uuid)
        if done is not None:
            return _sold(done, sale_change(done), 200)
        # A store that plainly cannot serve the basket refuses before any transaction (sold-out gate,
        # then a lock-free read); the sale's own stock update still decides the rest.
        stock_precheck(warehouse_id=store.warehouse_id, demand=sale.basket.demand())
        basket, _member = till_member(sale, take=True)
        priced = pos.basket_checked(basket=basket, store=store, actor=request.user)
        if priced.sale is None:  # no line is a SKU the catalogue knows
            raise UnknownSku(field="lines", params={"sku_ids": sorted({ln.sku_id for ln in basket.lines})})
        # known_new: looked for just above (a racing twin is still caught by the sale's insert).
        result = pos.pos_checkout(store=store, actor=request.user, client_uuid=basket.uuid, basket=basket,
                                  payment=sale.payment, priced=priced, known_new=True)
    except DomainError as exc:
        return _refusal(exc)
    return _sold(result.order, result.change, 201 if result.created else 200)
