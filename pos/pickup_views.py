"""Pickup in store (门店自提) at the POS: find an order by its code, hand it over, or take the money first."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from o2o.errors import DomainError
from orders import services as order_services
from pos import selectors
from pos.errors import error_message
from pos.forms import PickupForm
from pos.pickup_pay import pickup_pay
from pos.views import _page, pos_view


@pos_view
@require_POST
def pickup_pay_view(request):
    store = request.pos_store
    code = (request.POST.get("code") or "").strip()
    context = {"form": PickupForm(initial={"code": code}), "waiting": selectors.pickup_orders_waiting(store)[:50],
               "code": code}
    try:
        raw = (request.POST.get("cash_tendered") or "").strip()
        tendered = Decimal(raw) if raw else None
    except InvalidOperation:
        tendered = None
    try:
        order, change = pickup_pay(code=code, store=store, actor=request.user,
                                   tender=request.POST.get("tender") or "cash", cash_tendered=tendered,
                                   card_reference=(request.POST.get("card_reference") or "").strip())
    except DomainError as exc:
        try:
            context["found"] = order_services.pickup_lookup(code=code, store=store, actor=request.user)
        except DomainError:
            pass
        context["pay_error"] = error_message(exc)
        return _page(request, "pos/pickup.html", context, status=422)
    order.refresh_from_db()
    context.update(found=order, paid_message=_("Paid ¥%(amount)s. Change: ¥%(change)s.") % {
        "amount": order.paid_total, "change": change})
    return _page(request, "pos/pickup.html", context)


# --- pickup -----------------------------------------------------------------------------------------


@pos_view
def pickup(request):
    store = request.pos_store
    context = {"form": PickupForm(), "waiting": selectors.pickup_orders_waiting(store)[:50]}
    if request.method == "POST":
        form = PickupForm(request.POST)
        context["form"] = form
        if form.is_valid():
            try:
                order = order_services.pickup_lookup(code=form.cleaned_data["code"], store=store,
                                                     actor=request.user)
            except DomainError as exc:
                form.add_error("code", error_message(exc))
                return _page(request, "pos/pickup.html", context, status=422)
            context.update(found=order, code=form.cleaned_data["code"])
        else:
            return _page(request, "pos/pickup.html", context, status=422)
    return _page(request, "pos/pickup.html", context)


@pos_view
def pickup_detail(request, pk: int):
    order = get_object_or_404(selectors.store_orders(request.pos_store).filter(fulfillment="pickup"), pk=pk)
    return _page(request, "pos/pickup.html", {"form": PickupForm(), "shown": order, "waiting": []})


@pos_view
@require_POST
def pickup_handover(request):
    store = request.pos_store
    form = PickupForm(request.POST)
    context = {"form": form, "waiting": selectors.pickup_orders_waiting(store)[:50]}
    if not form.is_valid():
        return _page(request, "pos/pickup.html", context, status=422)
    try:
        order = order_services.pickup_handover(code=form.cleaned_data["code"], store=store, actor=request.user)
    except DomainError as exc:
        form.add_error("code", error_message(exc))
        return _page(request, "pos/pickup.html", context, status=422)
    context.update(handed=order, form=PickupForm(), waiting=selectors.pickup_orders_waiting(store)[:50])
    return _page(request, "pos/pickup.html", context)
