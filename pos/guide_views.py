"""The guide's own page at the POS (/pos/guide/): my QR code, my customers, my sales, my commission,
and the coupons I may hand out."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.db.models import Max, Sum
from django.shortcuts import redirect
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from members import selectors as member_read
from members.models import CommissionEntry, GuideBinding
from members.models.coupons import CouponTemplate
from members.services import coupons, guides
from members.views import public_base_url
from o2o.errors import DomainError
from o2o.money import ZERO, money
from orders.models import Order
from pos.errors import error_message
from pos.views import _page, pos_view
from stores.models import Role
from stores.selectors import staff_profile


def _guide(request):
    profile = staff_profile(request.user)
    return profile if profile is not None and profile.role == Role.GUIDE and profile.guide_code else None


def _statement(guide) -> dict[str, Decimal]:
    frozen, released = guides.commission_balance(guide)
    rows = dict(CommissionEntry.objects.filter(guide=guide).values("kind")
                .annotate(total=Sum("frozen_delta") + Sum("released_delta")).values_list("kind", "total"))
    return {"frozen": frozen, "released": released,
            "accrued": money(rows.get(CommissionEntry.Kind.ACCRUAL) or ZERO),
            "clawed_back": money(-(rows.get(CommissionEntry.Kind.CLAWBACK) or ZERO))}


def _render(request, guide, *, status: int = 200, error: str = ""):
    bindings = list(GuideBinding.objects.filter(guide=guide, ended_reason="").select_related("member")
                    .order_by("-valid_from")[:50])
    last = dict(Order.objects.filter(member_id__in=[b.member_id for b in bindings]).values("member_id")
                .annotate(at=Max("created_at")).values_list("member_id", "at"))
    customers = [{"binding": b, "member": b.member, "last_purchase": last.get(b.member_id)} for b in bindings]
    base = public_base_url(request)
    return _page(request, "pos/guide.html", {
        "guide": guide, "qr_svg": mark_safe(guides.guide_qr_svg(guide, base_url=base)),  # segno's own SVG
        "qr_url": guides.guide_qr_url(guide, base_url=base), "customers": customers,
        "sales": Order.objects.filter(guide=guide).select_related("store", "member").order_by("-id")[:20],
        "statement": _statement(guide),
        "templates": CouponTemplate.objects.filter(is_active=True, guide_can_issue=True).order_by("name"),
        "error": error}, status=status)


@pos_view
def guide_page(request):
    guide = _guide(request)
    if guide is None:
        return _page(request, "pos/guide.html", {"guide": None}, status=403)
    return _render(request, guide)


@pos_view
@require_POST
def guide_coupon_hand_out(request):
    guide = _guide(request)
    if guide is None:
        return _page(request, "pos/guide.html", {"guide": None}, status=403)
    phone = (request.POST.get("phone") or "").strip()
    template_id = request.POST.get("template") or ""
    try:
        member = member_read.member_by_phone(phone)
        if member is None:
            return _render(request, guide, status=422, error=_("No member with this number."))
        if not template_id.isdigit():
            return _render(request, guide, status=422, error=_("Choose a coupon."))
        coupon = coupons.coupon_guide_issue(template=int(template_id), member=member, guide=guide,
                                            store_id=request.pos_store.pk)
    except DomainError as exc:
        return _render(request, guide, status=422, error=error_message(exc))
    messages.success(request, _("Coupon %(code)s given to %(member)s.") % {"code": coupon.code,
                                                                           "member": member.phone})
    return redirect("pos:guide")
