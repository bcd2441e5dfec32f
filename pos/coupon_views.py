"""The member's usable coupons on the sale screen, loaded beside the workspace (one click applies one)."""

from __future__ import annotations

from django.shortcuts import render

from members import selectors as member_read
from members.exceptions import MemberNotFound
from pos.views import _basket, pos_view


@pos_view
def sale_member_coupons(request):
    basket = _basket(request)
    coupons = []
    if basket.member_id and not basket.coupon:
        try:
            coupons = list(member_read.coupons_usable(basket.member_id)[:10])
        except MemberNotFound:
            coupons = []
    return render(request, "pos/sale/_member_coupons.html", {"coupons": coupons})
