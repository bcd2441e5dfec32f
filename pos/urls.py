from django.urls import path

from pos import recharge_views, views

app_name = "pos"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("store/", views.store_pick, name="store"),
    path("shift/", views.shift_page, name="shift"),
    path("shift/open/", views.shift_open, name="shift_open"),
    path("shift/cash/", views.shift_cash, name="shift_cash"),
    path("shift/close/", views.shift_close, name="shift_close"),
    path("shifts/<int:pk>/", views.shift_report, name="shift_report"),
    path("sale/", views.sale, name="sale"),
    path("sale/new/", views.sale_new, name="sale_new"),
    path("sale/scan/", views.sale_scan, name="sale_scan"),
    path("sale/lines/<int:index>/qty/", views.sale_qty, name="sale_qty"),
    path("sale/lines/<int:index>/remove/", views.sale_remove, name="sale_remove"),
    path("sale/lines/<int:index>/price/", views.sale_price, name="sale_price"),
    path("sale/discount/", views.sale_discount, name="sale_discount"),
    path("sale/member/", views.sale_member, name="sale_member"),
    path("sale/coupon/", views.sale_coupon, name="sale_coupon"),
    path("sale/guide/", views.sale_guide, name="sale_guide"),
    path("sale/complete/", views.sale_complete, name="sale_complete"),
    path("sale/exchange/cancel/", views.exchange_cancel, name="exchange_cancel"),
    path("sales/<int:pk>/void/", views.sale_void, name="sale_void"),
    path("receipts/<str:number>/", views.receipt, name="receipt"),
    path("returns/", views.returns, name="returns"),
    path("returns/<int:pk>/", views.return_detail, name="return_detail"),
    path("returns/slip/<str:number>/", views.return_slip, name="return_slip"),
    path("pickup/", views.pickup, name="pickup"),
    path("pickup/<int:pk>/", views.pickup_detail, name="pickup_detail"),
    path("pickup/handover/", views.pickup_handover, name="pickup_handover"),
    path("ship/", views.ship, name="ship"),
    path("ship/<int:pk>/start/", views.ship_start, name="ship_start"),
    path("ship/shipments/<int:pk>/pack/", views.ship_pack, name="ship_pack"),
    path("ship/shipments/<int:pk>/ship/", views.ship_send, name="ship_send"),
    path("pin/", views.pin, name="pin"),
    path("recharge/", recharge_views.recharge, name="recharge"),
    path("recharge/<int:pk>/refund/", recharge_views.recharge_refund, name="recharge_refund"),
]
