"""Public pages of the members app: what a customer's phone opens when it scans a guide's QR code."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_GET

from members.services import guides
from o2o.errors import DomainError


def public_base_url(request) -> str:
    """Where customers reach us: ``O2O_PUBLIC_URL`` when set, else the host of this request."""
    return getattr(settings, "O2O_PUBLIC_URL", "") or request.build_absolute_uri("/")


@require_GET
def guide_qr_landing(request, scene: str):
    """A guide's QR code opened by a phone camera or WeChat: the scan is recorded and the
    customer is told how the guide's service reaches them (the mini-program binds on its own
    scan; at the till, giving their number to the guide binds them)."""
    try:
        guide = guides.guide_qr_scan(scene=scene, user_agent=request.headers.get("User-Agent", ""))
    except DomainError:
        return render(request, "members/guide_qr.html", {"guide": None}, status=404)
    store = guides.guide_home_store(guide)
    return render(request, "members/guide_qr.html", {
        "guide": guide, "store": store, "scene": guides.guide_scene(guide)})
