"""Pickup in store (门店自提) at the POS: find an order by its code, hand it over, or take the money first.

Pay at pickup: the tender picks the path: cash or card, the customer's payment code (付款码, charged
through the micropay provider), or the member's wallet or points (with their dynamic member code).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from o2o.errors import DomainError
from orders import services as order_services
from payments.models import Tender
from pos import selectors
from pos.errors import error_message
from pos.forms import PickupForm
from pos.pickup_pay import CODE, MEMBER_TENDERS, pickup_pay, pickup_pay_by_code, pickup_pay_member
from pos.views import _page, pos_view


def _tendered(request) -> Decimal | None:
    try:
        raw = (request.POST.get("cash_tendered") or "").strip()
        return Decimal(raw) if raw else None
    except InvalidOperation:
        return None


def _pay(request, store, code: str, tender: str):
    """Take the payment; (order, change)."""
    post = request.POST
    if tender == CODE:
        return pickup_pay_by_code(code=code, store=store, actor=request.user,
                                  payment_code=(post.get("payment_code") or "").strip(),
                                  code_tender=(post.get("code_tender") or "").strip()), None
    if tender in MEMBER_TENDERS:
        return pickup_pay_member(code=code, store=store, actor=request.user, tender=tender,
                                 member_code=(post.get("member_code") or "").strip(),
                                 amount=(post.get("amount") or "").strip(),
                                 points=(post.get("points") or "").strip()), None
    return pickup_pay(code=code, store=store, actor=request.user, tender=tender,
                      cash_tendered=_tendered(request),
                      card_reference=(post.get("card_reference") or "").strip())


@pos_view
@require_POST
def pickup_pay_view(request):
    store = request.pos_store
    code = (request.POST.get("code") or "").strip()
    tender = request.POST.get("tender") or Tender.CASH
    context = {"form": PickupForm(initial={"code": code}), "waiting": selectors.pickup_orders_waiting(store)[:50],
               "code": code}
    try:
        order, change = _pay(request, store, code, tender)
    except DomainError as exc:
        try:
            context["found"] = order_services.pickup_lookup(code=code, store=store, actor=request.user)
        except DomainError:
            pass
        context["pay_error"] = error_message(exc)
        return _page(request, "pos/pickup.html", context, status=422)
    order.refresh_from_db()
    if change is None:
        message = _("Paid ¥%(amount)s so far; ¥%(due)s is still due.") % {
            "amount": order.paid_total, "due": order.total - order.paid_total} if order.paid_total < order.total \
            else _("Paid ¥%(amount)s.") % {"amount": order.paid_total}
    else:
        message = _("Paid ¥%(amount)s. Change: ¥%(change)s.") % {"amount": order.paid_total, "change": change}
    context.update(found=order, paid_message=message)
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
