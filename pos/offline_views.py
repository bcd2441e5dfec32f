"""The till's offline pages and JSON: the offline till, its service worker, the catalogue snapshot
and the sync of the sales it took offline.  Thin: parse, call one service or selector, answer."""

from __future__ import annotations

import functools
import hashlib
import json

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from o2o.errors import DomainError
from pos.conflicts import offline_conflict_resolve, open_conflicts
from pos.errors import error_message
from pos.offline_catalogue import offline_catalogue
from pos.sync import MAX_BATCH, offline_batch_apply
from pos.views import _page, pos_view

def _error(status: int, code: str, message, **extra) -> JsonResponse:
    return JsonResponse({"code": code, "message": str(message), **extra}, status=status)


def pos_json(view=None, *, activity: bool = False):
    """``pos_view`` for the till's JSON: a signed-out or store-less clerk gets a JSON error
    (401 not_signed_in, 409 store_required, 403 not_store_staff), never a login page.

    By default these are the calls the page makes by itself (catalogue refresh, sync timer): not
    the clerk at the till, so they neither keep an idle session signed in nor write the session.
    ``activity=True`` is for the clerk's own calls from the till."""
    if view is None:
        return functools.partial(pos_json, activity=activity)
    inner = pos_view(view, activity=activity)

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return _error(401, "not_signed_in", _("Sign in to the POS again."))
        response = inner(request, *args, **kwargs)
        target = response.get("HX-Redirect") or response.get("Location") or ""
        if response.status_code in (301, 302) or target:
            if target.startswith(reverse("pos:login")):
                return _error(401, "not_signed_in", _("Sign in to the POS again."))
            return _error(409, "store_required", _("Choose the store first."))
        if response.status_code == 403 and not response.get("Content-Type", "").startswith("application/json"):
            return _error(403, "not_store_staff", _("You are not staff of a store."))
        return response

    return wrapper


@require_POST
@pos_json
def sync(request):
    """POST /pos/sync/ {"sales": [...]}: the till's queued offline sales, applied in order,
    each exactly once (see pos.sync).  200 with one result per sale."""
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return _error(400, "invalid_json", _("The body is not valid JSON."))
    sales = body.get("sales") if isinstance(body, dict) else None
    if not isinstance(sales, list) or not sales:
        return _error(400, "invalid_input", _("Send a non-empty list of sales."), fields={"sales": ["required"]})
    if len(sales) > MAX_BATCH:
        return _error(400, "batch_too_large", _("Send at most %(count)s sales at a time.") % {"count": MAX_BATCH})
    results = offline_batch_apply(store=request.pos_store, actor=request.user, sales=sales)
    return JsonResponse({"results": [r.as_dict() for r in results]})


@require_GET
@pos_json
@never_cache
def catalogue(request):
    """GET /pos/offline/catalogue/[?updated_since=ISO time]: the store's snapshot for the till."""
    since = request.GET.get("updated_since")
    updated_since = None
    if since:
        updated_since = parse_datetime(since)
        if updated_since is None or updated_since.tzinfo is None:
            return _error(400, "invalid_input", _("updated_since must be an ISO 8601 time with its offset."),
                          fields={"updated_since": ["invalid"]})
    return JsonResponse(offline_catalogue(store=request.pos_store, updated_since=updated_since))


# The scripts and styles the offline till needs, kept by the service worker at install.
OFFLINE_ASSETS = ("pos/pos.css", "pos/pos.js", "pos/connection.js", "pos/offline.js", "pos/offline-till.js",
                  "vendor/htmx/htmx.min.js", "vendor/idb/umd.js")


@pos_view
def offline_till(request):
    """The till that sells from the catalogue kept in the browser, online or not."""
    return _page(request, "pos/offline/till.html")


@never_cache
def service_worker(request):
    """The service worker, served under /pos/ so its scope covers the POS pages."""
    assets = [static(path) for path in OFFLINE_ASSETS]
    version = hashlib.sha256("|".join(assets).encode()).hexdigest()[:12]
    response = render(request, "pos/offline/sw.js", {"assets": assets, "version": version},
                      content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = reverse("pos:home")
    return response


def manifest(request):
    """The web app manifest: the POS installs as an app that opens on the sale screen."""
    return JsonResponse({"name": _("o2o Store POS"), "short_name": "o2o POS", "lang": "zh-Hans",
                         "start_url": reverse("pos:sale"), "scope": reverse("pos:home"), "display": "standalone",
                         "background_color": "#ffffff", "theme_color": "#c8102e", "icons": [{"src": static("pos/icon.svg"), "sizes": "any", "type": "image/svg+xml"}]},
                        content_type="application/manifest+json", json_dumps_params={"ensure_ascii": False})


@pos_view
def conflicts(request):
    """The store's open offline-sale conflicts: the store manager's tasks (count, accept the price)."""
    return _page(request, "pos/offline/conflicts.html", {"conflicts": open_conflicts(request.pos_store)})


@require_POST
@pos_view
def conflict_resolve(request, pk: int):
    """The store manager marks one conflict resolved, with a note (what the count found)."""
    try:
        offline_conflict_resolve(conflict_id=pk, actor=request.user, store=request.pos_store,
                                 note=request.POST.get("note", ""))
    except DomainError as exc:
        conflicts_open = open_conflicts(request.pos_store)
        return _page(request, "pos/offline/conflicts.html", {"conflicts": conflicts_open, "error": error_message(exc)},
                     status=exc.status)
    messages.success(request, _("The conflict is resolved."))
    return redirect("pos:offline_conflicts")
