"""Shifts at the POS: open with a float, cash in and out, hand over to the next clerk (交班), close with a
count (expiring what is still parked), and the Z report."""

from __future__ import annotations

import time

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from o2o.errors import DomainError
from o2o.login_throttle import ThrottledAuthenticationForm
from payments import shifts
from pos import parking, selectors
from pos.errors import error_message
from pos.forms import CashMoveForm, HandoverForm, ShiftCloseForm, ShiftOpenForm
from pos.views import SEEN_KEY, STORE_KEY, _page, pos_view


def _shift_context(request, **forms) -> dict:
    store = request.pos_store
    current = shifts.shift_current(store)
    context = {"open_form": ShiftOpenForm(), "cash_form": CashMoveForm(), "close_form": _close_form(current),
               "handover_form": HandoverForm(), "recent": selectors.store_shifts(store).order_by("-opened_at")[:10],
               **forms}
    if current is not None:
        context["report"] = shifts.shift_z_report(current)
        context["sales"] = selectors.shift_sales(current, timezone.now())
        context["clerks"] = selectors.shift_sales_by_clerk(current, timezone.now())
        # What the close will expire: the page lists it next to the close form.
        context["parked"] = list(parking.parked_list(store))
    return context


@pos_view
def shift_page(request):
    return _page(request, "pos/shift.html", _shift_context(request))


def _close_form(shift, data=None) -> ShiftCloseForm:
    return ShiftCloseForm(data, unit=shift.cash_unit if shift is not None else None)


def _shift_error(request, exc: DomainError, form_name: str, form):
    form.add_error(None, error_message(exc))
    # With a shift open the open form is not on the page: its error goes in a banner.
    banner = error_message(exc) if form_name == "open_form" else ""
    return _shift_rerender(request, form_name, form, page_error=banner)


def _shift_rerender(request, form_name: str, form, page_error: str = ""):
    context = _shift_context(request, **{form_name: form})
    context["page_error"] = page_error
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
def shift_handover(request):
    """交班: the incoming clerk signs in here; the shift and its drawer go on under their name."""
    store = request.pos_store
    form = HandoverForm(request.POST)
    if not form.is_valid():
        return _shift_rerender(request, "handover_form", form)
    sign_in = ThrottledAuthenticationForm(request, data={"username": form.cleaned_data["username"],
                                                         "password": form.cleaned_data["password"]})
    if not sign_in.is_valid():
        for error in sign_in.non_field_errors():
            form.add_error(None, error)
        return _shift_rerender(request, "handover_form", form)
    incoming = sign_in.get_user()
    try:
        current = shifts.shift_current(store)
        if current is None:
            raise shifts.ShiftNotOpen()
        handover = shifts.shift_handover(shift=current, actor=request.user, incoming=incoming,
                                         counted_cash=form.cleaned_data.get("counted_cash"))
    except DomainError as exc:
        return _shift_error(request, exc, "handover_form", form)
    # The till is the incoming clerk's now: their sign-in replaces the outgoing one (whose open
    # basket stays theirs on the server), at the same store.
    login(request, incoming)
    request.session[STORE_KEY] = store.pk
    request.session[SEEN_KEY] = int(time.time())
    messages.success(request, _("Shift handed over to %(name)s. Expected cash in the drawer: ¥%(expected)s.") % {
        "name": _clerk_name(incoming), "expected": handover.expected_cash})
    return redirect("pos:shift")


def _clerk_name(user) -> str:
    staff = getattr(user, "staff", None)
    return (staff.display_name if staff is not None and staff.display_name else "") or user.get_username()


@pos_view
@require_POST
def shift_close(request):
    current = shifts.shift_current(request.pos_store)
    form = _close_form(current, request.POST)
    if not form.is_valid():
        return _shift_rerender(request, "close_form", form)
    try:
        if current is None:
            raise shifts.ShiftNotOpen()
        closed, expired = parking.pos_shift_close(shift=current, actor=request.user, counts=form.counts(),
                                                  note=form.cleaned_data.get("note", ""))
    except DomainError as exc:
        return _shift_error(request, exc, "close_form", form)
    if expired:
        messages.warning(request, _("%(n)s parked sale(s) expired with the close.") % {"n": expired})
    return redirect("pos:shift_report", pk=closed.pk)


@pos_view
def shift_report(request, pk: int):
    shift = get_object_or_404(selectors.store_shifts(request.pos_store).select_related(
        "opened_by__staff", "closed_by__staff", "store"), pk=pk)
    report = shifts.shift_z_report(shift)
    counted = [(d, shift.denominations.get(d, 0)) for d in shifts.denominations(shift.cash_unit)
               if shift.denominations.get(d)]
    return _page(request, "pos/shift_report.html", {
        "report": report, "report_shift": shift, "sales": selectors.shift_sales(shift, report.end),
        "clerks": selectors.shift_sales_by_clerk(shift, report.end),
        "expired": parking.parked_expired_at(shift), "counted": counted})
