"""Shifts at the POS: open with a float, cash in and out, hand over to the next clerk, close with a
count, and the Z report."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from o2o.errors import DomainError
from payments import shifts
from pos import selectors
from pos.errors import error_message
from pos.forms import CashMoveForm, ShiftCloseForm, ShiftOpenForm
from pos.views import _page, pos_view


# --- shifts -----------------------------------------------------------------------------------------


@pos_view
def shift_page(request):
    store = request.pos_store
    current = shifts.shift_current(store)
    context = {"open_form": ShiftOpenForm(), "cash_form": CashMoveForm(), "close_form": ShiftCloseForm(),
               "recent": selectors.store_shifts(store).order_by("-opened_at")[:10]}
    if current is not None:
        context["report"] = shifts.shift_z_report(current)
        context["sales"] = selectors.shift_sales(current, timezone.now())
    return _page(request, "pos/shift.html", context)


def _shift_error(request, exc: DomainError, form_name: str, form):
    form.add_error(None, error_message(exc))
    # With a shift open the open form is not on the page: its error goes in a banner.
    banner = error_message(exc) if form_name == "open_form" else ""
    return _shift_rerender(request, form_name, form, page_error=banner)


def _shift_rerender(request, form_name: str, form, page_error: str = ""):
    store = request.pos_store
    current = shifts.shift_current(store)
    context = {"open_form": ShiftOpenForm(), "cash_form": CashMoveForm(), "close_form": ShiftCloseForm(),
               "recent": selectors.store_shifts(store).order_by("-opened_at")[:10], form_name: form,
               "page_error": page_error}
    if current is not None:
        context["report"] = shifts.shift_z_report(current)
        context["sales"] = selectors.shift_sales(current, timezone.now())
    return _page(request, "pos/shift.html", context, status=422)


@pos_view
@require_POST
def shift_open(request):
    form = ShiftOpenForm(request.POST)
    if not form.is_valid():
        return _shift_rerender(request, "open_form", form)
    try:
        shifts.shift_open(store=request.pos_store, actor=request.user,
                          opening_float=form.cleaned_data["opening_float"])
    except DomainError as exc:
        return _shift_error(request, exc, "open_form", form)
    return redirect("pos:sale")


@pos_view
@require_POST
def shift_cash(request):
    form = CashMoveForm(request.POST)
    current = shifts.shift_current(request.pos_store)
    if not form.is_valid():
        return _shift_rerender(request, "cash_form", form)
    try:
        if current is None:
            raise shifts.ShiftNotOpen()
        shifts.shift_cash_move(shift=current, kind=form.cleaned_data["kind"], amount=form.cleaned_data["amount"],
                               reason=form.cleaned_data["reason"], actor=request.user)
    except DomainError as exc:
        return _shift_error(request, exc, "cash_form", form)
    messages.success(request, _("Cash movement recorded."))
    return redirect("pos:shift")


@pos_view
@require_POST
def shift_close(request):
    form = ShiftCloseForm(request.POST)
    current = shifts.shift_current(request.pos_store)
    if not form.is_valid():
        return _shift_rerender(request, "close_form", form)
    try:
        if current is None:
            raise shifts.ShiftNotOpen()
        closed = shifts.shift_close(shift=current, actor=request.user, counts=form.counts(),
                                    note=form.cleaned_data.get("note", ""))
    except DomainError as exc:
        return _shift_error(request, exc, "close_form", form)
    return redirect("pos:shift_report", pk=closed.pk)


@pos_view
def shift_report(request, pk: int):
    shift = get_object_or_404(selectors.store_shifts(request.pos_store).select_related(
        "opened_by__staff", "closed_by__staff", "store"), pk=pk)
    report = shifts.shift_z_report(shift)
    counted = [(d, shift.denominations.get(d, 0)) for d in shifts.denominations() if shift.denominations.get(d)]
    return _page(request, "pos/shift_report.html", {
        "report": report, "report_shift": shift, "sales": selectors.shift_sales(shift, report.end),
        "counted": counted})
