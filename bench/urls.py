"""The production URLs plus the bench-only endpoints (used only through bench.settings)."""

from django.urls import path

from bench import views
from o2o.urls import urlpatterns as production

urlpatterns = [
    *production,
    path("bench/pos-sale/", views.pos_sale, name="bench-pos-sale"),
    path("bench/order-place/", views.order_place, name="bench-order-place"),
    path("bench/orders/", views.orders_list, name="bench-orders"),
]
