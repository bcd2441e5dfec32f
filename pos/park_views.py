"""Park and recall at the counter (挂单/取单): park the sale on the screen, list the store's parked
sales, recall one into the (empty) sale screen."""

from __future__ import annotations

from django.contrib import messages
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from o2o.errors import DomainError, NotFound
from pos import parking
from pos.errors import error_message
from pos.views import _basket, _go, _page, _sale_render, basket_cache_drop, is_htmx, pos_view


def _parked_page(request, *, error: str = "", status: int = 200):
    template = "pos/_parked.html" if is_htmx(request) else "pos/parked.html"
    return _page(request, template, {"parked": parking.parked_list(request.pos_store), "error": error},
                 status=status)


@pos_view
def parked(request):
    return _parked_page(request)


@pos_view
@require_POST
def sale_park(request):
    try:
        row = parking.basket_park(store=request.pos_store, clerk=request.user, label=request.POST.get("label", ""))
    except DomainError as exc:
        return _sale_render(request, _basket(request), status=422, errors={"park": error_message(exc)})
    basket_cache_drop(request)
    messages.success(request, _("Sale parked as %(number)s (¥%(total)s). A new sale is open.")
                     % {"number": row.number, "total": row.total})
    return _go(request, reverse("pos:sale"))


@pos_view
@require_POST
def parked_recall(request, pk: int):
    try:
        parking.basket_recall(store=request.pos_store, clerk=request.user, parked_id=pk)
    except DomainError as exc:
        return _parked_page(request, error=error_message(exc), status=404 if isinstance(exc, NotFound) else 409)
    basket_cache_drop(request)
    messages.success(request, _("Parked sale P%(number)s recalled.") % {"number": pk})
    return _go(request, reverse("pos:sale"))
