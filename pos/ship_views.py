"""Ship from store at the POS: the store's shipping tasks, pack and hand to the carrier."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from o2o.errors import DomainError
from orders import services as order_services
from pos import selectors
from pos.errors import error_message
from pos.forms import ShipForm
from pos.views import _page, pos_view


# --- ship from store --------------------------------------------------------------------------------


def _ship_page(request, *, error_order=None, error_shipment=None, error: str = "", status: int = 200):
    return _page(request, "pos/ship.html", {"tasks": selectors.ship_tasks(request.pos_store)[:100],
                                            "error_order": error_order, "error_shipment": error_shipment,
                                            "error": error}, status=status)


@pos_view
def ship(request):
    return _ship_page(request)


@pos_view
@require_POST
def ship_start(request, pk: int):
    store = request.pos_store
    order = get_object_or_404(selectors.ship_tasks(store), pk=pk)
    try:
        order_services.shipment_create(order=order, warehouse_id=store.warehouse_id, actor=request.user)
    except DomainError as exc:
        return _ship_page(request, error_order=order.pk, error=error_message(exc), status=422)
    return redirect("pos:ship")


@pos_view
@require_POST
def ship_pack(request, pk: int):
    shipment = get_object_or_404(selectors.store_shipments(request.pos_store), pk=pk)
    try:
        order_services.shipment_pack(shipment=shipment, actor=request.user)
    except DomainError as exc:
        return _ship_page(request, error_shipment=shipment.pk, error=error_message(exc), status=422)
    return redirect("pos:ship")


@pos_view
@require_POST
def ship_send(request, pk: int):
    shipment = get_object_or_404(selectors.store_shipments(request.pos_store), pk=pk)
    form = ShipForm(request.POST)
    if not form.is_valid():
        return _ship_page(request, error_shipment=shipment.pk, status=422,
                          error=_("Type the carrier and the tracking number."))
    try:
        order_services.shipment_ship(shipment=shipment, carrier=form.cleaned_data["carrier"],
                                     tracking_number=form.cleaned_data["tracking_number"], actor=request.user)
    except DomainError as exc:
        return _ship_page(request, error_shipment=shipment.pk, error=error_message(exc), status=422)
    messages.success(request, _("Shipment %(number)s handed to the carrier.") % {"number": shipment.number})
    return redirect("pos:ship")
