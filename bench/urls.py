"""The production URLs plus the bench-only endpoints of the client-retry fault test (bench.settings only)."""

from django.urls import path

from bench import views
from o2o.urls import urlpatterns as production

urlpatterns = [
    *production,
    path("bench/pos-sale/", views.pos_sale, name="bench-pos-sale"),
    path("bench/order-place/", views.order_place, name="bench-order-place"),
]
