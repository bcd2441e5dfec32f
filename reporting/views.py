"""The head-office dashboard: one page, figures from ``reporting.selectors``, charts drawn
in the browser from JSON embedded in the page."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AdminDateWidget
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.translation import gettext, gettext_lazy as _, pgettext_lazy

from reporting import selectors
from reporting.rollups import business_today

MAX_DAYS = 366


class DashboardFilterForm(forms.Form):
    # "from"/"to" also name a transfer's warehouses and an order event's statuses.
    # The admin's date field and calendar: dates typed and shown in the language's own format
    # (2026/12/04 in Chinese), where a browser's date input follows the browser's locale instead.
    start = forms.DateField(label=pgettext_lazy("date range", "from"), required=False, widget=AdminDateWidget)
    end = forms.DateField(label=pgettext_lazy("date range", "to"), required=False, widget=AdminDateWidget)
    region = forms.TypedChoiceField(label=_("region"), required=False, coerce=int, empty_value=None)
    city = forms.TypedChoiceField(label=_("city"), required=False, coerce=int, empty_value=None)
    store = forms.TypedChoiceField(label=_("store"), required=False, coerce=int, empty_value=None)

    def __init__(self, data, *, choices: dict):
        super().__init__(data)
        everything = [("", gettext("All"))]
        self.fields["region"].choices = everything + [(r.pk, r.name) for r in choices["regions"]]
        self.fields["city"].choices = everything + [(c.pk, c.name) for c in choices["cities"]]
        self.fields["store"].choices = everything + [(s.pk, str(s)) for s in choices["stores"]]

    def clean(self):
        data = super().clean()
        end = data.get("end") or business_today()
        start = data.get("start") or end - timedelta(days=27)
        if start > end:
            raise forms.ValidationError(_("The start date must not be after the end date."))
        if (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(_("Choose at most %(days)d days.") % {"days": MAX_DAYS})
        data["start"], data["end"] = start, end
        return data


def _page_frame(request) -> dict:
    """What the admin's page frame needs (header, site links, user tools), without the admin's list of
    every model: the dashboard hides the model sidebar, and building that list (permission checks and
    two URL reversals per registered model) cost more than some of the figures."""
    site = admin.site
    script_name = request.META.get("SCRIPT_NAME", "")
    site_url = script_name if site.site_url == "/" and script_name else site.site_url
    return {"site_title": site.site_title, "site_header": site.site_header, "site_url": site_url,
            "has_permission": site.has_permission(request), "available_apps": [], "is_popup": False,
            "is_nav_sidebar_enabled": False}


def dashboard(request):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), login_url="admin:login")
    if not selectors.can_view_dashboard(request.user):
        raise PermissionDenied
    choices = selectors.filter_choices(request.user)
    form = DashboardFilterForm(request.GET, choices=choices)
    if not form.is_valid():
        form = DashboardFilterForm({}, choices=choices)
        form.is_valid()
        invalid = True
    else:
        invalid = False
    data = form.cleaned_data
    scope = selectors.scope_for(request.user, start=data["start"], end=data["end"], region_id=data["region"],
                                city_id=data["city"], store_id=data["store"])
    sales = selectors.sales_summary(scope)
    o2o = selectors.o2o_metrics(scope)
    coupons = selectors.coupon_funnel(scope)
    guides = selectors.guide_leaderboard(scope)
    stock = selectors.stock_metrics(scope)
    members = selectors.member_metrics()
    rollout = selectors.pilot_control(scope)
    charts = {
        "salesByDay": {"days": [d["day"] for d in sales["by_day"]],
                       "series": {gettext("Net sales"): [d["net"] for d in sales["by_day"]],
                                  gettext("Gross sales"): [d["gross"] for d in sales["by_day"]],
                                  gettext("Returns"): [d["returns"] for d in sales["by_day"]]}},
        "salesByChannel": [{"name": c["label"], "value": c["net"]} for c in sales["by_channel"]],
        "salesByStore": [{"name": s["label"] or gettext("Shipped from warehouse"), "value": s["net"]}
                         for s in sales["by_store"]],
        "couponFunnel": [{"name": gettext("Issued"), "value": coupons["issued"]},
                         {"name": gettext("Redeemed"), "value": coupons["redeemed"]}],
        "fulfilment": [{"name": gettext("Pickup in store"), "value": o2o["pickup"]},
                       {"name": gettext("Ship from store"), "value": o2o["ship_store"]},
                       {"name": gettext("Ship from warehouse"), "value": o2o["orders"] - o2o["by_store"]}],
        "stockCover": {"labels": [w["label"] for w in stock["by_warehouse"]],
                       "value": [w["value"] for w in stock["by_warehouse"]],
                       "turnover": [w["turnover"] for w in stock["by_warehouse"]],
                       "valueLabel": gettext("Value at cost"), "turnoverLabel": gettext("Turnover")},
        "tiers": [{"name": t["label"] or gettext("No tier"), "value": t["count"]} for t in members["tiers"]],
    }
    context = {
        **_page_frame(request),
        "title": gettext("Business dashboard"), "form": form, "invalid": invalid, "scope": scope,
        "sales": sales, "o2o": o2o, "coupons": coupons, "guides": guides, "stock": stock, "members": members,
        "rollout": rollout, "charts": charts,
    }
    return TemplateResponse(request, "dashboard/index.html", context)
