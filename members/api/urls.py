from django.urls import path

from members.api import views

urlpatterns = [
    path("members/", views.MemberRegister.as_view(), name="member-register"),
    path("members/lookup/", views.MemberLookup.as_view(), name="member-lookup"),
    path("members/<int:pk>/", views.MemberDetail.as_view(), name="member-detail"),
    path("members/<int:pk>/coupons/", views.MemberCouponList.as_view(), name="member-coupon-list"),
    path("members/<int:pk>/points/", views.MemberPointsList.as_view(), name="member-points-list"),
    path("members/<int:pk>/coupons/share/", views.CouponShare.as_view(), name="member-coupon-share"),
    path("members/<int:pk>/coupons/claim/", views.CouponClaim.as_view(), name="member-coupon-claim"),
    path("members/<int:pk>/code/", views.MemberCodeMint.as_view(), name="member-code"),
    path("members/<int:pk>/guide/", views.GuideBind.as_view(), name="member-guide-bind"),
    path("coupons/templates/", views.CouponTemplateList.as_view(), name="coupon-template-list"),
    path("coupons/validate/", views.CouponValidate.as_view(), name="coupon-validate"),
]
